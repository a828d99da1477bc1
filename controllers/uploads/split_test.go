package uploads

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/sandbox"
)

// rawNumbers are raw mobile numbers in every form hashing accepts, each
// with its 11 digits, and lines that hold no mobile number. None of them
// may show anywhere (see leakNeedles).
var (
	rawNumbers = []struct{ line, digits string }{
		{"13800138000", "13800138000"},
		{"+86 138-0013-8001", "13800138001"},
		{"8613800138002", "13800138002"},
		{"008613800138003", "13800138003"},
		{"(138) 0013-8004", "13800138004"},
		{"+86 (139) 1234 5605", "13912345605"},
		{"0086-150-1234-5606", "15012345606"},
		{"86 177 1234 5607", "17712345607"},
		{"+8618912345608", "18912345608"},
	}
	rawInvalid = []string{"23800138009", "1380013801", "+1 415 555 0110", "+87 13800138011"}
)

// rawExport is a file of raw numbers: the valid ones, with the invalid
// lines at lines 3, 6, 9 and 12. It returns the file, the MD5 lines
// computed here, independently of rawphone, and the invalid line numbers.
func rawExport() (file, hashed []byte, invalidAt []int64) {
	var f, want bytes.Buffer
	line := int64(0)
	for i, n := range rawNumbers {
		f.WriteString(n.line + "\n")
		line++
		want.Write(md5Lines(n.digits))
		if i%2 == 1 && len(invalidAt) < len(rawInvalid) {
			f.WriteString(rawInvalid[len(invalidAt)] + "\n")
			line++
			invalidAt = append(invalidAt, line)
		}
	}
	return f.Bytes(), want.Bytes(), invalidAt
}

// md5Lines are the lines WeChat Pay wants for mobile numbers, computed
// here independently of rawphone: the lowercase hex MD5 of each, and "\n".
func md5Lines(numbers ...string) []byte {
	var b bytes.Buffer
	for _, n := range numbers {
		sum := md5.Sum([]byte(n))
		b.WriteString(hex.EncodeToString(sum[:]) + "\n")
	}
	return b.Bytes()
}

// mergedFiles is the concatenation of the files the sandbox reassembled
// for the object's uploads, in order.
func mergedFiles(t *testing.T, h *harness, u *upv1.UserPackageUpload) []byte {
	t.Helper()
	var all bytes.Buffer
	for _, up := range u.Status.Uploads {
		merged, ok := h.sandbox.MergedFile(up.ID)
		if !ok {
			t.Fatalf("upload %d (%s) is not merged at the sandbox", up.Index, up.ID)
		}
		all.Write(merged)
	}
	return all.Bytes()
}

// assertEachPartOnceOfEach checks that each part of each upload was
// acknowledged exactly once.
func assertEachPartOnceOfEach(t *testing.T, h *harness, u *upv1.UserPackageUpload) {
	t.Helper()
	acked := map[string]int{}
	for _, r := range h.sandbox.Records() {
		if r.Endpoint == sandbox.EndpointUploadPart && r.Succeeded() && r.Fault == "" {
			acked[fmt.Sprintf("%s/%d", r.UploadID, r.PartNumber)]++
		}
	}
	for _, up := range u.Status.Uploads {
		for p := int64(1); p <= up.PartCount; p++ {
			if n := acked[fmt.Sprintf("%s/%d", up.ID, p)]; n != 1 {
				t.Errorf("upload %d part %d acknowledged %d times, want once", up.Index, p, n)
			}
		}
	}
}

func TestAFileOverTheLinesLimitIsUploadedAsOneUploadPerChunkAndResumesAfterARestart(t *testing.T) {
	h := newHarness(t, harnessOptions{partSize: 1 << 20, noManager: true})
	data := phoneFile(0, 1_200_000)
	h.put("vip.csv", data)
	// Slow parts, so that the manager is stopped in the second upload.
	must(t, h.sandbox.SetFaults(sandbox.EndpointUploadPart, sandbox.Faults{LatencyMillis: 800}))
	h.startManager(nil)
	u := h.object("vip", "vip.csv")
	u.Spec.UserPackageID = packageA
	h.create(u)
	h.waitFor("vip", 120*time.Second, "between chunks", func(u *upv1.UserPackageUpload) bool {
		return len(u.Status.Uploads) == 3 && u.Status.Uploads[0].MergedAt != nil && u.Status.Uploads[1].PartsDone >= 2
	})
	h.stopManager()
	stoppedAt := h.get("vip").Status.Uploads[1].PartsDone
	must(t, h.sandbox.SetFaults(sandbox.EndpointUploadPart, sandbox.Faults{}))
	h.startManager(nil)

	u = h.waitFor("vip", 180*time.Second, "Ready", func(u *upv1.UserPackageUpload) bool {
		return conditionIs(u, upv1.ConditionReady, metav1.ConditionTrue)
	})
	assertThreeChunks(t, h, u, data)
	assertEachPartOnceOfEach(t, h, u)
	t.Logf("stopped after the first upload and %d of %d parts of the second; %s", stoppedAt, u.Status.Uploads[1].PartCount,
		findCondition(u, upv1.ConditionReady).Message)
}

