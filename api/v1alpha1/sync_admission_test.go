package v1alpha1_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

func validSync() *upv1.UserPackageSync {
	u := validObject()
	s3 := upv1.SyncS3Source{S3Source: *u.Spec.Source.S3, Prefix: "exports/vip/"}
	s3.Key = ""
	return &upv1.UserPackageSync{
		ObjectMeta: metav1.ObjectMeta{Name: "vip", Namespace: "default"},
		Spec: upv1.UserPackageSyncSpec{
			Source: upv1.SyncSource{S3: &s3}, File: u.Spec.File,
			CredentialsRef: u.Spec.CredentialsRef, UserPackageID: "01000100010000000007",
		},
	}
}

func TestSyncAdmission(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(s *upv1.UserPackageSync)
		wantField string // empty: accepted
		wantText  string
	}{
		{name: "a sync of a prefix is accepted", mutate: func(*upv1.UserPackageSync) {}},
		{
			name: "a sync of one key is accepted",
			mutate: func(s *upv1.UserPackageSync) {
				s.Spec.Source.S3.Key, s.Spec.Source.S3.Prefix = "exports/vip/latest.csv", ""
			},
		},
		{
			name: "an https export uploaded whole is accepted",
			mutate: func(s *upv1.UserPackageSync) {
				s.Spec.Source = upv1.SyncSource{HTTP: &upv1.HTTPSource{URL: "https://files.example.com/vip.csv"}}
				s.Spec.Mode = upv1.SyncModeFull
			},
		},
		{
			name: "an https export in Delta mode is refused: it keeps no base",
			mutate: func(s *upv1.UserPackageSync) {
				s.Spec.Source = upv1.SyncSource{HTTP: &upv1.HTTPSource{URL: "https://files.example.com/vip.csv"}}
			},
			wantField: "spec.mode", wantText: "set mode: Full",
		},
		{
			name: "both s3 and http are refused",
			mutate: func(s *upv1.UserPackageSync) {
				s.Spec.Source.HTTP = &upv1.HTTPSource{URL: "https://files.example.com/vip.csv"}
				s.Spec.Mode = upv1.SyncModeFull
			},
			wantField: "spec.source", wantText: "exactly one of s3 or http",
		},
		{
			name: "an interval under a minute is refused",
			mutate: func(s *upv1.UserPackageSync) {
				s.Spec.Interval = &metav1.Duration{Duration: 30 * time.Second}
			},
			wantField: "spec.interval", wantText: "at least 1m",
		},
		{
			name:      "both a key and a prefix are refused",
			mutate:    func(s *upv1.UserPackageSync) { s.Spec.Source.S3.Key = "exports/vip/latest.csv" },
			wantField: "spec.source.s3", wantText: "exactly one of key",
		},
		{
			name:      "neither a key nor a prefix is refused",
			mutate:    func(s *upv1.UserPackageSync) { s.Spec.Source.S3.Prefix = "" },
			wantField: "spec.source.s3", wantText: "exactly one of key",
		},
		{
			name:      "a sync without its crowd package is refused",
			mutate:    func(s *upv1.UserPackageSync) { s.Spec.UserPackageID = "" },
			wantField: "spec.userPackageID", wantText: "",
		},
		{
			name: "excludeMembersOf in a sync's file is refused",
			mutate: func(s *upv1.UserPackageSync) {
				s.Spec.File.ExcludeMembersOf = &upv1.PinnedSource{Source: upv1.Source{S3: validObject().Spec.Source.S3}, Digest: "sha256:" + strings.Repeat("ab", 32)}
			},
			wantField: "spec.file.excludeMembersOf", wantText: "sets excludeMembersOf on its children itself",
		},
		{
			name:      "a mode other than Delta or Full is refused",
			mutate:    func(s *upv1.UserPackageSync) { s.Spec.Mode = "Mirror" },
			wantField: "spec.mode", wantText: "Unsupported value",
		},
		{
			name:      "a drop share over 100 % is refused",
			mutate:    func(s *upv1.UserPackageSync) { s.Spec.ShrinkGuard.MaxDropPercent = ptr.To[int32](150) },
			wantField: "spec.shrinkGuard.maxDropPercent", wantText: "less than or equal to 100",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSync()
			tt.mutate(s)
			assertAdmission(t, s, tt.wantField, tt.wantText)
		})
	}
}

func TestSyncAdmissionDefaults(t *testing.T) {
	s := validSync()
	if err := k8s.Create(context.Background(), s, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	if s.Spec.Interval == nil || s.Spec.Interval.Duration != time.Hour || s.Spec.Mode != upv1.SyncModeDelta ||
		s.Spec.HistoryLimit != 10 || ptr.Deref(s.Spec.ShrinkGuard.MaxDropPercent, 0) != 50 {
		t.Errorf("defaults: interval %v, mode %q, historyLimit %d, maxDropPercent %v; want 1h, Delta, 10, 50",
			s.Spec.Interval, s.Spec.Mode, s.Spec.HistoryLimit, s.Spec.ShrinkGuard.MaxDropPercent)
	}
}
