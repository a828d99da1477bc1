package uploads

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/sandbox"
)

// phoneFile is n lines of MD5-hashed mobile numbers, starting at seed.
func phoneFile(seed, n int) []byte {
	var b bytes.Buffer
	for i := range n {
		sum := md5.Sum(fmt.Appendf(nil, "1%010d", seed+i))
		b.WriteString(hex.EncodeToString(sum[:]))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestAnUploadReachesReadyWithTheSandboxsUploadIDAndPlan(t *testing.T) {
	h := newHarness(t, harnessOptions{partSize: 64 << 10})
	data := phoneFile(0, 10_000) // 330,000 bytes: 6 parts of 64 KiB
	h.put("exports/vip.csv", data)
	u := h.object("vip", "exports/vip.csv")
	u.Spec.UploadParts = ptr.To(false)
	h.create(u)

	u = h.waitReady("vip")
	records := h.sandbox.Records()
	if n := h.sandbox.CountSucceeded(sandbox.EndpointInitiate); n != 1 {
		t.Fatalf("initiate calls = %d, want exactly 1", n)
	}
	if got, want := firstUpload(u).ID, records[0].UploadID; got != want {
		t.Errorf("status upload id %q, sandbox recorded %q", got, want)
	}
	if got, want := u.Status.Source.Digest, "sha256:"+sha256Hex(data); got != want {
		t.Errorf("digest %s, want %s", got, want)
	}
	if got, want := u.Status.Source.Size, int64(len(data)); got != want {
		t.Errorf("size %d, want %d", got, want)
	}
	if u.Status.Source.ETag == "" {
		t.Error("status.source.etag is empty")
	}
	if got, want := firstUpload(u).PartCount, (int64(len(data))+(64<<10)-1)/(64<<10); got != want || firstUpload(u).PartSize != 64<<10 {
		t.Errorf("plan %d parts of %d, want %d of %d", got, firstUpload(u).PartSize, want, 64<<10)
	}
	if c := u.Status.Content; c == nil || c.Lines != 10_000 || c.InvalidLines != 0 {
		t.Errorf("content %+v, want 10000 lines, none invalid", c)
	}
	if got := firstUpload(u).Filename; got != "vip.csv" {
		t.Errorf("filename %q, want the key's base name vip.csv", got)
	}
	if s := kstatus(t, u); s != status.CurrentStatus {
		t.Errorf("kstatus %s, want Current", s)
	}
	if n := h.sandbox.CountSucceeded(sandbox.EndpointUploadPart); n != 0 {
		t.Errorf("%d parts sent with uploadParts false", n)
	}
	h.waitEvent("vip", corev1.EventTypeNormal, upv1.ReasonSucceeded)
	h.expectNoWarnings("vip")
}

func TestAMultiPartFileIsUploadedMergedAndExpandedOnce(t *testing.T) {
	h := newHarness(t, harnessOptions{partSize: 64 << 10})
	data := phoneFile(0, 20_000) // 660,000 bytes: 11 parts
	h.put("vip.csv", data)
	u := h.object("vip", "vip.csv")
	u.Spec.UserPackageID = "01000100010000000007"
	h.create(u)

	u = h.waitReady("vip")
	up := firstUpload(u)
	if up.ExpandedAt == nil || up.MergedAt == nil || up.ResourceID == "" {
		t.Fatalf("want merged and expanded, got %+v", *up)
	}
	if up.PartsDone != up.PartCount || up.BytesDone != int64(len(data)) || up.Progress != fmt.Sprintf("%d/%d", up.PartCount, up.PartCount) {
		t.Errorf("progress %d/%d parts, %d bytes (%q)", up.PartsDone, up.PartCount, up.BytesDone, up.Progress)
	}
	merged, ok := h.sandbox.MergedFile(up.ID)
	if !ok || !bytes.Equal(merged, data) {
		t.Fatalf("the sandbox's reassembled file (%d bytes) is not the source (%d bytes)", len(merged), len(data))
	}
	assertEachPartOnce(t, h, up.PartCount)
	for _, e := range []sandbox.Endpoint{sandbox.EndpointInitiate, sandbox.EndpointMerge, sandbox.EndpointExpand} {
		if n := h.sandbox.CountSucceeded(e); n != 1 {
			t.Errorf("%s succeeded %d times, want once", e, n)
		}
	}
	for _, c := range []string{upv1.ConditionSourceVerified, upv1.ConditionInitiated, upv1.ConditionPartsUploaded, upv1.ConditionMerged, upv1.ConditionExpanded} {
		if !conditionIs(u, c, metav1.ConditionTrue) {
			t.Errorf("condition %s is not True:\n%s", c, describe(u))
		}
	}
	if s := kstatus(t, u); s != status.CurrentStatus {
		t.Errorf("kstatus %s, want Current", s)
	}
	h.expectNoWarnings("vip")

	// Nothing happens again on a later reconcile.
	h.update("vip", func(u *upv1.UserPackageUpload) {
		u.Annotations = map[string]string{"example.com/touched": "yes"}
	})
	h.waitIdle()
	if n := len(h.sandbox.Records()); n != int(up.PartCount)+3 {
		t.Errorf("sandbox saw %d calls after a later reconcile, want %d", n, up.PartCount+3)
	}
}

// assertEachPartOnce checks that every part was acknowledged exactly once
// (a response that was lost does not count: the client never saw it).
func assertEachPartOnce(t *testing.T, h *harness, parts int64) {
	t.Helper()
	acked := map[int]int{}
	for _, r := range h.sandbox.Records() {
		if r.Endpoint == sandbox.EndpointUploadPart && r.Succeeded() && r.Fault == "" {
			acked[r.PartNumber]++
		}
	}
	for p := 1; p <= int(parts); p++ {
		if acked[p] != 1 {
			t.Errorf("part %d acknowledged %d times, want once", p, acked[p])
		}
	}
}