// assertThreeChunks checks the uploads of 1,200,000 lines: 500,000,
// 500,000 and 200,000 lines, named in order, merged into the source and
// each expanded into the package once.
func assertThreeChunks(t *testing.T, h *harness, u *upv1.UserPackageUpload, data []byte) {
	t.Helper()
	var lines []int64
	var names []string
	for _, up := range u.Status.Uploads {
		lines, names = append(lines, up.Lines), append(names, up.Filename)
	}
	if fmt.Sprint(lines) != "[500000 500000 200000]" || strings.Join(names, " ") != "vip-001.csv vip-002.csv vip-003.csv" {
		t.Errorf("uploads of %v lines named %v, want 500000/500000/200000 as vip-001.csv to vip-003.csv", lines, names)
	}
	if !bytes.Equal(mergedFiles(t, h, u), data) {
		t.Error("the sandbox's reassembled files together differ from the source")
	}
	expanded := map[string]int{}
	for _, r := range h.sandbox.Records() {
		if r.Endpoint == sandbox.EndpointExpand && r.Succeeded() && r.UserPackageID == packageA {
			expanded[r.UploadID]++
		}
	}
	for _, up := range u.Status.Uploads {
		if expanded[up.ID] != 1 {
			t.Errorf("the package was expanded %d times with upload %d, want once", expanded[up.ID], up.Index)
		}
	}
	if n := h.sandbox.CountSucceeded(sandbox.EndpointInitiate); n != 3 {
		t.Errorf("initiate succeeded %d times, want 3", n)
	}
	if s := u.Status.Summary; s == nil || s.UploadsProgress != "3/3" || s.Expanded != 3 || s.Lines != 1_200_000 {
		t.Errorf("summary %+v, want 3/3 uploads expanded, 1200000 lines", s)
	}
	if c := findCondition(u, upv1.ConditionMerged); c.Status != metav1.ConditionTrue || c.Message != "3 of 3 uploads merged" {
		t.Errorf("Merged=%s %q, want True over the 3 uploads", c.Status, c.Message)
	}
}

func TestRawNumbersAreHashedInTheClusterAndInvalidLinesReportedByNumber(t *testing.T) {
	h := newHarness(t, harnessOptions{partSize: 16 << 10})
	file, want, invalidAt := rawExport()
	h.put("raw.csv", file)
	u := h.object("raw", "raw.csv")
	u.Spec.File.Hashing = upv1.HashingMD5
	h.create(u)

	u = h.waitReady("raw")
	if got := mergedFiles(t, h, u); !bytes.Equal(got, want) {
		t.Errorf("the sandbox reassembled\n%s\nwant the MD5 lines\n%s", got, want)
	}
	c := u.Status.Content
	if c.InvalidLines != int64(len(invalidAt)) || fmt.Sprint(c.InvalidLineNumbers) != fmt.Sprint(invalidAt) {
		t.Errorf("content %+v, want invalid lines %v", c, invalidAt)
	}
	if up := firstUpload(u); up.Lines != int64(len(rawNumbers)) || up.Size != int64(len(want)) {
		t.Errorf("upload of %d lines, %d bytes, want %d, %d", up.Lines, up.Size, len(rawNumbers), len(want))
	}
	assertShowsNoSecret(t, h, "raw") // the raw numbers are leak needles
}

func TestSplitHashAndHeaderRowTogether(t *testing.T) {
	h := newHarness(t, harnessOptions{partSize: 16 << 10})
	file, want := rawExportWithHeader(2_500)
	h.put("crm.csv", file)
	u := h.object("crm", "crm.csv")
	u.Spec.File.Hashing = upv1.HashingMD5
	u.Spec.File.SkipHeaderRow = true
	u.Spec.File.MaxLinesPerUpload = ptrTo[int32](1000)
	h.create(u)

	u = h.waitReady("crm")
	if got := mergedFiles(t, h, u); !bytes.Equal(got, want) {
		t.Errorf("the reassembled files (%d bytes) differ from the MD5 lines (%d bytes)", len(got), len(want))
	}
	var firstLines []int64
	for _, up := range u.Status.Uploads {
		firstLines = append(firstLines, up.FirstLine)
	}
	if fmt.Sprint(firstLines) != "[2 1002 2002]" || u.Status.Uploads[2].Filename != "crm-003.csv" {
		t.Errorf("uploads start at lines %v (last named %s), want 2, 1002, 2002 (crm-003.csv)", firstLines, u.Status.Uploads[2].Filename)
	}
	if c := u.Status.Content; c.InvalidLines != 0 || c.HeaderRow {
		t.Errorf("content %+v: the skipped header row counts", c)
	}
}

