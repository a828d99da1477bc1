package uploads

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/sandbox"
)

// excluding makes u upload only the members that key's version versionID
// (the current one if empty), with the given bytes, does not have.
func (h *harness) excluding(u *upv1.UserPackageUpload, key, versionID string, base []byte) {
	s3 := *u.Spec.Source.S3
	s3.Key = key
	u.Spec.File.ExcludeMembersOf = &upv1.PinnedSource{
		Source:    upv1.Source{S3: &s3},
		Digest:    digestPrefix + sha256Hex(base),
		VersionID: versionID,
	}
}

// rawNumbersFile is n raw mobile numbers from 13800000000+first, each
// written in form (a fmt verb for its 11 digits), with the MD5 lines
// WeChat Pay wants for them, computed here.
func rawNumbersFile(first, n int, form string) (file, hashed []byte) {
	var f, want bytes.Buffer
	for i := range n {
		digits := fmt.Sprintf("1%010d", 3_800_000_000+first+i)
		fmt.Fprintf(&f, form+"\n", digits)
		want.Write(md5Lines(digits))
	}
	return f.Bytes(), want.Bytes()
}

// members are the lines of an uploaded file, sorted, as the sandbox lists
// a package's members.
func members(file []byte) []string {
	return slices.Sorted(strings.SplitSeq(strings.TrimSuffix(string(file), "\n"), "\n"))
}

// assertPackageHolds checks that the package was expanded with exactly want.
func assertPackageHolds(t *testing.T, h *harness, want []byte) {
	t.Helper()
	got := h.sandbox.PackageMembers(packageA)
	if !slices.Equal(got, members(want)) {
		t.Errorf("the package holds %d members, want exactly the %d new ones", len(got), len(members(want)))
	}
}

// assertDelta checks status.delta's counts.
func assertDelta(t *testing.T, u *upv1.UserPackageUpload, added, unchanged, left, baseMembers int64) {
	t.Helper()
	d := u.Status.Delta
	if d == nil {
		t.Fatalf("no status.delta:\n%s", describe(u))
	}
	if d.Added != added || d.Unchanged != unchanged || d.Left != left || d.BaseMembers != baseMembers {
		t.Errorf("delta %d added, %d unchanged, %d left, %d base members; want %d, %d, %d, %d",
			d.Added, d.Unchanged, d.Left, d.BaseMembers, added, unchanged, left, baseMembers)
	}
}

func TestExcludeMembersOfAnEarlierVersionUploadsOnlyTheNewMembers(t *testing.T) {
	h := newHarness(t, harnessOptions{partSize: 4 << 10})
	must(t, storage.EnableVersioning(h.ctx, h.bucket))
	base, revision := phoneFile(0, 1_000), phoneFile(500, 1_000)
	info, err := storage.PutBytes(h.ctx, h.bucket, "vip.csv", base)
	must(t, err)
	if info.VersionID == "" {
		t.Fatal("the bucket is not versioned")
	}
	h.put("vip.csv", revision) // a new version of the same key
	u := h.object("vip", "vip.csv")
	u.Spec.UserPackageID = packageA
	h.excluding(u, "vip.csv", info.VersionID, base)
	h.create(u)

	u = h.waitReady("vip")
	added := phoneFile(1_000, 500)
	if got := mergedFiles(t, h, u); !bytes.Equal(got, added) {
		t.Errorf("the sandbox received %d bytes, want the %d bytes of the 500 members the base lacks", len(got), len(added))
	}
	assertPackageHolds(t, h, added)
	assertDelta(t, u, 500, 500, 500, 1_000)
	if s := u.Status.Source; s.Digest != digestPrefix+sha256Hex(revision) || s.Size != int64(len(revision)) {
		t.Errorf("status.source %s, %d bytes; want the revision's own digest and size, to pin it as a later base", s.Digest, s.Size)
	}
	if b := u.Status.Delta.Base; b.VersionID != info.VersionID || b.Digest != u.Spec.File.ExcludeMembersOf.Digest {
		t.Errorf("status.delta.base %+v, want version %s with the pinned digest", b, info.VersionID)
	}
	if msg := findCondition(u, upv1.ConditionSourceVerified).Message; !strings.Contains(msg, "500 added") || !strings.Contains(msg, "500 of its 1000 members left") {
		t.Errorf("SourceVerified does not give the counts: %s", msg)
	}
}

