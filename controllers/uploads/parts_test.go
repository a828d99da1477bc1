package uploads

import (
	"bytes"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/sandbox"
)

func TestARestartMidUploadResumesWithoutResendingParts(t *testing.T) {
	h := newHarness(t, harnessOptions{partSize: 16 << 10, noManager: true})
	// Slow parts, so that the manager is stopped with some sent and some not.
	must(t, h.sandbox.SetFaults(sandbox.EndpointUploadPart, sandbox.Faults{LatencyMillis: 500}))
	h.startManager(nil)
	data, stoppedAt := h.stopPartway(h.stopManager)
	must(t, h.sandbox.SetFaults(sandbox.EndpointUploadPart, sandbox.Faults{}))
	h.startManager(nil)

	u := h.waitReady("vip")
	assertEachPartOnce(t, h, firstUpload(u).PartCount)
	if merged, _ := h.sandbox.MergedFile(firstUpload(u).ID); !bytes.Equal(merged, data) {
		t.Error("the reassembled file differs from the source")
	}
	if n := h.sandbox.CountSucceeded(sandbox.EndpointInitiate); n != 1 {
		t.Errorf("initiate called %d times, want once", n)
	}
	t.Logf("stopped after %d of %d parts", stoppedAt, firstUpload(u).PartCount)
}

func TestFaultsOnPartsStillConvergeWithEachPartAcknowledgedOnce(t *testing.T) {
	h := newHarness(t, harnessOptions{partSize: 16 << 10, noManager: true})
	must(t, h.sandbox.SetFaults(sandbox.EndpointUploadPart, sandbox.Faults{
		SystemErrorPercent: 10, UnavailablePercent: 5, RateLimitPercent: 10, LostResponsePercent: 10, RetryAfterSeconds: 1,
	}))
	must(t, h.sandbox.SetFaults(sandbox.EndpointMerge, sandbox.Faults{SystemErrorPercent: 30}))
	h.startManager(nil)
	data := phoneFile(0, 10_000)
	h.put("vip.csv", data)
	h.create(h.object("vip", "vip.csv"))

	u := h.waitFor("vip", 120*time.Second, "Ready", func(u *upv1.UserPackageUpload) bool {
		return conditionIs(u, upv1.ConditionReady, metav1.ConditionTrue)
	})
	assertEachPartOnce(t, h, firstUpload(u).PartCount)
	if merged, _ := h.sandbox.MergedFile(firstUpload(u).ID); !bytes.Equal(merged, data) {
		t.Error("the reassembled file differs from the source")
	}
	faults := 0
	for _, r := range h.sandbox.Records() {
		if r.Fault != "" {
			faults++
		}
	}
	if faults == 0 {
		t.Error("no fault was injected: the test proves nothing")
	}
	t.Logf("%d faults injected", faults)
}

func TestAnObjectChangedMidUploadStalls(t *testing.T) {
	h := newHarness(t, harnessOptions{partSize: 16 << 10, noManager: true})
	must(t, h.sandbox.SetFaults(sandbox.EndpointUploadPart, sandbox.Faults{LatencyMillis: 500}))
	h.startManager(nil)
	h.put("vip.csv", phoneFile(0, 10_000))
	h.create(h.object("vip", "vip.csv"))
	h.waitFor("vip", 30*time.Second, "uploading", func(u *upv1.UserPackageUpload) bool {
		return firstUpload(u) != nil && firstUpload(u).PartsDone >= 2
	})
	h.put("vip.csv", phoneFile(1, 10_000))

	u := h.waitStalled("vip", upv1.ReasonSourceChanged)
	if firstUpload(u).MergedAt != nil {
		t.Error("a changed object was merged")
	}
	if n := h.sandbox.CountSucceeded(sandbox.EndpointMerge); n != 0 {
		t.Errorf("merge called %d times", n)
	}
	h.waitEvent("vip", corev1.EventTypeWarning, upv1.ReasonSourceChanged)
}

// stopPartway uploads a 21-part file (parts must be slow) and calls stop
// once a few parts are acknowledged; it returns the file and how many parts
// status showed done after the stop.
func (h *harness) stopPartway(stop func()) (data []byte, stoppedAt int64) {
	h.t.Helper()
	data = phoneFile(0, 10_000) // 330,000 bytes: 21 parts of 16 KiB
	h.put("vip.csv", data)
	h.create(h.object("vip", "vip.csv"))
	h.waitFor("vip", 30*time.Second, "partway uploaded", func(u *upv1.UserPackageUpload) bool {
		return firstUpload(u) != nil && firstUpload(u).PartsDone >= 4
	})
	stop()
	stoppedAt = firstUpload(h.get("vip")).PartsDone
	if stoppedAt >= 21 {
		h.t.Fatal("all parts were done before the stop; slow the parts down")
	}
	return data, stoppedAt
}
