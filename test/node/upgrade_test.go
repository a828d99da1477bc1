//go:build e2enode

package node

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crowdpack/crowdpack/internal/sandbox"
)

const leaseName = "crowdpack.wechatpay.crowdpack.io"

// helmUpgradeRepeatsNoCall upgrades to the second release's chart (its
// image): the pod rolls, the new manager handles the finished upload (a
// requested reconcile is echoed) and the sandbox records no new call.
func helmUpgradeRepeatsNoCall(t *testing.T) {
	before := len(world.sandbox.Records())
	helm(t, "upgrade", helmRelease, second.chart(), "--namespace", managerNamespace, "--values", helmValues(t, nil), "--wait=false")
	waitManagerReady(t, 1, image(second))
	requestReconcile(t, uploadName)
	if after := world.sandbox.Records(); len(after) != before {
		t.Fatalf("after the upgrade the sandbox recorded %d more calls for finished objects: %v", len(after)-before, after[before:])
	}
}

// requestReconcile asks for a reconcile as Flux does and waits for the
// manager to echo it: it has handled the object since.
func requestReconcile(t *testing.T, name string) {
	t.Helper()
	at := time.Now().UTC().Format(time.RFC3339Nano)
	u, err := getUpload(context.Background(), name)
	must(t, err)
	patch := client.MergeFrom(u.DeepCopy())
	if u.Annotations == nil {
		u.Annotations = map[string]string{}
	}
	u.Annotations["reconcile.fluxcd.io/requestedAt"] = at
	must(t, kube.Patch(context.Background(), u, patch))
	eventually(t, 2*time.Minute, "the reconcile request handled", func(ctx context.Context) error {
		u, err := getUpload(ctx, name)
		if err != nil {
			return err
		}
		if u.Status.LastHandledReconcileAt != at {
			return fmt.Errorf("lastHandledReconcileAt %q, want %q; manager pods: %s", u.Status.LastHandledReconcileAt, at, managerPodStates(ctx))
		}
		return nil
	})
}

// deletingTheLeaderMidPartsInitiatesOnce runs two replicas, slows the
// sandbox's parts down, deletes the leader's pod with kubectl once parts
// arrive, and checks that the standby finishes the upload with one
// initiate, one merge and one expand, every part received.
func deletingTheLeaderMidPartsInitiatesOnce(t *testing.T) {
	helm(t, "upgrade", helmRelease, second.chart(), "--namespace", managerNamespace,
		"--values", helmValues(t, map[string]any{"replicaCount": 2}), "--wait=false")
	waitManagerReady(t, 2, image(second))
	leader := leaderPod(t)

	partsArrived := make(chan struct{})
	var once sync.Once
	world.sandbox.SetHook(func(e sandbox.Endpoint, _ sandbox.Record, phase sandbox.Phase) bool {
		if e == sandbox.EndpointUploadPart && phase == sandbox.PhaseArrived {
			once.Do(func() { close(partsArrived) })
			// About 10 s of parts (41 of them, 4 at once): time for kubectl
			// to delete the leader, on a loaded machine too, while parts remain.
			time.Sleep(time.Second)
		}
		return false
	})
	t.Cleanup(func() { world.sandbox.SetHook(nil) })

	const name = "leader-lost-mid-parts"
	before := len(world.sandbox.Records())
	createUpload(t, name, 20000, 500000) // one upload of about 40 parts
	select {
	case <-partsArrived:
	case <-time.After(2 * time.Minute):
		t.Fatalf("no part reached the sandbox; manager pods: %s", managerPodStates(context.Background()))
	}
	kubectl(t, nil, "delete", "pod", "--namespace", managerNamespace, leader, "--wait=false")
	partsAtDelete := partsSince(before)
	u := waitUploadReady(t, name, 4*time.Minute)
	world.sandbox.SetHook(nil)
	if next := leaderPod(t); next == leader {
		t.Errorf("the deleted pod %s still leads", leader)
	}

	if len(u.Status.Uploads) != 1 {
		t.Fatalf("status.uploads has %d uploads, want 1", len(u.Status.Uploads))
	}
	got, s := recordedCalls(u), u.Status.Uploads[0]
	for _, call := range []string{"initiate", "merge", "expand"} {
		if n := got[s.ID+" "+call]; n != 1 {
			t.Errorf("%s succeeded %d times, want once", call, n)
		}
	}
	if partsAtDelete >= int(s.PartCount) {
		t.Errorf("all %d parts had arrived when the leader was deleted: nothing was left mid-parts", s.PartCount)
	}
	for p := int64(1); p <= s.PartCount; p++ {
		if got[fmt.Sprintf("%s upload_part %d", s.ID, p)] == 0 {
			t.Errorf("part %d of %d never reached the sandbox", p, s.PartCount)
		}
	}
	if n := initiatesSince(before); n != 1 {
		t.Errorf("the sandbox answered %d initiates since the upload was created, want 1", n)
	}
}

// initiatesSince counts the initiates the sandbox answered after its
// first n records, whatever their upload id: a second session of one
// object would have another.
func initiatesSince(n int) int {
	count := 0
	for _, r := range world.sandbox.Records()[n:] {
		if r.Endpoint == sandbox.EndpointInitiate && r.Succeeded() {
			count++
		}
	}
	return count
}

// partsSince counts the distinct parts the sandbox took after its first n records.
func partsSince(n int) int {
	parts := map[string]bool{}
	for _, r := range world.sandbox.Records()[n:] {
		if r.Endpoint == sandbox.EndpointUploadPart && r.Succeeded() {
			parts[fmt.Sprintf("%s %d", r.UploadID, r.PartNumber)] = true
		}
	}
	return len(parts)
}

// leaderPod is the manager pod holding the leader election Lease.
func leaderPod(t *testing.T) string {
	t.Helper()
	var leader string
	eventually(t, time.Minute, "a leader among the manager's pods", func(ctx context.Context) error {
		lease := &coordinationv1.Lease{}
		if err := kube.Get(ctx, clientKey(managerNamespace, leaseName), lease); err != nil {
			return err
		}
		holder := ""
		if lease.Spec.HolderIdentity != nil {
			holder = *lease.Spec.HolderIdentity
		}
		pods, err := managerPods(ctx)
		if err != nil {
			return err
		}
		for _, p := range pods {
			if strings.HasPrefix(holder, p.Name+"_") {
				leader = p.Name
				return nil
			}
		}
		return fmt.Errorf("the lease is held by %q, no current pod", holder)
	})
	return leader
}