// rawExportWithHeader is a header row and n raw numbers in turning forms,
// with the MD5 lines computed here.
func rawExportWithHeader(n int) (file, hashed []byte) {
	var f, want bytes.Buffer
	f.WriteString("mobile\n")
	forms := []string{"%s", "+86 %s", "0086%s", "86-%s"}
	for i := range n {
		digits := fmt.Sprintf("1%010d", 3_800_000_000+i)
		fmt.Fprintf(&f, forms[i%len(forms)]+"\n", digits)
		want.Write(md5Lines(digits))
	}
	return f.Bytes(), want.Bytes()
}

func TestStrictWithOneInvalidRawLineMakesNoCall(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	file, _ := rawExportWithHeader(2_500)
	file = append(file, "+1 415 555 0110\n"...)
	h.put("crm.csv", file)
	u := h.object("crm", "crm.csv")
	u.Spec.File.Hashing = upv1.HashingMD5
	u.Spec.File.SkipHeaderRow = true
	u.Spec.File.MaxLinesPerUpload = ptrTo[int32](1000)
	u.Spec.Validation = upv1.ValidationStrict
	h.create(u)

	u = h.waitStalled("crm", upv1.ReasonInvalidLines)
	if msg := findCondition(u, upv1.ConditionStalled).Message; !strings.Contains(msg, "line 2502") {
		t.Errorf("the stall does not name line 2502: %s", msg)
	}
	if n := len(h.sandbox.Records()); n != 0 {
		t.Errorf("the sandbox saw %d calls for a Strict file with an invalid line", n)
	}
	assertShowsNoSecret(t, h, "crm")
}

func TestAnUploadOfThePreviousReleaseBecomesAOneChunkSetWithoutACallOrARead(t *testing.T) {
	h := newHarness(t, harnessOptions{partSize: 16 << 10})
	data := phoneFile(0, 1_000)
	h.put("vip.csv", data)
	h.create(h.object("vip", "vip.csv"))
	done := h.waitReady("vip")
	h.stopManager()
	calls := len(h.sandbox.Records())

	// The previous release's status: one status.upload, no uploads, no summary.
	old := done.DeepCopy()
	legacy := *firstUpload(done).DeepCopy()
	legacy.Index, legacy.FirstLine, legacy.LastLine, legacy.Start, legacy.End, legacy.Lines, legacy.Size = 0, 0, 0, 0, 0, 0, 0
	old.Status.Upload, old.Status.Uploads, old.Status.Summary = &legacy, nil, nil
	must(t, kube.Client.Status().Update(h.ctx, old))
	// A read would now find other bytes, and start a new upload.
	h.put("vip.csv", phoneFile(1, 1_000))
	h.startManager(nil)

	u := h.waitFor("vip", 30*time.Second, "migrated", func(u *upv1.UserPackageUpload) bool {
		return u.Status.Upload == nil && len(u.Status.Uploads) == 1
	})
	up := firstUpload(u)
	if up.ID != firstUpload(done).ID || up.Key != firstUpload(done).Key || up.Index != 1 || up.Size != int64(len(data)) || up.Lines != 1_000 {
		t.Errorf("migrated upload %+v, want %s as one chunk of %d bytes, 1000 lines", *up, firstUpload(done).ID, len(data))
	}
	if u.Status.Source.Digest != done.Status.Source.Digest {
		t.Error("the file was read again")
	}
	if !conditionIs(u, upv1.ConditionReady, metav1.ConditionTrue) {
		t.Errorf("not Ready after the migration:\n%s", describe(u))
	}
	if n := len(h.sandbox.Records()); n != calls {
		t.Errorf("the migration made %d calls", n-calls)
	}
}

func TestAHashedUploadResumesAfterARestartWithoutResendingAnAcknowledgedPart(t *testing.T) {
	h := newHarness(t, harnessOptions{partSize: 16 << 10, noManager: true})
	file, want := rawExportWithHeader(10_000) // 330,000 hashed bytes: 21 parts of 16 KiB
	h.put("crm.csv", file)
	must(t, h.sandbox.SetFaults(sandbox.EndpointUploadPart, sandbox.Faults{LatencyMillis: 500}))
	h.startManager(nil)
	u := h.object("crm", "crm.csv")
	u.Spec.File.Hashing = upv1.HashingMD5
	u.Spec.File.SkipHeaderRow = true
	h.create(u)
	h.waitFor("crm", 30*time.Second, "partway uploaded", func(u *upv1.UserPackageUpload) bool {
		return firstUpload(u) != nil && firstUpload(u).PartsDone >= 4
	})
	h.stopManager()
	stoppedAt := firstUpload(h.get("crm")).PartsDone
	must(t, h.sandbox.SetFaults(sandbox.EndpointUploadPart, sandbox.Faults{}))
	h.startManager(nil)

	u = h.waitReady("crm")
	assertEachPartOnceOfEach(t, h, u)
	if got := mergedFiles(t, h, u); !bytes.Equal(got, want) {
		t.Error("the reassembled file differs from the MD5 lines")
	}
	t.Logf("stopped after %d of %d parts; the parts before were read again, not sent", stoppedAt, firstUpload(u).PartCount)
}
