package uploads

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/uploads/filenames"
	"github.com/crowdpack/crowdpack/controllers/uploads/parts"
)

// withUploads is an object of key whose status holds n chunks.
func withUploads(key, filename string, n int, history ...string) *upv1.UserPackageUpload {
	u := &upv1.UserPackageUpload{}
	u.Spec.Source.S3 = &upv1.S3Source{Key: key}
	u.Spec.File.Filename = filename
	u.Status.Uploads = make([]upv1.UploadStatus, n)
	for _, name := range history {
		u.Status.History = append(u.Status.History, upv1.AbandonedUpload{Filename: name})
	}
	return u
}

var chunkFilenameTests = []struct {
	name  string
	u     *upv1.UserPackageUpload
	index int32
	want  string
}{
	{"a file in one chunk is named as it always was", withUploads("exports/vip.csv", "", 1), 1, "vip.csv"},
	{"a file in one chunk keeps the -2 rule", withUploads("exports/vip.csv", "", 1, "vip.csv"), 1, "vip-2.csv"},
	{"chunks are numbered from 001", withUploads("exports/vip.csv", "", 3), 1, "vip-001.csv"},
	{"the number is padded to three digits", withUploads("exports/vip.csv", "", 7), 7, "vip-007.csv"},
	{"more than 999 chunks pad to the digits of the count", withUploads("vip.csv", "", 1200), 12, "vip-0012.csv"},
	{"an explicit filename gives the stem", withUploads("vip.csv", "crowd.csv", 2), 2, "crowd-002.csv"},
	{"a used name moves the stem to -2", withUploads("vip.csv", "", 3, "vip-002.csv"), 2, "vip-2-002.csv"},
	{"the -2 rule goes on to -3", withUploads("vip.csv", "", 3, "vip-002.csv", "vip-2-002.csv"), 2, "vip-3-002.csv"},
	{"another chunk's used name moves the stem too", withUploads("vip.csv", "", 3, "vip-002.csv"), 3, "vip-2-003.csv"},
	{"the last names of a larger abandoned set move the stem", withUploads("vip.csv", "", 3, "vip-099.csv", "vip-100.csv"), 1, "vip-2-001.csv"},
	{"a used -2 name of one chunk does not count as numbered", withUploads("vip.csv", "", 3, "vip-2.csv"), 1, "vip-001.csv"},
	{"a long stem is cut to 128 characters", withUploads(strings.Repeat("a", 124)+".csv", "", 3), 3, strings.Repeat("a", 120) + "-003.csv"},
	{"a long stem with -2 is cut to 128 characters", withUploads(strings.Repeat("a", 124)+".csv", "", 3, strings.Repeat("a", 120)+"-003.csv"), 3,
		strings.Repeat("a", 118) + "-2-003.csv"},
}

func TestChunkFilenames(t *testing.T) {
	for _, tt := range chunkFilenameTests {
		t.Run(tt.name, func(t *testing.T) {
			got := filenames.ForChunk(tt.u, tt.index)
			if got != tt.want || len(got) > 128 {
				t.Errorf("got %q (%d characters), want %q", got, len(got), tt.want)
			}
		})
	}
}

// TestTheStatusOf100ChunksOf10000PartsStaysUnder64KiB measures the status
// of the largest set the design allows, as JSON: 100 finished chunks but
// the last, which is half way through its 10,000 parts.
func TestTheStatusOf100ChunksOf10000PartsStaysUnder64KiB(t *testing.T) {
	u := largestSet()
	raw, err := json.Marshal(u.Status)
	must(t, err)
	t.Logf("status of 100 uploads of 10,000 parts each, 99 merged and expanded, 10 abandoned uploads in history: %d bytes (%.1f KiB)",
		len(raw), float64(len(raw))/1024)
	if len(raw) > 64<<10 {
		t.Errorf("status takes %d bytes, more than 64 KiB", len(raw))
	}
}

