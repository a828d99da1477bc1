package metrics

import (
	"runtime"
	"testing"

	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/crowdpack/crowdpack/internal/version"
)

// The manager serves controller-runtime's registry; crowdpack_build_info
// must be in it with the stamped version (dev in a test binary).
func TestBuildInfoIsServedWithTheVersion(t *testing.T) {
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"version": version.Version, "commit": version.Commit, "goversion": runtime.Version()}
	for _, f := range families {
		if f.GetName() != "crowdpack_build_info" {
			continue
		}
		if len(f.GetMetric()) != 1 {
			t.Fatalf("crowdpack_build_info has %d series, want 1", len(f.GetMetric()))
		}
		m := f.GetMetric()[0]
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("label %s = %q, want %q", k, got[k], v)
			}
		}
		if m.GetGauge().GetValue() != 1 {
			t.Errorf("value %v, want 1", m.GetGauge().GetValue())
		}
		return
	}
	t.Fatal("crowdpack_build_info is not registered with controller-runtime's registry")
}
