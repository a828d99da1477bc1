package source

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// Revision is one version of an export a sync follows: the object's key
// and the version found there.
type Revision struct {
	Key string
	Version
}

// ID names the revision: the version id where the bucket keeps versions,
// else the ETag; an export followed by prefix has its key first, since two
// dated objects may have the same bytes.
func (r Revision) ID(byPrefix bool) string {
	id := cmp.Or(r.VersionID, strings.Trim(r.ETag, `"`))
	if byPrefix {
		return r.Key + "@" + id
	}
	return id
}

// S3Revisions finds the current revision of an export in an S3 bucket.
type S3Revisions struct {
	s *s3Source
}

// NewS3Revisions returns the revisions of the object at cfg.Key, or of the
// objects under the prefix cfg.Key. It does no I/O.
func NewS3Revisions(cfg S3Config) (*S3Revisions, error) {
	src, err := NewS3(cfg)
	if err != nil {
		return nil, err
	}
	return &S3Revisions{s: src.(*s3Source)}, nil
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

// Read reads exactly the revision (its version, its ETag) once, and
// returns the SHA-256 of its bytes and how many non-empty lines it has:
// what tells a revision with the bytes of the last one, and a shrink,
// before anything is sent.
func (r *S3Revisions) Read(ctx context.Context, rev Revision) (digest string, lines int64, err error) {
	opts := minio.GetObjectOptions{VersionID: rev.VersionID}
	if err := opts.SetMatchETag(rev.ETag); err != nil {
		return "", 0, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	body, _, _, err := r.s.client.GetObject(ctx, r.s.bucket, rev.Key, opts)
	if err != nil {
		return "", 0, r.s.classify("get", err, true)
	}
	defer body.Close()
	h := sha256.New()
	lines, err = countLines(io.TeeReader(r.s.guard.watch(body, "s3://"+r.s.bucket+"/"+rev.Key, rev.Size), h))
	if err != nil {
		return "", 0, fmt.Errorf("read s3://%s/%s: %w", r.s.bucket, rev.Key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), lines, nil
}

// countLines counts the lines of r that hold anything but a line ending.
func countLines(r io.Reader) (int64, error) {
	var n int64
	buf := make([]byte, 256<<10)
	empty := true // the current line has nothing yet
	for {
		k, err := r.Read(buf)
		for _, c := range buf[:k] {
			switch {
			case c == '\n':
				if !empty {
					n++
				}
				empty = true
			case c != '\r':
				empty = false
			}
		}
		if err == io.EOF {
			if !empty {
				n++
			}
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}
