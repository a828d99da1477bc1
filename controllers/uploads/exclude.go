package uploads

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/internal/delta"
	"github.com/crowdpack/crowdpack/internal/linecheck"
	"github.com/crowdpack/crowdpack/internal/source"
)

// An upload with spec.file.excludeMembersOf sends the file's members that
// its base does not have: the output of internal/delta, which is read as
// the file would be (delta.Source). Nothing of it is stored: the output is
// computed again for the parts of each upload, and is deterministic, so the
// chunk digests taken now check every byte sent later.

// excludes reports whether the spec uploads only the members its base lacks.
func excludes(u *upv1.UserPackageUpload) bool { return u.Spec.File.ExcludeMembersOf != nil }

// nothingNew reports whether the file has no member its base lacks: its
// one upload is empty, and WeChat Pay, which refuses an empty file, is not
// called.
func nothingNew(u *upv1.UserPackageUpload) bool {
	return excludes(u) && u.Status.Delta != nil && u.Status.Delta.Added == 0
}

// digestDelta reads what an upload with excludeMembersOf sends. It pins the
// file (its version and digest, as read now) and the base (by the digest
// the spec gives), then digests the delta of the two and cuts it into
// uploads. The result's Version and Digest are the file's own, for
// status.source; its Chunks are the delta's, its Report the file's lines.
// It records status.delta, and stalls BaseUnavailable when the base cannot
// be read as pinned: it never falls back to the whole file.
func (s *scope) digestDelta(ctx context.Context, src source.Source) (source.Result, error) {
	u := s.obj
	file, err := source.Digest(ctx, src, nil)
	if err != nil {
		return source.Result{}, classify.Source(err)
	}
	baseSrc, base, err := s.readBase(ctx)
	if err != nil {
		return source.Result{}, err
	}
	d := s.deltaSource(src, file.Version, baseSrc, base.Version)
	out, err := source.DigestChunks(ctx, d, nil, deltaSplitOptions(u))
	if err != nil {
		return source.Result{}, deltaError(err)
	}
	counts := d.Counts()
	if counts.BaseMembers == 0 && base.Version.Size > 0 {
		return source.Result{}, baseUnavailable(u, "holds no valid %s member (is it a file of another dataType, or not read with the same hashing and skipHeaderRow?)", u.Spec.File.DataType)
	}
	u.Status.Delta = deltaStatus(base, out.Version.Size, counts)
	return source.Result{
		Version: file.Version,
		Digest:  file.Digest,
		Report:  deltaReport(counts),
		Chunks:  out.Chunks,
	}, nil
}

// readBase reads the base once, through SHA-256, and checks it against the
// digest the spec pins it to.
func (s *scope) readBase(ctx context.Context) (source.Source, source.Result, error) {
	u := s.obj
	baseSrc, err := s.baseStorage(ctx)
	if err != nil {
		return nil, source.Result{}, err
	}
	base, err := source.Digest(ctx, baseSrc, nil)
	switch {
	case errors.Is(err, source.ErrNotFound) || errors.Is(err, source.ErrChanged):
		return nil, source.Result{}, baseUnavailable(u, "cannot be read: %v", err)
	case errors.Is(err, source.ErrAccessDenied):
		return nil, source.Result{}, classify.Stall(upv1.ReasonSourceAccessDenied,
			"the base spec.file.excludeMembersOf: %v; check the storage credentials in spec.file.excludeMembersOf.*.secretRef and the bucket policy", err)
	case err != nil:
		return nil, source.Result{}, classify.Source(fmt.Errorf("the base spec.file.excludeMembersOf: %w", err))
	}
	if got, want := digestPrefix+base.Digest, u.Spec.File.ExcludeMembersOf.Digest; got != want {
		return nil, source.Result{}, baseUnavailable(u, "reads as %s, not the pinned %s: it was overwritten", got, want)
	}
	return baseSrc, base, nil
}

