package delta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/crowdpack/crowdpack/internal/source"
)

// Source is the output of a computation as a source.Source: the members of
// a pinned revision that a pinned base does not have, one per line, as
// WeChat Pay receives them. An upload digests it, cuts it and sends it in
// parts as it would a file (source.DigestChunks, source.OpenChunk), without
// hashing: the output is already the uploaded lines.
//
// Nothing is stored: every Open and OpenRange computes the output again,
// which is deterministic, so a part read again after a restart is the part
// that was digested, or the chunk's digest check says it is not.
type Source struct {
	revision, base Opener
	format         Format
	opts           Options

	mu     sync.Mutex
	counts Counts // of the last computation read to its end
}

// NewSource is the delta of revision over base, both read with format.
func NewSource(revision, base Opener, format Format, opts Options) *Source {
	return &Source{revision: revision, base: base, format: format, opts: opts}
}

// Open streams the whole output. Its size is known only at its end, so the
// Version it reports has source.UnknownSize; the digest takes the bytes read.
func (s *Source) Open(ctx context.Context) (io.ReadCloser, source.Version, error) {
	return &output{Reader: NewReader(ctx, s.revision, s.base, s.format, s.opts), done: s.setCounts},
		source.Version{Size: source.UnknownSize}, nil
}

// OpenRange computes the output again and streams [offset, offset+length)
// of it. v is the digested output's version, whose Size bounds the range.
// An output that ends before the range does fails with source.ErrChanged.
func (s *Source) OpenRange(ctx context.Context, v source.Version, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 || length <= 0 || offset > v.Size-length {
		return nil, fmt.Errorf("%w: range [%d, %d) is not inside the delta's %d bytes",
			source.ErrInvalidConfig, offset, offset+length, v.Size)
	}
	r := NewReader(ctx, s.revision, s.base, s.format, s.opts)
	if n, err := io.CopyN(io.Discard, r, offset); err != nil {
		r.Close()
		return nil, shortOutput(err, offset-n+length)
	}
	return &rangeOutput{r: r, left: length}, nil
}

// Counts returns the counts of the last computation read to its end.
func (s *Source) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

func (s *Source) setCounts(c Counts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = c
}

// shortOutput is the error of an output that ended (or failed) missing
// bytes short: at its end, the files no longer give what was digested.
func shortOutput(err error, missing int64) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: the delta ended %d bytes short of what was digested", source.ErrChanged, missing)
	}
	return err
}

// output is a whole output; it hands its counts over at io.EOF.
type output struct {
	*Reader
	done func(Counts)
}

func (o *output) Read(p []byte) (int, error) {
	n, err := o.Reader.Read(p)
	if err == io.EOF {
		o.done(o.Reader.Counts())
	}
	return n, err
}

// rangeOutput is length bytes of an output from an offset.
type rangeOutput struct {
	r    *Reader
	left int64
}

func (o *rangeOutput) Read(p []byte) (int, error) {
	if o.left <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), o.left)]
	n, err := o.r.Read(p)
	o.left -= int64(n)
	if err != nil && o.left > 0 {
		return n, shortOutput(err, o.left)
	}
	if o.left <= 0 {
		err = io.EOF
	}
	return n, err
}

// Close stops the computation, whose rest is not read.
func (o *rangeOutput) Close() error { return o.r.Close() }
