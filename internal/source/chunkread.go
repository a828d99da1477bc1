package source

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"

	"github.com/crowdpack/crowdpack/internal/rawphone"
)

// ChunkReader streams the uploaded bytes of one chunk again, from a ranged
// read of the chunk's bytes pinned to the digested version, through the
// same transform as the digest. At the end it checks that what it yielded
// is what was digested: the same size and SHA-256.
type ChunkReader struct {
	chunk  Chunk
	body   io.ReadCloser
	source *countingReader // the chunk's bytes of the file
	r      io.Reader       // the uploaded bytes: source, or source hashed
	sum    chunkSum        // of the bytes yielded so far
}

// OpenChunk opens a ranged read of chunk c of version v of src, digested
// with opts; it fails with ErrChanged if the object is no longer v. A chunk
// of no bytes reads nothing from src.
func OpenChunk(ctx context.Context, src Source, v Version, c Chunk, opts SplitOptions) (*ChunkReader, error) {
	body := io.ReadCloser(http.NoBody)
	if c.End > c.Start {
		var err error
		if body, err = src.OpenRange(ctx, v, c.Start, c.End-c.Start); err != nil {
			return nil, fmt.Errorf("open chunk %d: %w", c.Index, err)
		}
	}
	cr := &ChunkReader{chunk: c, body: body, source: &countingReader{r: body}}
	cr.sum.hash = sha256.New()
	cr.r = cr.source
	if opts.HashMD5 {
		cr.r = rawphone.NewReader(cr.source, rawphone.NewHasher(c.FirstLine))
	}
	return cr, nil
}

// Read yields the chunk's uploaded bytes. Instead of io.EOF it returns an
// error when they do not match the digest: one wrapping ErrChanged, or a
// transient one when the range did not yield all its bytes.
func (r *ChunkReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	_, _ = r.sum.Write(p[:n])
	if err == io.EOF {
		err = r.verify()
	}
	return n, err
}

// ReadPart fills part with the next bytes of the chunk, as the controller
// cuts parts: part k is bytes [k*len(part), (k+1)*len(part)) of the stream.
// It returns how many bytes it filled, fewer only for the last part, and
// io.EOF once there is nothing left. The part that ends the chunk comes with
// the verification's error, if any, so a chunk that does not match its
// digest never has its last part sent.
func (r *ChunkReader) ReadPart(part []byte) (int, error) {
	n, err := io.ReadFull(r, part)
	switch {
	case err == io.ErrUnexpectedEOF:
		return n, nil // the short last part, verified by Read at EOF
	case err == nil && r.sum.size == r.chunk.Size:
		return n, r.expectEnd()
	}
	return n, err
}

// expectEnd reads past the digested size: the stream must end there.
func (r *ChunkReader) expectEnd() error {
	var probe [1]byte
	for {
		n, err := r.Read(probe[:])
		switch {
		case n > 0:
			return fmt.Errorf("%w: chunk %d re-read longer than its %d digested bytes",
				ErrChanged, r.chunk.Index, r.chunk.Size)
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
}

// verify compares what the chunk yielded with its digest.
func (r *ChunkReader) verify() error {
	if want := r.chunk.End - r.chunk.Start; r.source.n != want {
		return fmt.Errorf("torn read: chunk %d's range yielded %d of its %d bytes", r.chunk.Index, r.source.n, want)
	}
	got := r.sum.digest()
	if r.sum.size != r.chunk.Size || got != r.chunk.Digest {
		return fmt.Errorf("%w: chunk %d re-read as %d bytes with SHA-256 %s, digested as %d bytes with SHA-256 %s",
			ErrChanged, r.chunk.Index, r.sum.size, got, r.chunk.Size, r.chunk.Digest)
	}
	return io.EOF
}

// Close ends the ranged read.
func (r *ChunkReader) Close() error {
	return r.body.Close()
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
