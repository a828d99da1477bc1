package uploads

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/sandbox"
)

// crashPoint is a place in an upload's life where the manager process
// dies: when WeChat Pay sees the nth call to an endpoint arrive (the call
// is then dropped unprocessed) or answers it.
type crashPoint struct {
	name     string
	endpoint sandbox.Endpoint
	nth      int
	phase    sandbox.Phase
	// lost: the answer dies on the wire with the process, so the call may
	// be made once more (the documented exception: with a default filename,
	// under the next free one).
	lost bool
}

// The file of the crash test is three uploads of 9, 9 and 5 parts.
var crashPoints = []crashPoint{
	{name: "before initiate", endpoint: sandbox.EndpointInitiate, nth: 1, phase: sandbox.PhaseArrived},
	{name: "after initiate's answer, as the first part goes out", endpoint: sandbox.EndpointUploadPart, nth: 1, phase: sandbox.PhaseArrived},
	{name: "after the first part", endpoint: sandbox.EndpointUploadPart, nth: 1, phase: sandbox.PhaseAnswered},
	{name: "after part 6", endpoint: sandbox.EndpointUploadPart, nth: 6, phase: sandbox.PhaseAnswered},
	{name: "after all parts, as merge goes out", endpoint: sandbox.EndpointMerge, nth: 1, phase: sandbox.PhaseArrived},
	{name: "after merge's answer", endpoint: sandbox.EndpointMerge, nth: 1, phase: sandbox.PhaseAnswered},
	{name: "after expand's answer", endpoint: sandbox.EndpointExpand, nth: 1, phase: sandbox.PhaseAnswered},
	{name: "between the uploads of a set", endpoint: sandbox.EndpointInitiate, nth: 2, phase: sandbox.PhaseArrived},
	{name: "in the last upload's parts", endpoint: sandbox.EndpointUploadPart, nth: 21, phase: sandbox.PhaseAnswered},
	{name: "with initiate's answer on the wire", endpoint: sandbox.EndpointInitiate, nth: 1, phase: sandbox.PhaseAnswered, lost: true},
}

// TestAManagerKilledAnywhereFinishesEveryUploadOnce kills the real manager
// binary with SIGKILL at a point of a split upload's life, starts it
// again, and requires the object Ready with every upload's merged file
// exact, one expand per upload, one initiate per upload (but where the
// answer itself was lost) and no more parts sent again than were in flight
// or acknowledged in the second before the kill. `make test` runs three
// points drawn at random (the seed is logged; CROWDPACK_CRASH_SEED replays
// it); `make crash-test` (CROWDPACK_CRASH_POINTS=all) runs every one.
func TestAManagerKilledAnywhereFinishesEveryUploadOnce(t *testing.T) {
	requireCluster(t)
	for _, p := range chosenCrashPoints(t) {
		t.Run(p.name, func(t *testing.T) { crashAndRecover(t, p) })
	}
}