// baseUnavailable stalls on a base that cannot be read as pinned, saying
// how to fix it.
func baseUnavailable(u *upv1.UserPackageUpload, format string, args ...any) error {
	fix := "enable versioning on the base's bucket and set spec.file.excludeMembersOf.versionID to the version uploaded (status.source.versionID of its upload), " +
		"or remove spec.file.excludeMembersOf to upload the whole file"
	if excludes(u) && u.Spec.File.ExcludeMembersOf.VersionID != "" {
		fix = "point spec.file.excludeMembersOf at a version that still has the digest, or remove it to upload the whole file"
	}
	return classify.Stall(upv1.ReasonBaseUnavailable, "the base spec.file.excludeMembersOf %s; nothing is uploaded until it can be read as pinned: %s",
		fmt.Sprintf(format, args...), fix)
}

// deltaError classifies an error of the delta's digest.
func deltaError(err error) error {
	if errors.Is(err, delta.ErrBudget) {
		return classify.Stall(upv1.ReasonSourceTooLarge,
			"%v: the file is too large to compare with its base within the manager's --max-delta-memory; ask the platform team to raise it", err)
	}
	return classify.Source(err)
}

// deltaSource is the delta of version v of the file src over version
// baseVersion of the base baseSrc, as the spec reads both files.
func (s *scope) deltaSource(src source.Source, v source.Version, baseSrc source.Source, baseVersion source.Version) *delta.Source {
	f := s.obj.Spec.File
	format := delta.Format{
		DataType:      linecheck.DataType(f.DataType),
		HashMD5:       f.Hashing == upv1.HashingMD5,
		SkipHeaderRow: f.SkipHeaderRow,
	}
	return delta.NewSource(delta.SourceOpener(src, v), delta.SourceOpener(baseSrc, baseVersion), format, delta.Options{Pool: s.deltaPool})
}

// openDeltaChunk reads the delta again for the parts of up's chunk, with
// both files pinned to the versions digested (status.source, status.delta),
// and checks it against the chunk's digest.
func (s *scope) openDeltaChunk(ctx context.Context, src source.Source, up *upv1.UploadStatus) (*source.ChunkReader, error) {
	u := s.obj
	if u.Status.Delta == nil {
		return nil, fmt.Errorf("%w: status.delta is missing; request a reconcile to read the file again", source.ErrChanged)
	}
	baseSrc, err := s.baseStorage(ctx)
	if err != nil {
		return nil, err
	}
	d := s.deltaSource(src, pinnedVersion(u.Status.Source), baseSrc, pinnedBase(&u.Status.Delta.Base))
	return source.OpenChunk(ctx, d, source.Version{Size: u.Status.Delta.Size}, chunkOf(up), deltaSplitOptions(u))
}

// deltaSplitOptions cut the delta into uploads: it is already the uploaded
// lines, without header row, so it is neither hashed nor skipped again.
func deltaSplitOptions(u *upv1.UserPackageUpload) source.SplitOptions {
	return source.SplitOptions{MaxLines: maxLines(u)}
}

// pinnedBase is the version of the base that was digested.
func pinnedBase(p *upv1.PinnedVersion) source.Version {
	v := source.Version{Size: p.Size, ETag: p.ETag, VersionID: p.VersionID}
	if p.LastModified != nil {
		v.LastModified = p.LastModified.Time
	}
	return v
}

func deltaStatus(base source.Result, size int64, c delta.Counts) *upv1.DeltaStatus {
	d := &upv1.DeltaStatus{
		Base: upv1.PinnedVersion{
			Size: base.Version.Size, Digest: digestPrefix + base.Digest,
			ETag: base.Version.ETag, VersionID: base.Version.VersionID,
		},
		Size:        size,
		Added:       c.Added,
		Unchanged:   c.Unchanged,
		Left:        c.Left,
		BaseMembers: c.BaseMembers,
	}
	if t := base.Version.LastModified; !t.IsZero() {
		d.Base.LastModified = &metav1.Time{Time: t}
	}
	return d
}

// deltaReport is the line report of the file the delta read: its lines and
// the invalid ones, which are not uploaded.
func deltaReport(c delta.Counts) linecheck.Report {
	return linecheck.Report{Lines: c.Lines, InvalidLines: c.Invalid, FirstInvalidLineNumbers: c.InvalidLineNumbers}
}
