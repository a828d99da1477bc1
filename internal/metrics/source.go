package metrics

import (
	"context"
	"io"

	"github.com/crowdpack/crowdpack/internal/source"
)

// InstrumentSource returns s with every byte read through Open and
// OpenRange counted in crowdpack_source_read_bytes_total.
func InstrumentSource(s source.Source) source.Source {
	return &instrumentedSource{next: s}
}

type instrumentedSource struct{ next source.Source }

func (s *instrumentedSource) Open(ctx context.Context) (io.ReadCloser, source.Version, error) {
	body, v, err := s.next.Open(ctx)
	if err != nil {
		return nil, v, err
	}
	return countingReader{body}, v, nil
}

func (s *instrumentedSource) OpenRange(ctx context.Context, v source.Version, offset, length int64) (io.ReadCloser, error) {
	body, err := s.next.OpenRange(ctx, v, offset, length)
	if err != nil {
		return nil, err
	}
	return countingReader{body}, nil
}

// countingReader counts what is read through it. It deliberately has no
// WriteTo, so that copies go through Read (and the caller's buffer).
type countingReader struct{ io.ReadCloser }

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		SourceBytesRead.Add(float64(n))
	}
	return n, err
}
