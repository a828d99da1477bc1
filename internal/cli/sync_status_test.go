package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/checkslot"
)

func TestTheStatusOfASyncSaysWhenItsSourceIsChecked(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	const uid = "5f0c1a2b-0000-4000-8000-000000000001"
	tests := []struct {
		name     string
		interval *metav1.Duration
		suspend  bool
		want     string
	}{
		{name: "a sync of one minute checks at its own second of each minute", interval: &metav1.Duration{Duration: time.Minute},
			want: "every 1m, at " + shortDuration(checkslot.Offset(uid, time.Minute).Truncate(time.Second)) + " into each (next in "},
		{name: "a sync without an interval checks every hour", want: "every 1h, at "},
		{name: "a suspended sync is not checked, so no check is shown", suspend: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &upv1.UserPackageSync{ObjectMeta: metav1.ObjectMeta{Name: "vip", Namespace: "marketing", UID: uid},
				Spec: upv1.UserPackageSyncSpec{Interval: tt.interval, Suspend: tt.suspend}}
			var out bytes.Buffer
			printSyncSpec(&out, s, now)
			line := ""
			for l := range strings.Lines(out.String()) {
				if strings.Contains(l, "Checks:") {
					line = l
				}
			}
			if tt.want == "" && line != "" || !strings.Contains(line, tt.want) {
				t.Errorf("checks line %q, want one with %q", line, tt.want)
			}
			if next := checkslot.Next(uid, s.Spec.CheckInterval(), now).Format(time.RFC3339); tt.want != "" && !strings.Contains(line, next) {
				t.Errorf("checks line %q does not name the next check %s", line, next)
			}
		})
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", time.Minute: "1m", time.Hour: "1h", 70 * time.Minute: "1h10m", 90 * time.Second: "1m30s", 37 * time.Second: "37s", 24 * time.Hour: "24h"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
