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

// Revisions finds the current revision of an export and reads it.
type Revisions interface {
	// Current returns the revision the source holds now.
	Current(ctx context.Context) (Revision, error)
	// Read reads exactly rev once: its SHA-256, its non-empty lines and
	// those of them that valid accepts (line 1 left out with skipFirst).
	Read(ctx context.Context, rev Revision, valid func(line []byte) bool, skipFirst bool) (Count, error)
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
	byPrefix bool
}

// NewS3Revisions returns the revisions of the object at cfg.Key or, with
// byPrefix, of the objects under the prefix cfg.Key. It does no I/O.
func NewS3Revisions(cfg S3Config, byPrefix bool) (*S3Revisions, error) {
	src, err := NewS3(cfg)
	if err != nil {
		return nil, err
	}
	return &S3Revisions{s: src.(*s3Source), byPrefix: byPrefix}, nil
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

// Read reads the file once, which must still be rev.
func (r *HTTPRevisions) Read(ctx context.Context, rev Revision, valid func(line []byte) bool, skipFirst bool) (Count, error) {
	body, v, err := r.s.Open(ctx)
	if err != nil {
		return Count{}, err
	}
	defer body.Close()
	if versionName(v) != rev.ID {
		return Count{}, fmt.Errorf("get %s: %w: revision %s is now %s", r.s.name, ErrChanged, remote(rev.ID), remote(versionName(v)))
	}
	h := sha256.New()
	count, err := countLines(io.TeeReader(body, h), valid, skipFirst)
	if err != nil {
		return Count{}, fmt.Errorf("read %s: %w", r.s.name, err)
	}
	count.Digest = hex.EncodeToString(h.Sum(nil))
	return count, nil
}
