package source

import (
	"bufio"
	"bytes"
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

// Count is what a revision holds, read once: its SHA-256 and its lines.
type Count struct {
	Digest string
	// Lines counts the non-empty lines; Members those of them valid.
	Lines, Members int64
}

// Read reads exactly the revision (its version, its ETag) once: its
// SHA-256 tells a revision with the bytes of the last one, and its valid
// lines a shrink, before anything is sent. skipFirst leaves line 1 out of
// the counts (a header row).
func (r *S3Revisions) Read(ctx context.Context, rev Revision, valid func(line []byte) bool, skipFirst bool) (Count, error) {
	opts := minio.GetObjectOptions{VersionID: rev.VersionID}
	if err := opts.SetMatchETag(rev.ETag); err != nil {
		return Count{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	body, _, _, err := r.s.client.GetObject(ctx, r.s.bucket, rev.Key, opts)
	if err != nil {
		return Count{}, r.s.classify("get", err, true)
	}
	defer body.Close()
	h := sha256.New()
	count, err := countLines(io.TeeReader(r.s.guard.watch(body, "s3://"+r.s.bucket+"/"+rev.Key, rev.Size), h), valid, skipFirst)
	if err != nil {
		return Count{}, fmt.Errorf("read s3://%s/%s: %w", r.s.bucket, rev.Key, err)
	}
	count.Digest = hex.EncodeToString(h.Sum(nil))
	return count, nil
}

// maxCountedLine is the longest line judged; a longer one is invalid.
const maxCountedLine = 4 << 10

// countLines counts the non-empty lines of r and the valid ones among them.
func countLines(r io.Reader, valid func([]byte) bool, skipFirst bool) (Count, error) {
	var c Count
	br := bufio.NewReaderSize(r, 256<<10)
	for first := true; ; first = false {
		line, overlong, err := readLine(br)
		if err == io.EOF && len(line) == 0 && !overlong {
			return c, nil
		}
		if err != nil && err != io.EOF {
			return Count{}, err
		}
		if (len(line) > 0 || overlong) && !(first && skipFirst) {
			c.Lines++
			if !overlong && valid(line) {
				c.Members++
			}
		}
		if err == io.EOF {
			return c, nil
		}
	}
}

// readLine returns the next line without its line ending, at most
// maxCountedLine bytes of it (overlong then tells that there were more).
func readLine(br *bufio.Reader) (line []byte, overlong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > maxCountedLine {
			overlong = true
		} else {
			line = append(line, chunk...)
		}
		if err != bufio.ErrBufferFull {
			return bytes.TrimRight(line, "\r\n"), overlong, err
		}
	}
}
