package uploads

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/sandbox"
)

// runningManager is one manager started by a harness.
type runningManager struct {
	t      testing.TB
	mgr    ctrl.Manager
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// stop cancels the manager and waits until it returned; it may be called
// more than once.
func (m *runningManager) stop() {
	m.once.Do(func() {
		m.cancel()
		if err := <-m.done; err != nil {
			m.t.Errorf("manager: %v", err)
		}
	})
}

// elected is closed when the manager leads (at once without leader election).
func (m *runningManager) elected() <-chan struct{} { return m.mgr.Elected() }

// electLeader configures leader election in the test's namespace, as main.go
// does with --leader-elect, with short timings so that a takeover is quick,
// and binds the leader election Role of config/rbac there for the manager user.
func (h *harness) electLeader(o *ctrl.Options) {
	h.t.Helper()
	must(h.t, bindLeaderElectionRole(h.ctx, h.ns))
	o.LeaderElection = true
	o.LeaderElectionID = "crowdpack-" + h.ns
	o.LeaderElectionNamespace = h.ns
	o.LeaseDuration = ptr.To(3 * time.Second)
	o.RenewDeadline = ptr.To(2 * time.Second)
	o.RetryPeriod = ptr.To(250 * time.Millisecond)
	o.LeaderElectionReleaseOnCancel = true
}

// leaseHolder is who holds the test's leader election Lease, if anyone.
func (h *harness) leaseHolder() string {
	h.t.Helper()
	var lease coordinationv1.Lease
	if err := kube.Client.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: "crowdpack-" + h.ns}, &lease); err != nil {
		return ""
	}
	return ptr.Deref(lease.Spec.HolderIdentity, "")
}

// TestALeaderStoppedMidUploadIsReplacedAndTheUploadFinishesOnce runs two
// managers with leader election, stops the leader while parts are being
// sent, and checks that the other takes over and finishes the upload
// without a second initiate or a resent part.
func TestALeaderStoppedMidUploadIsReplacedAndTheUploadFinishesOnce(t *testing.T) {
	h := newHarness(t, harnessOptions{partSize: 16 << 10, noManager: true, leaderElection: true})
	must(t, h.sandbox.SetFaults(sandbox.EndpointUploadPart, sandbox.Faults{LatencyMillis: 500}))
	a, b := h.startManager(nil), h.startManager(nil)
	var leader, follower *runningManager
	select {
	case <-a.elected():
		leader, follower = a, b
	case <-b.elected():
		leader, follower = b, a
	case <-time.After(30 * time.Second):
		t.Fatal("no manager was elected")
	}
	select {
	case <-follower.elected():
		t.Fatal("both managers lead")
	default:
	}
	firstHolder := h.leaseHolder()
	if firstHolder == "" {
		t.Fatal("the leader holds no Lease")
	}

	data, stoppedAt := h.stopPartway(leader.stop)
	select {
	case <-follower.elected():
	case <-time.After(15 * time.Second):
		t.Fatal("the other manager did not take over")
	}
	if holder := h.leaseHolder(); holder == firstHolder || holder == "" {
		t.Errorf("the Lease is held by %q after the takeover, was %q", holder, firstHolder)
	}

	u := h.waitReady("vip")
	if n := h.sandbox.CountSucceeded(sandbox.EndpointInitiate); n != 1 {
		t.Errorf("initiate succeeded %d times, want once", n)
	}
	assertEachPartOnce(t, h, firstUpload(u).PartCount)
	if merged, _ := h.sandbox.MergedFile(firstUpload(u).ID); !bytes.Equal(merged, data) {
		t.Error("the reassembled file differs from the source")
	}
	t.Logf("leader stopped after %d of %d parts; %s took over from %s", stoppedAt, firstUpload(u).PartCount, h.leaseHolder(), firstHolder)
}

