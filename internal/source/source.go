// Package source reads crowd package files from object storage behind one
// narrow interface, with one backend per file (S3-compatible stores, plain
// HTTP(S) URLs).
//
// Objects are streamed, never buffered whole nor written to disk, and pinned:
// Open reports the Version it streams, and OpenRange reads parts of exactly
// that version or fails with ErrChanged, so a digest and the parts uploaded
// later describe the same bytes.
//
// Errors are classified with errors.Is against ErrNotFound, ErrAccessDenied,
// ErrChanged, ErrInvalidConfig, ErrAddressDenied, ErrInsecureDenied and
// ErrTooLarge, which retrying cannot help; anything else (network, timeouts,
// 5xx, ErrTooSlow) is transient. Error messages never contain
// credentials, tokens, URL query strings or userinfo.
package source

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Version pins one version of an object: Size and a digest describe exactly it.
type Version struct {
	// Size is the object's length in bytes.
	Size int64
	// ETag is the object's entity tag, without quotes for S3, verbatim
	// (quotes included) for HTTP.
	ETag string
	// VersionID is set when the bucket is versioned.
	VersionID string
	// LastModified pins an HTTP object that has no strong ETag.
	LastModified time.Time
}

// UnknownSize is the Size an Open reports for a stream whose length is
// known only once it is read to its end: bytes made as they are read, such
// as the delta of two files (see internal/delta). Digest then takes the
// bytes read as the version's size.
const UnknownSize = -1

// Source reads one object.
type Source interface {
	// Open streams the current version of the object from the start.
	Open(ctx context.Context) (io.ReadCloser, Version, error)
	// OpenRange streams [offset, offset+length) of the object, which must
	// still be version v: if it was overwritten or deleted since, OpenRange
	// fails with ErrChanged.
	OpenRange(ctx context.Context, v Version, offset, length int64) (io.ReadCloser, error)
}

// checkRange refuses a range that is empty or not inside v: a caller bug
// that no retry can fix.
func checkRange(v Version, offset, length int64) error {
	if offset < 0 || length <= 0 || offset > v.Size-length {
		return fmt.Errorf("%w: range [%d, %d) is not inside the object's %d bytes",
			ErrInvalidConfig, offset, offset+length, v.Size)
	}
	return nil
}
