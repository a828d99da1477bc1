package uploads

import (
	corev1 "k8s.io/api/core/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/uploads/filenames"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/uploadplan"
)

// The set of uploads: status.uploads holds one upload per chunk of the
// file, each with the chunk it sends (line and byte range, size, digest).
// The chunks are recorded when the file is read; the upload keys, once the
// brand is known (settleUploads).

// uploadStages are the conditions of the uploads' stages, which start again
// with a new upload.
var uploadStages = []string{upv1.ConditionInitiated, upv1.ConditionPartsUploaded, upv1.ConditionMerged, upv1.ConditionExpanded}

// migrateUpload turns the one upload of the previous release's
// status.upload into a one-chunk set: the whole file, as it was read.
func migrateUpload(u *upv1.UserPackageUpload) {
	up := u.Status.Upload
	if up == nil {
		return
	}
	u.Status.Upload = nil
	if len(u.Status.Uploads) > 0 {
		return
	}
	chunk := up.DeepCopy()
	chunk.Index, chunk.FirstLine, chunk.Start = 1, 1, 0
	if s := u.Status.Source; s != nil && up.Digest != "" {
		chunk.End, chunk.Size = s.Size, s.Size
	}
	if c := u.Status.Content; c != nil && up.Digest != "" {
		chunk.Lines, chunk.LastLine = c.Lines, c.Lines+c.EmptyLines
	}
	u.Status.Uploads = []upv1.UploadStatus{*chunk}
}

// hasChunks reports whether status records the chunks of a file read.
func hasChunks(u *upv1.UserPackageUpload) bool {
	return len(u.Status.Uploads) > 0 && u.Status.Uploads[0].Digest != ""
}

// chunkUpload is a new upload of a chunk, for the spec's generation.
func chunkUpload(c source.Chunk, generation int64) upv1.UploadStatus {
	return uploadplan.Upload(c, generation)
}

// withChunk is up's chunk, as a new upload of the spec's generation.
func withChunk(up *upv1.UploadStatus, generation int64) upv1.UploadStatus {
	return upv1.UploadStatus{
		Index: up.Index, FirstLine: up.FirstLine, LastLine: up.LastLine,
		Start: up.Start, End: up.End, Lines: up.Lines, Size: up.Size,
		Digest: up.Digest, Generation: generation,
	}
}

// sameChunk reports whether two uploads send the same bytes of the file.
func sameChunk(a, b *upv1.UploadStatus) bool {
	return a.Digest == b.Digest && a.Size == b.Size && a.Start == b.Start && a.End == b.End
}

// setChunks records the chunks of the file just read. An upload of the
// same bytes goes on (its key decides later); one whose chunk changed or
// is gone is abandoned. A pending initiate mark, written before the read,
// stays on the first chunk.
func (s *scope) setChunks(chunks []source.Chunk) {
	u := s.obj
	old := u.Status.Uploads
	fresh := make([]upv1.UploadStatus, len(chunks))
	for i, c := range chunks {
		fresh[i] = chunkUpload(c, u.Generation)
		switch {
		case i >= len(old):
		case sameChunk(&old[i], &fresh[i]):
			fresh[i] = old[i]
		case old[i].Digest == "" && old[i].ID == "": // initiate's early mark
			fresh[i].InitiatingSince = old[i].InitiatingSince
		default:
			s.supersede(&old[i])
		}
	}
	for i := len(chunks); i < len(old); i++ {
		s.supersede(&old[i])
	}
	u.Status.Uploads = fresh
}

// supersede moves an upload that is left for a new one to the history,
// and takes back what the conditions said about the uploads' stages.
func (s *scope) supersede(up *upv1.UploadStatus) {
	u := s.obj
	if up.ID != "" {
		abandon(u, up, up.ID, up.Filename, s.now())
		s.event(corev1.EventTypeNormal, "Superseded", supersededMessage(up.ID))
	}
	for _, c := range uploadStages {
		removeCondition(u, c)
	}
}

// settleUploads gives each chunk the upload of what WeChat Pay is to
// receive, starting a new one only when its upload key changed: every other
// edit continues the upload in hand.
func (s *scope) settleUploads() {
	u := s.obj
	for i := range u.Status.Uploads {
		up := &u.Status.Uploads[i]
		key := uploadKey(u, up, s.brandID)
		if up.Key == "" && up.Generation == u.Generation {
			up.Key = key // recorded by this generation's read, or written before upload keys existed
		}
		if up.Filename == "" {
			up.Filename = filenames.ForChunk(u, up.Index)
		}
		if up.Key == key {
			continue
		}
		s.supersede(up)
		next := withChunk(up, u.Generation)
		next.Key = key
		*up = next
		up.Filename = filenames.ForChunk(u, up.Index)
	}
}

// uploadAt finds in x the upload of chunk index with key. An object that
// holds another set (a fresh read of an object this reconcile wrote before
// its set was settled) takes set, this reconcile's.
func uploadAt(x *upv1.UserPackageUpload, index int32, key string, set []upv1.UploadStatus) *upv1.UploadStatus {
	find := func() *upv1.UploadStatus {
		for i := range x.Status.Uploads {
			if up := &x.Status.Uploads[i]; up.Index == index && up.Key == key {
				return up
			}
		}
		return nil
	}
	if up := find(); up != nil {
		return up
	}
	x.Status.Upload = nil
	x.Status.Uploads = deepCopyUploads(set)
	return find()
}

// tooManyLines reports whether a file that is never split has more lines
// than WeChat Pay recommends for one upload.
func tooManyLines(u *upv1.UserPackageUpload) bool {
	return maxLines(u) == 0 && u.Status.Content != nil && u.Status.Content.Lines > recommendedMaxLines
}

// recommendedMaxLines is WeChat Pay's recommended most lines of one file,
// the default of spec.file.maxLinesPerUpload.
const recommendedMaxLines = uploadplan.RecommendedMaxLines

// maxLines is spec.file.maxLinesPerUpload, defaulted.
func maxLines(u *upv1.UserPackageUpload) int64 { return uploadplan.MaxLines(&u.Spec.File) }

// splitOptions says how the spec cuts and transforms the file.
func splitOptions(u *upv1.UserPackageUpload) source.SplitOptions {
	return uploadplan.SplitOptions(&u.Spec.File)
}

// deepCopyUploads copies a set of uploads.
func deepCopyUploads(set []upv1.UploadStatus) []upv1.UploadStatus {
	out := make([]upv1.UploadStatus, len(set))
	for i := range set {
		set[i].DeepCopyInto(&out[i])
	}
	return out
}
