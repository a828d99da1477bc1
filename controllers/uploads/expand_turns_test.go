package uploads

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/crowdpack/crowdpack/internal/sandbox"
)

// TestExpandsOfOnePackageNeverOverlap: four objects expand one crowd
// package through four workers, each expand taking 300 ms at WeChat Pay;
// the sandbox must never see two of them at once, and the package must
// end up holding every object's members.
func TestExpandsOfOnePackageNeverOverlap(t *testing.T) {
	h := newHarness(t, harnessOptions{maxConcurrentReconciles: 4})
	must(t, h.sandbox.SetFaults(sandbox.EndpointExpand, sandbox.Faults{LatencyMillis: 300}))
	var want []string
	for i := range 4 {
		data := phoneFile(i*100, 100)
		want = append(want, strings.Fields(string(data))...)
		key := fmt.Sprintf("segment-%d.csv", i)
		h.put(key, data)
		u := h.object(fmt.Sprintf("segment-%d", i), key)
		u.Spec.UserPackageID = packageA
		h.create(u)
	}
	for i := range 4 {
		h.waitReady(fmt.Sprintf("segment-%d", i))
	}
	if got := h.sandbox.MostExpandsAtOnce(packageA); got != 1 {
		t.Errorf("WeChat Pay saw %d expands of package %s at once, want 1", got, packageA)
	}
	slices.Sort(want)
	if got := h.sandbox.PackageMembers(packageA); !slices.Equal(got, want) {
		t.Errorf("package %s holds %d members, want the %d of the four files", packageA, len(got), len(want))
	}
}
