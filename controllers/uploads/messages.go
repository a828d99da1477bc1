package uploads

import (
	"fmt"
	"strings"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

// The messages of conditions and events: what a user reads in kubectl
// describe, kubectl get's Status column and Argo CD. Stalls and retries
// say what to fix where they are raised.

// waitingForSlotMessage is the Ready message of an object whose namespace
// has its share of reads in flight.
const waitingForSlotMessage = "waiting for a read slot: other uploads of this namespace are being read"

// progressingMessage says what a new generation's reconcile starts with.
func progressingMessage(u *upv1.UserPackageUpload) string {
	if needsRead(u) {
		return "reading the file from object storage"
	}
	return "applying the spec to the upload in hand"
}

func sourceMessage(u *upv1.UserPackageUpload) string {
	s, c := u.Status.Source, u.Status.Content
	msg := fmt.Sprintf("read %d bytes, %s; %d lines, %d invalid", s.Size, s.Digest, c.Lines, c.InvalidLines)
	var notes []string
	if c.HeaderRow {
		notes = append(notes, "line 1 looks like a header row")
	}
	if c.BOM {
		notes = append(notes, "the file starts with a UTF-8 BOM")
	}
	if c.InvalidLines > 0 {
		notes = append(notes, "invalid lines at "+joinNumbers(c.InvalidLineNumbers))
	}
	if d := u.Status.Delta; d != nil {
		notes = append(notes, deltaMessage(d))
	}
	if n := len(u.Status.Uploads); n > 1 {
		notes = append(notes, fmt.Sprintf("cut into %d uploads of at most %d lines", n, maxLines(u)))
	}
	if tooManyLines(u) {
		notes = append(notes, tooManyLinesMessage(u))
	}
	if len(notes) > 0 {
		msg += " (" + strings.Join(notes, "; ") + ")"
	}
	return msg
}

// deltaMessage says what excludeMembersOf left out: counts only, never a member.
func deltaMessage(d *upv1.DeltaStatus) string {
	return fmt.Sprintf("only members not in the base %s: %d added (%d bytes), %d unchanged, %d of its %d members left",
		d.Base.Digest, d.Added, d.Size, d.Unchanged, d.Left, d.BaseMembers)
}

func joinNumbers(ns []int64) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}

func initiatedMessage(up *upv1.UploadStatus) string {
	return fmt.Sprintf("upload %s initiated: %d parts of %d bytes", up.ID, up.PartCount, up.PartSize)
}

func partsMessage(up *upv1.UploadStatus) string {
	return fmt.Sprintf("all %d parts acknowledged (%d bytes)", up.PartCount, up.BytesDone)
}

func mergedMessage(up *upv1.UploadStatus) string {
	if up.ResourceID == "" {
		return fmt.Sprintf("%d parts merged; merge's answer was lost and WeChat Pay refused the retry as already done, so the resource id is unknown", up.PartCount)
	}
	return fmt.Sprintf("%d parts merged into resource %s", up.PartCount, up.ResourceID)
}

// tooManyLinesMessage says that a file that is never split is longer than
// WeChat Pay recommends.
func tooManyLinesMessage(u *upv1.UserPackageUpload) string {
	return fmt.Sprintf("%d lines in one upload, more than the %d WeChat Pay recommends; spec.file.maxLinesPerUpload is 0, so the file is not split",
		u.Status.Content.Lines, recommendedMaxLines)
}

func expandedMessage(u *upv1.UserPackageUpload, up *upv1.UploadStatus) string {
	return fmt.Sprintf("crowd package %s expanded with upload %s; the data takes effect after WeChat Pay's sync (usually T+2)",
		u.Spec.UserPackageID, up.ID)
}

// readyMessage says how far the upload went, for the Ready condition and
// the Status printer column.
func readyMessage(u *upv1.UserPackageUpload) string {
	if nothingNew(u) {
		return fmt.Sprintf("nothing to upload: the base spec.file.excludeMembersOf has every member of the file (%d lines unchanged)", u.Status.Delta.Unchanged)
	}
	if len(u.Status.Uploads) > 1 {
		return setReadyMessage(u)
	}
	var up *upv1.UploadStatus
	if len(u.Status.Uploads) == 1 {
		up = &u.Status.Uploads[0]
	}
	switch {
	case up == nil:
		return "no upload"
	case u.Spec.UserPackageID != "" && isExpanded(up, u.Spec.UserPackageID):
		return expandedMessage(u, up)
	case up.MergedAt != nil:
		return mergedMessage(up)
	default:
		return initiatedMessage(up) + "; the parts are sent by another system (spec.uploadParts: false)"
	}
}

// setReadyMessage says how far a file in several uploads went.
func setReadyMessage(u *upv1.UserPackageUpload) string {
	var lines, parts int64
	for i := range u.Status.Uploads {
		lines += u.Status.Uploads[i].Lines
		parts += u.Status.Uploads[i].PartCount
	}
	n := len(u.Status.Uploads)
	switch {
	case u.Spec.UserPackageID != "" && countUploads(u, stages[3].done) == n:
		return fmt.Sprintf("crowd package %s expanded with %d uploads (%d lines); the data takes effect after WeChat Pay's sync (usually T+2)",
			u.Spec.UserPackageID, n, lines)
	case countUploads(u, stages[2].done) == n:
		return fmt.Sprintf("%d uploads (%d lines, %d parts) merged", n, lines, parts)
	default:
		return fmt.Sprintf("%d uploads (%d lines) initiated: %d parts; the parts are sent by another system (spec.uploadParts: false)", n, lines, parts)
	}
}

// supersededMessage says an upload was left for a new one.
func supersededMessage(uploadID string) string {
	return fmt.Sprintf("upload %s is abandoned: the file or what WeChat Pay is told about it changed, a new upload starts", uploadID)
}