func TestExcludeMembersOfComparesRawNumbersAsTheirMD5(t *testing.T) {
	h := newHarness(t, harnessOptions{partSize: 4 << 10})
	base, _ := rawNumbersFile(0, 600, "%s")
	revision, _ := rawNumbersFile(200, 600, "+86 %s") // 400 in the base in another form, 200 new
	revision = append(revision, "+1 415 555 0110\n"...)
	_, added := rawNumbersFile(600, 200, "%s")
	h.put("base.csv", base)
	h.put("crm.csv", revision)
	u := h.object("crm", "crm.csv")
	u.Spec.UserPackageID = packageA
	u.Spec.File.Hashing = upv1.HashingMD5
	h.excluding(u, "base.csv", "", base)
	h.create(u)

	u = h.waitReady("crm")
	if got := mergedFiles(t, h, u); !bytes.Equal(got, added) {
		t.Errorf("the sandbox received\n%s\nwant the MD5 lines of the 200 new numbers", got)
	}
	assertPackageHolds(t, h, added)
	assertDelta(t, u, 200, 400, 200, 600)
	if c := u.Status.Content; c.Lines != 601 || c.InvalidLines != 1 || fmt.Sprint(c.InvalidLineNumbers) != "[601]" {
		t.Errorf("content %+v, want 601 lines, line 601 invalid", c)
	}
	assertShowsNoSecret(t, h, "crm")
}

func TestExcludeMembersOfCutsTheNewMembersIntoUploads(t *testing.T) {
	h := newHarness(t, harnessOptions{partSize: 16 << 10})
	base := phoneFile(0, 500)
	revision := append(phoneFile(0, 2_000), phoneFile(3_000, 1_500)...) // 1,500 + 1,500 new
	added := append(phoneFile(500, 1_500), phoneFile(3_000, 1_500)...)
	h.put("base.csv", base)
	h.put("vip.csv", revision)
	u := h.object("vip", "vip.csv")
	u.Spec.UserPackageID = packageA
	u.Spec.File.MaxLinesPerUpload = ptrTo[int32](1000)
	h.excluding(u, "base.csv", "", base)
	h.create(u)

	u = h.waitReady("vip")
	var lines []int64
	for _, up := range u.Status.Uploads {
		lines = append(lines, up.Lines)
	}
	if fmt.Sprint(lines) != "[1000 1000 1000]" {
		t.Errorf("uploads of %v lines, want the 3,000 new members in 3 uploads of 1,000", lines)
	}
	if got := mergedFiles(t, h, u); !bytes.Equal(got, added) {
		t.Errorf("the sandbox's files together (%d bytes) differ from the new members (%d bytes)", len(got), len(added))
	}
	assertPackageHolds(t, h, added)
	assertEachPartOnceOfEach(t, h, u)
	assertDelta(t, u, 3_000, 500, 0, 500)
}

func TestExcludeMembersOfABaseThatIsNotAsPinnedStallsWithoutACall(t *testing.T) {
	cases := []struct {
		name   string
		base   []byte // stored at base.csv
		pinned []byte // what the spec's digest is of, if not base
		want   string
	}{
		{"a base overwritten since", phoneFile(0, 100), phoneFile(1, 100), "not the pinned"},
		{"a base of another data type", []byte("o-AbCdEf0123456789\no-AbCdEf0123456780\n"), nil, "no valid Phone member"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			h.put("base.csv", tc.base)
			h.put("vip.csv", phoneFile(0, 200))
			u := h.object("vip", "vip.csv")
			u.Spec.UserPackageID = packageA
			pinned := tc.base
			if tc.pinned != nil {
				pinned = tc.pinned
			}
			h.excluding(u, "base.csv", "", pinned)
			h.create(u)

			u = h.waitStalled("vip", upv1.ReasonBaseUnavailable)
			msg := findCondition(u, upv1.ConditionStalled).Message
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "remove spec.file.excludeMembersOf") {
				t.Errorf("the stall says %q; want %q and how to fix it", msg, tc.want)
			}
			if n := len(h.sandbox.Records()); n != 0 {
				t.Errorf("the sandbox saw %d calls for an upload whose base is not as pinned", n)
			}
		})
	}
}