func chosenCrashPoints(t *testing.T) []crashPoint {
	if os.Getenv("CROWDPACK_CRASH_POINTS") == "all" {
		return crashPoints
	}
	seed, err := strconv.ParseUint(os.Getenv("CROWDPACK_CRASH_SEED"), 10, 64)
	if err != nil {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("crash points drawn with CROWDPACK_CRASH_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	points := []crashPoint{}
	for _, i := range rng.Perm(len(crashPoints))[:3] {
		points = append(points, crashPoints[i])
	}
	return points
}

func crashAndRecover(t *testing.T, p crashPoint) {
	h := newHarness(t, harnessOptions{partSize: 4 << 10, noManager: true})
	data := phoneFile(0, 2500) // 82,500 bytes
	h.put("crash.csv", data)
	u := h.object("crash", "crash.csv")
	u.Spec.File.MaxLinesPerUpload = ptrTo[int32](1000)
	u.Spec.UserPackageID = packageA
	if !p.lost {
		u.Spec.File.Filename = "crash_point.csv"
	}
	flags := []string{"--watch-namespaces", h.ns, "--metrics-bind-address", "0",
		"--retry-base-delay", "50ms", "--retry-max-delay", "2s"}
	manager := startManagerBinary(t, h, flags...)
	killedAt := killAt(t, h.sandbox, p, manager)
	h.create(u)

	select {
	case at := <-killedAt:
		_ = manager.Wait()
		h.sandbox.SetHook(nil)
		t.Logf("killed the manager %s", p.name)
		startManagerBinary(t, h, flags...)
		final := h.waitFor("crash", 2*time.Minute, "Ready", func(u *upv1.UserPackageUpload) bool {
			return conditionIs(u, upv1.ConditionReady, "True") || conditionIs(u, upv1.ConditionStalled, "True")
		})
		checkRecovered(t, h, p, final, data, at)
	case <-time.After(2 * time.Minute):
		t.Fatalf("the manager never reached the crash point %q", p.name)
	}
}

// killAt makes the sandbox kill the manager at p, once, and tell when.
func killAt(t *testing.T, sb *sandbox.Server, p crashPoint, manager *exec.Cmd) <-chan time.Time {
	killed := make(chan time.Time, 1)
	var mu sync.Mutex
	seen, done := 0, false
	sb.SetHook(func(e sandbox.Endpoint, _ sandbox.Record, phase sandbox.Phase) bool {
		mu.Lock()
		defer mu.Unlock()
		if done || e != p.endpoint || phase != p.phase {
			return false
		}
		if seen++; seen < p.nth {
			return false
		}
		done = true
		if err := manager.Process.Kill(); err != nil {
			t.Errorf("kill the manager: %v", err)
		}
		killed <- time.Now()
		return true // at arrival: never processed
	})
	return killed
}

// checkRecovered checks the invariants of one crash from the sandbox's record.
func checkRecovered(t *testing.T, h *harness, p crashPoint, final *upv1.UserPackageUpload, data []byte, killedAt time.Time) {
	if !conditionIs(final, upv1.ConditionReady, "True") {
		t.Fatalf("after the restart the object is not Ready: %s", describe(final))
	}
	uploads := final.Status.Uploads
	if len(uploads) != 3 {
		t.Fatalf("%d uploads, want 3", len(uploads))
	}
	var merged []byte
	for _, up := range uploads {
		file, ok := h.sandbox.MergedFile(up.ID)
		if !ok {
			t.Fatalf("upload %d (%s) was never merged", up.Index, up.ID)
		}
		merged = append(merged, file...)
		if n := h.sandbox.CountSucceededExpands(packageA, up.ID); n != 1 {
			t.Errorf("upload %d expanded %d times, want once", up.Index, n)
		}
	}
	if !bytes.Equal(merged, data) {
		t.Errorf("the merged files (%d bytes) are not the source (%d bytes)", len(merged), len(data))
	}
	initiates, wantInitiates := h.sandbox.CountSucceeded(sandbox.EndpointInitiate), len(uploads)
	if p.lost && initiates == wantInitiates+1 {
		wantInitiates++ // the lost call's session, never merged
	}
	if initiates != wantInitiates {
		t.Errorf("%d initiates for %d uploads, want one each", initiates, len(uploads))
	}
	resent, bound := resentParts(h.sandbox.Records(), killedAt)
	t.Logf("%d parts sent again (at most %d: in flight, or acknowledged in the second before the kill)", resent, bound)
	if resent > bound {
		t.Errorf("%d parts sent again, more than the %d in flight or acknowledged in the second before the kill", resent, bound)
	}
}

// resentParts counts the parts WeChat Pay received again, and the most the
// upload page's "Restarts and lost answers" allows: those in flight at the
// kill (the part concurrency) and those acknowledged in the second before
// it (not yet written down).
func resentParts(records []sandbox.Record, killedAt time.Time) (resent, bound int) {
	bound = Defaults.PartConcurrency
	for _, r := range records {
		if r.Endpoint != sandbox.EndpointUploadPart || !r.Succeeded() {
			continue
		}
		if r.Duplicate {
			resent++
		}
		if !r.Time.After(killedAt) && r.Time.After(killedAt.Add(-time.Second)) {
			bound++
		}
	}
	return resent, bound
}