// TestAnAPIServerRestartMidReconcileLosesNothing restarts kube-apiserver
// (same etcd, port and certificates) while ten objects reconcile, four of
// them multi-part with slow parts: each ends Ready with one initiate and
// each of its parts acknowledged once, and the suite's own client works on.
func TestAnAPIServerRestartMidReconcileLosesNothing(t *testing.T) {
	h := newHarness(t, harnessOptions{partSize: 16 << 10, noManager: true})
	must(t, h.sandbox.SetFaults(sandbox.EndpointUploadPart, sandbox.Faults{LatencyMillis: 300}))
	h.startManager(nil)
	files := map[string][]byte{}
	for i := range 10 {
		name := fmt.Sprintf("vip-%d", i)
		lines := 100 // one part
		if i%3 == 0 {
			lines = 10_000 // 21 parts
		}
		files[name] = phoneFile(i*100_000, lines)
		h.put(name+".csv", files[name])
		h.create(h.object(name, name+".csv"))
	}
	h.waitFor("vip-0", 30*time.Second, "uploading", func(u *upv1.UserPackageUpload) bool {
		return firstUpload(u) != nil && firstUpload(u).PartsDone >= 2
	})
	start := time.Now()
	killed, err := kube.RestartAPIServer(time.Second)
	must(t, err)
	t.Logf("kube-apiserver was restarted in %s (killed after the grace period: %t)", time.Since(start).Round(time.Millisecond), killed)

	uploads := map[string]bool{}
	for name, data := range files {
		u := h.waitFor(name, 120*time.Second, "Ready", func(u *upv1.UserPackageUpload) bool {
			return conditionIs(u, upv1.ConditionReady, metav1.ConditionTrue) && u.Status.ObservedGeneration == u.Generation
		})
		up := firstUpload(u)
		uploads[up.ID] = true
		if got := countSucceeded(h, sandbox.EndpointInitiate, up.ID); got != 1 {
			t.Errorf("%s: initiate of %s succeeded %d times, want once", name, up.ID, got)
		}
		assertEachPartOfUploadOnce(t, h, up.ID, up.PartCount)
		if merged, _ := h.sandbox.MergedFile(up.ID); !bytes.Equal(merged, data) {
			t.Errorf("%s: the reassembled file differs from the source", name)
		}
	}
	if n := h.sandbox.CountSucceeded(sandbox.EndpointInitiate); n != len(files) || len(uploads) != len(files) {
		t.Errorf("%d initiates succeeded for %d distinct uploads, want %d of each", n, len(uploads), len(files))
	}
	// The suite's admin client still works.
	var list upv1.UserPackageUploadList
	must(t, kube.Client.List(h.ctx, &list, client.InNamespace(h.ns)))
	if t.Failed() {
		logManagerErrors(t, h.ns, 15)
	}
}

// logManagerErrors logs the first errors the managers logged about namespace.
func logManagerErrors(t *testing.T, namespace string, n int) {
	t.Helper()
	for _, line := range strings.Split(managerLogs.String(), "\n") {
		if n > 0 && strings.Contains(line, `"namespace":"`+namespace+`"`) && strings.Contains(line, `"level":"error"`) {
			t.Log(line)
			n--
		}
	}
}

func countSucceeded(h *harness, e sandbox.Endpoint, uploadID string) int {
	n := 0
	for _, r := range h.sandbox.Records() {
		if r.Endpoint == e && r.UploadID == uploadID && r.Succeeded() {
			n++
		}
	}
	return n
}

// assertEachPartOfUploadOnce is assertEachPartOnce for one of several uploads.
func assertEachPartOfUploadOnce(t *testing.T, h *harness, uploadID string, parts int64) {
	t.Helper()
	acked := map[int]int{}
	for _, r := range h.sandbox.Records() {
		if r.Endpoint == sandbox.EndpointUploadPart && r.UploadID == uploadID && r.Succeeded() && r.Fault == "" {
			acked[r.PartNumber]++
		}
	}
	for p := 1; p <= int(parts); p++ {
		if acked[p] != 1 {
			t.Errorf("upload %s: part %d acknowledged %d times, want once", uploadID, p, acked[p])
		}
	}
}