func TestExcludeMembersOfResumesAfterARestartWithoutResendingAnAcknowledgedPart(t *testing.T) {
	h := newHarness(t, harnessOptions{partSize: 16 << 10, noManager: true})
	base := phoneFile(0, 2_000)
	added := phoneFile(2_000, 10_000) // 330,000 bytes: 21 parts of 16 KiB
	h.put("base.csv", base)
	h.put("vip.csv", append(phoneFile(0, 2_000), added...))
	must(t, h.sandbox.SetFaults(sandbox.EndpointUploadPart, sandbox.Faults{LatencyMillis: 500}))
	h.startManager(nil)
	u := h.object("vip", "vip.csv")
	u.Spec.UserPackageID = packageA
	h.excluding(u, "base.csv", "", base)
	h.create(u)
	h.waitFor("vip", 30*time.Second, "partway uploaded", func(u *upv1.UserPackageUpload) bool {
		return firstUpload(u) != nil && firstUpload(u).PartsDone >= 4
	})
	h.stopManager()
	stoppedAt := firstUpload(h.get("vip")).PartsDone
	must(t, h.sandbox.SetFaults(sandbox.EndpointUploadPart, sandbox.Faults{}))
	h.startManager(nil)

	u = h.waitReady("vip")
	assertEachPartOnceOfEach(t, h, u)
	if got := mergedFiles(t, h, u); !bytes.Equal(got, added) {
		t.Error("the reassembled file differs from the new members")
	}
	assertPackageHolds(t, h, added)
	t.Logf("stopped after %d of %d parts; the delta was computed again for the rest", stoppedAt, firstUpload(u).PartCount)
}

func TestTheSourceFingerprintFollowsExcludeMembersOf(t *testing.T) {
	plain := readUpload("", false)
	excluding := func(digest, versionID string) *upv1.UserPackageUpload {
		u := plain.DeepCopy()
		u.Spec.File.ExcludeMembersOf = &upv1.PinnedSource{Source: *u.Spec.Source.DeepCopy(), Digest: digest, VersionID: versionID}
		return u
	}
	digestA, digestB := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	cases := []struct {
		name     string
		a, b     *upv1.UserPackageUpload
		sameRead bool
	}{
		{"setting excludeMembersOf reads the file again", plain, excluding(digestA, ""), false},
		{"another base digest reads the file again", excluding(digestA, ""), excluding(digestB, ""), false},
		{"another base version reads the file again", excluding(digestA, "v1"), excluding(digestA, "v2"), false},
		{"the same base is not read again", excluding(digestA, "v1"), excluding(digestA, "v1"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if same := sourceFingerprint(tc.a) == sourceFingerprint(tc.b); same != tc.sameRead {
				t.Errorf("same fingerprint: %v, want %v", same, tc.sameRead)
			}
		})
	}
}

func TestExcludeMembersOfABaseWithEveryMemberIsReadyWithoutACall(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	base, _ := rawNumbersFile(0, 300, "%s")
	revision, _ := rawNumbersFile(0, 300, "0086 %s") // the same numbers, written again
	h.put("base.csv", base)
	h.put("crm.csv", revision)
	u := h.object("crm", "crm.csv")
	u.Spec.UserPackageID = packageA
	u.Spec.File.Hashing = upv1.HashingMD5
	h.excluding(u, "base.csv", "", base)
	h.create(u)

	u = h.waitReady("crm")
	if msg := findCondition(u, upv1.ConditionReady).Message; !strings.Contains(msg, "nothing to upload") {
		t.Errorf("Ready says %q, want that there is nothing to upload", msg)
	}
	assertDelta(t, u, 0, 300, 0, 300)
	if n := len(h.sandbox.Records()); n != 0 {
		t.Errorf("the sandbox saw %d calls for a file with no new member", n)
	}
	if s := u.Status.Summary; s == nil || s.UploadsProgress != "1/1" {
		t.Errorf("summary %+v, want 1/1 uploads finished", s)
	}
}