// largestSet is an object with 100 chunks of 500,000 lines, each sent in
// 10,000 parts, the last half way; its status as the reconciler keeps it.
func largestSet() *upv1.UserPackageUpload {
	u := withUploads("exports/customers-2026-11.csv", "", 100)
	u.Generation = 1
	u.Spec.UserPackageID = "01000100010000000007"
	at := metav1.NewTime(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	const size = 500_000 * 33
	for i := range u.Status.Uploads {
		up := &u.Status.Uploads[i]
		*up = upv1.UploadStatus{
			Index: int32(i + 1), FirstLine: int64(i)*500_000 + 1, LastLine: int64(i+1) * 500_000,
			Start: int64(i) * size, End: int64(i+1) * size, Lines: 500_000, Size: size,
			Key: fmt.Sprintf("%032x", i), Generation: 1, Digest: digestPrefix + fmt.Sprintf("%064x", i),
			// WeChat Pay's upload ids take 76 characters.
			Filename: filenames.ForChunk(u, int32(i+1)), ID: fmt.Sprintf("%076d", i), InitiatedAt: &at, ReturnMessage: "success",
			PartSize: size / 10_000, PartCount: 10_000,
		}
		acked := parts.NewSet(up.PartCount)
		for p := int64(1); p <= up.PartCount; p++ {
			if i < 99 || p%2 == 0 {
				acked.Add(p)
			}
		}
		parts.SetDone(up, acked)
		if i < 99 {
			up.ResourceID, up.MergedAt, up.ExpandedAt = fmt.Sprintf("%032d", i), &at, &at
			up.Expanded = []upv1.ExpandedPackage{{UserPackageID: u.Spec.UserPackageID, At: at}}
		}
	}
	u.Status.Source = &upv1.SourceStatus{Size: 100 * size, Digest: digestPrefix + fmt.Sprintf("%064x", 1), Generation: 1, ETag: fmt.Sprintf("%032x", 1)}
	u.Status.Content = &upv1.ContentStatus{Lines: 50_000_000}
	for range maxHistory {
		abandon(u, &u.Status.Uploads[0], fmt.Sprintf("%076d", 1), "customers-2026-10-001.csv", &at)
	}
	// The conditions as the reconciler words them, half way through the last upload.
	setCondition(u, upv1.ConditionSourceVerified, metav1.ConditionTrue, upv1.ReasonDigested, sourceMessage(u))
	markProgressing(u, progressingMessage(u))
	for _, st := range stages {
		setCondition(u, st.condition, metav1.ConditionTrue, upv1.ReasonSucceeded, "")
	}
	setStageConditions(u)
	setSummary(u)
	return u
}

var setConditionTests = []struct {
	name        string
	merged      int
	wantStatus  metav1.ConditionStatus
	wantMessage string
	wantSummary string
}{
	{"every upload merged is Merged", 3, metav1.ConditionTrue, "3 of 3 uploads merged", "3/3"},
	{"some uploads merged is not Merged yet", 2, metav1.ConditionFalse, "2 of 3 uploads merged", "2/3"},
	{"no upload merged is not Merged", 0, metav1.ConditionFalse, "0 of 3 uploads merged", "0/3"},
}

func TestConditionsAndSummaryOverASetOfUploads(t *testing.T) {
	for _, tt := range setConditionTests {
		t.Run(tt.name, func(t *testing.T) {
			u := withUploads("vip.csv", "", 3)
			at := metav1.Now()
			for i := range u.Status.Uploads {
				up := &u.Status.Uploads[i]
				*up = upv1.UploadStatus{Index: int32(i + 1), ID: fmt.Sprint("U", i), PartCount: 4, PartsDone: 4, Lines: 10, Size: 330}
				if i < tt.merged {
					up.MergedAt = &at
				}
			}
			// The step of the last upload said Merged=True for its own upload.
			setCondition(u, upv1.ConditionMerged, metav1.ConditionTrue, upv1.ReasonMerged, "4 parts merged into resource R")
			setStageConditions(u)
			setSummary(u)
			c := findCondition(u, upv1.ConditionMerged)
			if c.Status != tt.wantStatus || c.Message != tt.wantMessage {
				t.Errorf("Merged=%s %q, want %s %q", c.Status, c.Message, tt.wantStatus, tt.wantMessage)
			}
			s := u.Status.Summary
			if s.UploadsProgress != tt.wantSummary || s.PartsProgress != "12/12" || s.Lines != 30 || s.Size != 990 || s.Merged != int32(tt.merged) {
				t.Errorf("summary %+v, want %s uploads, 12/12 parts, 30 lines, 990 bytes", *s, tt.wantSummary)
			}
		})
	}
}

func TestAFinishedUploadDropsItsPartsBitmap(t *testing.T) {
	up := &upv1.UploadStatus{PartCount: 3, PartSize: 10, Size: 25}
	acked := parts.NewSet(3)
	acked.Add(1)
	acked.Add(3)
	parts.SetDone(up, acked)
	if up.PartsAcked == "" || up.BytesDone != 15 {
		t.Errorf("half way: bitmap %q, %d bytes done, want a bitmap and 15 bytes", up.PartsAcked, up.BytesDone)
	}
	acked.Add(2)
	parts.SetDone(up, acked)
	if up.PartsAcked != "" || up.PartsDone != 3 || up.BytesDone != 25 {
		t.Errorf("finished: bitmap %q, %d parts, %d bytes, want no bitmap, 3 parts, 25 bytes", up.PartsAcked, up.PartsDone, up.BytesDone)
	}
}

// settledSet is an object whose three chunks were uploaded under their keys.
func settledSet() (*scope, *upv1.UserPackageUpload) {
	u := withUploads("exports/vip.csv", "", 3)
	u.Generation = 1
	u.Spec.File.Description = "customers who bought twice in 90 days"
	for i := range u.Status.Uploads {
		u.Status.Uploads[i] = upv1.UploadStatus{Index: int32(i + 1), Generation: 1, Digest: fmt.Sprintf("sha256:%064x", i), Size: 330}
	}
	s := &scope{obj: u, clock: time.Now, brandID: "1900000109"}
	s.settleUploads()
	for i := range u.Status.Uploads {
		u.Status.Uploads[i].ID = fmt.Sprint("U", i+1)
	}
	return s, u
}

var settleTests = []struct {
	name         string
	edit         func(*upv1.UserPackageUpload)
	wantHistory  int
	wantFilename string
}{
	{"an edit WeChat Pay is not told about continues every upload", func(u *upv1.UserPackageUpload) { u.Spec.Suspend = true }, 0, "vip-001.csv"},
	{"a new description starts every upload again, under new names", func(u *upv1.UserPackageUpload) { u.Spec.File.Description += " or more" }, 3, "vip-2-001.csv"},
	{"a new brand starts every upload again", nil, 3, "vip-2-001.csv"},
}

func TestSettlingASetOfUploads(t *testing.T) {
	for _, tt := range settleTests {
		t.Run(tt.name, func(t *testing.T) {
			s, u := settledSet()
			if names := []string{u.Status.Uploads[0].Filename, u.Status.Uploads[2].Filename}; names[0] != "vip-001.csv" || names[1] != "vip-003.csv" {
				t.Fatalf("first names %v, want vip-001.csv … vip-003.csv", names)
			}
			u.Generation = 2
			if tt.edit != nil {
				tt.edit(u)
			} else {
				s.brandID = "1900000110"
			}
			s.settleUploads()
			first := u.Status.Uploads[0]
			if len(u.Status.History) != tt.wantHistory || first.Filename != tt.wantFilename || (tt.wantHistory > 0) != (first.ID == "") {
				t.Errorf("history %d, first upload %q named %s; want history %d, named %s", len(u.Status.History), first.ID, first.Filename, tt.wantHistory, tt.wantFilename)
			}
		})
	}
}

func TestAFileNeverSplitOverTheRecommendedLinesSaysSoOnce(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.put("big.csv", phoneFile(0, 500_001))
	u := h.object("big", "big.csv")
	u.Spec.File.MaxLinesPerUpload = ptrTo[int32](0)
	u.Spec.UploadParts = ptrTo(false)
	h.create(u)

	u = h.waitReady("big")
	want := "500001 lines in one upload, more than the 500000 WeChat Pay recommends"
	if msg := findCondition(u, upv1.ConditionSourceVerified).Message; !strings.Contains(msg, want) {
		t.Errorf("SourceVerified says %q, want it to say %q", msg, want)
	}
	h.waitEvent("big", corev1.EventTypeWarning, upv1.ReasonTooManyLines)
	h.update("big", func(u *upv1.UserPackageUpload) { u.Spec.File.Description = "customers who bought three times" })
	h.waitFor("big", 30*time.Second, "Ready again", func(u *upv1.UserPackageUpload) bool {
		return conditionIs(u, upv1.ConditionReady, metav1.ConditionTrue) && u.Status.ObservedGeneration == u.Generation
	})
	warnings := 0
	for _, e := range h.events("big") {
		if e.Reason == upv1.ReasonTooManyLines {
			warnings++
		}
	}
	if warnings != 1 || len(u.Status.Uploads) != 1 {
		t.Errorf("%d TooManyLines events, %d uploads; want one event, one upload", warnings, len(u.Status.Uploads))
	}
}
