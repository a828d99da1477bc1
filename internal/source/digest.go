package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/crowdpack/crowdpack/internal/linecheck"
)

// digestBufferSize is the one buffer a digest streams through: memory stays
// flat whatever the size of the file.
const digestBufferSize = 256 << 10

// Result describes one version of a file, read once.
type Result struct {
	Version Version
	// Digest is the SHA-256 of the file, 64 lowercase hex characters.
	Digest string
	// Report holds the line checks; it is zero when no checker was given.
	Report linecheck.Report
}

// Digest streams the current version of src once through SHA-256 and check
// (which may be nil). It fails if fewer or more bytes arrive than the
// version's size, since the digest would then describe no version at all.
func Digest(ctx context.Context, src Source, check *linecheck.Checker) (Result, error) {
	body, v, err := src.Open(ctx)
	if err != nil {
		return Result{}, err
	}
	defer body.Close()

	hash := sha256.New()
	var sink io.Writer = hash
	if check != nil {
		sink = io.MultiWriter(hash, check)
	}
	// Hide any WriterTo/ReaderFrom so the copy goes through our buffer.
	n, err := io.CopyBuffer(sink, struct{ io.Reader }{body}, make([]byte, digestBufferSize))
	if err != nil {
		return Result{}, fmt.Errorf("read the object: %w", err)
	}
	if n != v.Size {
		return Result{}, fmt.Errorf("torn read: the object did not yield its %d bytes", v.Size)
	}
	result := Result{Version: v, Digest: hex.EncodeToString(hash.Sum(nil))}
	if check != nil {
		result.Report = check.Report()
	}
	return result, nil
}
