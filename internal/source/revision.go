package source

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// Revision is one version of an export a sync follows: where it is, the
// version found there, and the name the sync gives it.
type Revision struct {
	// ID names the revision: the version id where the bucket keeps versions,
	// else the ETag (else, over HTTP, the time it was modified); an export
	// followed by prefix has its key first, since two dated objects may
	// have the same bytes.
	ID string
	// Key is the object's key, or the URL without query.
	Key string
	Version
}

// Revisions finds the current revision of an export.
type Revisions interface {
	// Current returns the revision the source holds now.
	Current(ctx context.Context) (Revision, error)
	// Source reads rev's object: the version it names where the store keeps
	// versions, else the current one, whose Version the caller compares
	// with rev's (SameVersion).
	Source(rev Revision) (Source, error)
}

// SameVersion reports whether a read found the version a revision names,
// by the most precise name the revision has: a listing of a prefix has no
// version ids even where the bucket keeps versions, and a read of the
// current version does, so a revision without one is judged by its ETag.
func SameVersion(rev Revision, read Version) bool {
	switch {
	case rev.VersionID != "":
		return rev.VersionID == read.VersionID
	case rev.ETag != "":
		return strings.Trim(rev.ETag, `"`) == strings.Trim(read.ETag, `"`)
	}
	return versionName(rev.Version) == versionName(Version{LastModified: read.LastModified})
}

// versionName is the version's own name: its version id, ETag, or the
// time it was modified.
func versionName(v Version) string {
	if id := cmp.Or(v.VersionID, strings.Trim(v.ETag, `"`)); id != "" {
		return id
	}
	return v.LastModified.UTC().Format(time.RFC3339)
}

// S3Revisions finds the current revision of an export in an S3 bucket:
// the object at a key, or the newest under a prefix.
type S3Revisions struct {
	s        *s3Source
	cfg      S3Config
	byPrefix bool
}

// NewS3Revisions returns the revisions of the object at cfg.Key or, with
// byPrefix, of the objects under the prefix cfg.Key. It does no I/O.
func NewS3Revisions(cfg S3Config, byPrefix bool) (*S3Revisions, error) {
	src, err := NewS3(cfg)
	if err != nil {
		return nil, err
	}
	return &S3Revisions{s: src.(*s3Source), cfg: cfg, byPrefix: byPrefix}, nil
}

// Current returns the object at the key, or the newest under the prefix.
func (r *S3Revisions) Current(ctx context.Context) (Revision, error) {
	find := r.Object
	if r.byPrefix {
		find = r.Newest
	}
	rev, err := find(ctx)
	if err != nil {
		return Revision{}, err
	}
	rev.ID = versionName(rev.Version)
	if r.byPrefix {
		rev.ID = rev.Key + "@" + rev.ID
	}
	return rev, nil
}

// Object returns the current version of the object at the key.
func (r *S3Revisions) Object(ctx context.Context) (Revision, error) {
	info, err := r.s.client.StatObject(ctx, r.s.bucket, r.s.key, minio.StatObjectOptions{})
	if err != nil {
		return Revision{}, r.s.classify("stat", err, false)
	}
	return revisionOf(info), nil
}

// Newest returns the newest object under the prefix whose key ends in .csv:
// the one modified last, of two modified at once the greater key, so that
// dated names decide. Stores keep LastModified to the second.
func (r *S3Revisions) Newest(ctx context.Context) (Revision, error) {
	var newest *minio.ObjectInfo
	for info := range r.s.client.Client.ListObjects(ctx, r.s.bucket, minio.ListObjectsOptions{Prefix: r.s.key, Recursive: true}) {
		if info.Err != nil {
			return Revision{}, r.s.classify("list", info.Err, false)
		}
		if !strings.HasSuffix(info.Key, ".csv") {
			continue
		}
		if newest == nil || newer(info, *newest) {
			newest = &info
		}
	}
	if newest == nil {
		return Revision{}, fmt.Errorf("list %s: %w: no object whose key ends in .csv", r.s.name, ErrNotFound)
	}
	return revisionOf(*newest), nil
}

func newer(a, b minio.ObjectInfo) bool {
	if c := a.LastModified.Truncate(time.Second).Compare(b.LastModified.Truncate(time.Second)); c != 0 {
		return c > 0
	}
	return a.Key > b.Key
}

func revisionOf(info minio.ObjectInfo) Revision {
	return Revision{Key: info.Key, Version: Version{
		Size: info.Size, ETag: strings.Trim(info.ETag, `"`), VersionID: versionID(info.VersionID), LastModified: info.LastModified,
	}}
}

// Source reads rev's object, pinned to its version id if it has one.
func (r *S3Revisions) Source(rev Revision) (Source, error) {
	cfg := r.cfg
	cfg.Key, cfg.VersionID = rev.Key, rev.VersionID
	return NewS3(cfg)
}

// HTTPRevisions finds the current revision of an export served over
// HTTP(S): the file at the URL, named by its strong ETag or its
// Last-Modified time.
type HTTPRevisions struct {
	s *httpSource
}

// NewHTTPRevisions returns the revisions of the file at cfg.URL. It does no I/O.
func NewHTTPRevisions(cfg HTTPConfig) (*HTTPRevisions, error) {
	src, err := NewHTTP(cfg)
	if err != nil {
		return nil, err
	}
	return &HTTPRevisions{s: src.(*httpSource)}, nil
}

// Current asks for the file's headers only (HEAD).
func (r *HTTPRevisions) Current(ctx context.Context) (Revision, error) {
	resp, err := r.s.request(ctx, http.MethodHead, nil)
	if err != nil {
		return Revision{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Revision{}, r.s.statusError(resp, false)
	}
	resp.Body.Close()
	v, err := r.s.version(resp)
	if err != nil {
		return Revision{}, err
	}
	return Revision{ID: versionName(v), Key: r.s.name, Version: v}, nil
}

// Source reads the file at the URL: its current version.
func (r *HTTPRevisions) Source(Revision) (Source, error) { return r.s, nil }
