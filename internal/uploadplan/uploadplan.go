// Package uploadplan says how a UserPackageUpload's spec cuts its file into
// uploads and names them. The operator and the kubectl-crowdpack plugin's
// preview share it, so that a preview of a local file shows exactly the
// uploads the operator makes of the same bytes.
package uploadplan

import (
	"fmt"
	"strconv"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/linecheck"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// RecommendedMaxLines is WeChat Pay's recommended most lines of one file,
// the default of spec.file.maxLinesPerUpload.
const RecommendedMaxLines = 500000

// MaxLines is spec.file.maxLinesPerUpload, defaulted.
func MaxLines(f *upv1.FileSpec) int64 {
	if m := f.MaxLinesPerUpload; m != nil {
		return int64(*m)
	}
	return RecommendedMaxLines
}

// SplitOptions says how the file spec cuts and transforms the file.
func SplitOptions(f *upv1.FileSpec) source.SplitOptions {
	return source.SplitOptions{
		MaxLines:      MaxLines(f),
		SkipHeaderRow: f.SkipHeaderRow,
		HashMD5:       f.Hashing == upv1.HashingMD5,
	}
}

// ChunkName is the filename of chunk index of count: the stem, cut so that
// the name fits WeChat Pay's limit, and the index zero-padded to at least
// three digits and to the digits of count.
func ChunkName(stem string, index int32, count int) string {
	suffix := ChunkSuffix(index, count)
	return stem[:min(len(stem), wechatpay.MaxFilenameLength-len(suffix))] + suffix
}

// ChunkSuffix is the numbered end of chunk index's filename: -001.csv.
func ChunkSuffix(index int32, count int) string {
	return fmt.Sprintf("-%0*d.csv", max(3, len(strconv.Itoa(count))), index)
}

// DigestPrefix starts every digest in status: sha256:<hex>.
const DigestPrefix = "sha256:"

// Upload is the status of a new upload of chunk c, made at generation.
func Upload(c source.Chunk, generation int64) upv1.UploadStatus {
	return upv1.UploadStatus{
		Index: int32(c.Index), FirstLine: c.FirstLine, LastLine: c.LastLine,
		Start: c.Start, End: c.End, Lines: c.Lines, Size: c.Size,
		Digest: DigestPrefix + c.Digest, Generation: generation,
	}
}

// Content is status.content for the line checks' report.
func Content(r linecheck.Report) *upv1.ContentStatus {
	return &upv1.ContentStatus{
		Lines:              r.Lines,
		InvalidLines:       r.InvalidLines,
		EmptyLines:         r.EmptyLines,
		HeaderRow:          r.HeaderRow,
		CRLF:               r.CRLF,
		BOM:                r.BOM,
		InvalidLineNumbers: r.FirstInvalidLineNumbers,
	}
}
