package uploads

import (
	"context"
	"fmt"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/uploads/parts"
)

// chunkSteps take one chunk's upload through WeChat Pay, on s.upload().
var chunkSteps = []step{reconcileInitiate, reconcileParts, releaseSlotAfterLastParts, reconcileMerge, reconcileExpand}

// releaseSlotAfterLastParts gives the namespace's read slot back once the
// last chunk's parts are sent: merge, expand and their status writes read
// nothing from storage, and the next object in line can start reading
// meanwhile.
func releaseSlotAfterLastParts(_ context.Context, s *scope) error {
	if s.chunk == len(s.obj.Status.Uploads)-1 {
		s.releaseSlot()
	}
	return nil
}

// reconcileUploads takes each chunk of the file through initiate, parts,
// merge and expand in turn, one chunk after the other: the parts in flight
// for the object stay within PartConcurrency, and a chunk is expanded as
// soon as it is merged. The stage conditions then speak of the whole set.
func reconcileUploads(ctx context.Context, s *scope) error {
	u := s.obj
	if nothingNew(u) {
		return nil
	}
	defer func() { s.chunk = 0 }()
	for i := range u.Status.Uploads {
		s.chunk = i
		for _, step := range chunkSteps {
			if err := step(ctx, s); err != nil {
				setStageConditions(u)
				return err
			}
		}
	}
	setStageConditions(u)
	return nil
}

// upload is the upload of the chunk the steps work on. Status is replaced
// by every write, so the pointer is good until the next write only.
func (s *scope) upload() *upv1.UploadStatus {
	return &s.obj.Status.Uploads[s.chunk]
}

// stage is one condition over the set of uploads, and when an upload has
// passed it.
type stage struct {
	condition string
	verb      string
	done      func(u *upv1.UserPackageUpload, up *upv1.UploadStatus) bool
}

var stages = []stage{
	{upv1.ConditionInitiated, "initiated", func(_ *upv1.UserPackageUpload, up *upv1.UploadStatus) bool { return up.ID != "" }},
	{upv1.ConditionPartsUploaded, "sent", func(_ *upv1.UserPackageUpload, up *upv1.UploadStatus) bool { return parts.Done(up) }},
	{upv1.ConditionMerged, "merged", func(_ *upv1.UserPackageUpload, up *upv1.UploadStatus) bool { return up.MergedAt != nil }},
	{upv1.ConditionExpanded, "expanded", func(u *upv1.UserPackageUpload, up *upv1.UploadStatus) bool {
		return isExpanded(up, u.Spec.UserPackageID)
	}},
}

// setStageConditions makes the stage conditions of a file in several
// uploads speak of the whole set: True only when every upload passed the
// stage, with counts. A file in one upload keeps its upload's messages.
func setStageConditions(u *upv1.UserPackageUpload) {
	total := len(u.Status.Uploads)
	if total <= 1 {
		return
	}
	for _, st := range stages {
		c := apimeta.FindStatusCondition(u.Status.Conditions, st.condition)
		if c == nil || c.Status != metav1.ConditionTrue {
			continue
		}
		done := countUploads(u, st.done)
		if done < total {
			setCondition(u, st.condition, metav1.ConditionFalse, upv1.ReasonProgressing, fmt.Sprintf("%d of %d uploads %s", done, total, st.verb))
			continue
		}
		setCondition(u, st.condition, metav1.ConditionTrue, c.Reason, fmt.Sprintf("%d of %d uploads %s", done, total, st.verb))
	}
}

// countUploads counts the uploads for which done holds.
func countUploads(u *upv1.UserPackageUpload, done func(*upv1.UserPackageUpload, *upv1.UploadStatus) bool) int {
	n := 0
	for i := range u.Status.Uploads {
		if done(u, &u.Status.Uploads[i]) {
			n++
		}
	}
	return n
}

// setSummary totals the uploads into status.summary.
func setSummary(u *upv1.UserPackageUpload) {
	if len(u.Status.Uploads) == 0 {
		u.Status.Summary = nil
		return
	}
	sum := &upv1.UploadSummary{Uploads: int32(len(u.Status.Uploads))}
	for i := range u.Status.Uploads {
		up := &u.Status.Uploads[i]
		sum.Parts += up.PartCount
		sum.PartsDone += up.PartsDone
		sum.Lines += up.Lines
		sum.Size += up.Size
	}
	compactUploads(u)
	sum.Merged = int32(countUploads(u, stages[2].done))
	sum.Expanded = int32(countUploads(u, stages[3].done))
	sum.UploadsProgress = fmt.Sprintf("%d/%d", countUploads(u, finished), sum.Uploads)
	if sum.Parts > 0 {
		sum.PartsProgress = fmt.Sprintf("%d/%d", sum.PartsDone, sum.Parts)
	}
	u.Status.Summary = sum
}

// compactUploads keeps the status of a file in several uploads small (under
// 64 KiB for 100 uploads of 10,000 parts): an upload of a set keeps no
// progress column nor initiate's return message (the summary has the
// progress), and no expandedAt beside its expanded list; once merged it
// keeps what identifies it and its outcome, not its generation, initiatedAt
// and bytesDone (its size). A file in one upload keeps the layout it
// always had.
func compactUploads(u *upv1.UserPackageUpload) {
	if len(u.Status.Uploads) <= 1 {
		return
	}
	for i := range u.Status.Uploads {
		up := &u.Status.Uploads[i]
		up.Progress, up.ReturnMessage = "", ""
		if len(up.Expanded) > 0 {
			up.ExpandedAt = nil
		}
		if up.MergedAt != nil {
			up.Generation, up.InitiatedAt, up.BytesDone = 0, nil, 0
		}
	}
}

// finished reports whether an upload did all the spec asks of it.
func finished(u *upv1.UserPackageUpload, up *upv1.UploadStatus) bool {
	switch {
	case nothingNew(u):
		return true
	case !u.Spec.WantsParts():
		return up.ID != ""
	case u.Spec.UserPackageID != "":
		return isExpanded(up, u.Spec.UserPackageID)
	default:
		return up.MergedAt != nil
	}
}
