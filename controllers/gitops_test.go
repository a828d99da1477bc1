package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/sandbox"
)

func TestASpecChangeStartsANewUploadWithTheNewDigest(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.put("a.csv", phoneFile(0, 100))
	h.put("b.csv", phoneFile(100, 100))
	u := h.object("vip", "a.csv")
	u.Spec.UploadParts = ptrTo(false)
	h.create(u)
	first := h.waitReady("vip")

	h.update("vip", func(u *v1.UserPackageUpload) { u.Spec.Source.S3.Key = "b.csv" })
	second := h.waitReady("vip")

	if second.Status.Upload.ID == first.Status.Upload.ID || second.Status.Source.Digest == first.Status.Source.Digest {
		t.Fatalf("no new upload: %s/%s then %s/%s", first.Status.Upload.ID, first.Status.Source.Digest, second.Status.Upload.ID, second.Status.Source.Digest)
	}
	if second.Status.Upload.Generation != second.Generation || second.Status.Upload.Filename != "b.csv" {
		t.Errorf("upload belongs to generation %d (%s), want %d (b.csv)", second.Status.Upload.Generation, second.Status.Upload.Filename, second.Generation)
	}
	if h := second.Status.History; len(h) != 1 || h[0].ID != first.Status.Upload.ID {
		t.Errorf("history %+v, want the first upload", h)
	}
	if n := h.sandbox.CountSucceeded(sandbox.EndpointInitiate); n != 2 {
		t.Errorf("initiate called %d times, want twice", n)
	}
}

func TestSuspendStopsAllWorkAndSaysSo(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.put("vip.csv", phoneFile(0, 100))
	u := h.object("vip", "vip.csv")
	u.Spec.Suspend = true
	h.create(u)

	u = h.waitFor("vip", 30*time.Second, "suspended", func(u *v1.UserPackageUpload) bool {
		c := findCondition(u, v1.ConditionReady)
		return c != nil && c.Reason == v1.ReasonSuspended
	})
	time.Sleep(time.Second)
	if n := len(h.sandbox.Records()); n != 0 || u.Status.Source != nil {
		t.Fatalf("a suspended object was worked on: %d calls, source %+v", n, u.Status.Source)
	}
	h.update("vip", func(u *v1.UserPackageUpload) { u.Spec.Suspend = false })
	h.waitReady("vip")
}

func TestARequestedReconcileIsEchoedAndReadsTheFileAgain(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.put("vip.csv", phoneFile(0, 100))
	u := h.object("vip", "vip.csv")
	u.Spec.UploadParts = ptrTo(false)
	h.create(u)
	first := h.waitReady("vip")

	// Same bytes: the request is handled, and no new upload starts.
	h.update("vip", func(u *v1.UserPackageUpload) {
		u.Annotations = map[string]string{v1.ReconcileRequestAnnotation: "2026-11-26T10:00:00Z"}
	})
	u = h.waitFor("vip", 30*time.Second, "handled", func(u *v1.UserPackageUpload) bool {
		return u.Status.LastHandledReconcileAt == "2026-11-26T10:00:00Z"
	})
	if u.Status.Upload.ID != first.Status.Upload.ID {
		t.Errorf("a reconcile request over the same bytes started upload %s", u.Status.Upload.ID)
	}

	// New bytes: the request reads them and starts a new upload.
	h.put("vip.csv", phoneFile(1000, 100))
	h.update("vip", func(u *v1.UserPackageUpload) {
		u.Annotations = map[string]string{v1.ReconcileRequestAnnotation: "2026-11-26T11:00:00Z"}
	})
	u = h.waitFor("vip", 30*time.Second, "re-uploaded", func(u *v1.UserPackageUpload) bool {
		return u.Status.LastHandledReconcileAt == "2026-11-26T11:00:00Z" &&
			conditionIs(u, v1.ConditionReady, metav1.ConditionTrue) && u.Status.Upload.ID != first.Status.Upload.ID
	})
	if u.Status.Source.Digest == first.Status.Source.Digest {
		t.Error("the digest did not change with the bytes")
	}
	if u.Status.Upload.Filename != "vip-2.csv" {
		t.Errorf("the second upload is named %q, want vip-2.csv (WeChat Pay refuses a filename twice)", u.Status.Upload.Filename)
	}
}
