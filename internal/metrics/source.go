package metrics

import (
	"context"
	"io"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdpack/crowdpack/internal/source"
)

// InstrumentSource returns s with every byte read through Open and
// OpenRange counted in crowdpack_source_read_bytes_total.
func InstrumentSource(s source.Source) source.Source {
	return InstrumentNamespaceSource("", s)
}

// InstrumentNamespaceSource is InstrumentSource for the uploads of a
// namespace: its reads and bytes are also counted by namespace
// (crowdpack_source_reads_total, crowdpack_source_read_bytes_by_namespace_total).
func InstrumentNamespaceSource(namespace string, s source.Source) source.Source {
	is := &instrumentedSource{next: s}
	if namespace != "" {
		is.reads = SourceReads.MustCurryWith(map[string]string{"upload_namespace": namespace})
		is.bytes = SourceBytesReadByNamespace.WithLabelValues(namespace)
	}
	return is
}

type instrumentedSource struct {
	next  source.Source
	reads *prometheus.CounterVec // by read, nil without a namespace
	bytes prometheus.Counter     // nil without a namespace
}

func (s *instrumentedSource) Open(ctx context.Context) (io.ReadCloser, source.Version, error) {
	body, v, err := s.next.Open(ctx)
	if err != nil {
		return nil, v, err
	}
	s.countRead("file")
	return countingReader{body, s.bytes}, v, nil
}

func (s *instrumentedSource) OpenRange(ctx context.Context, v source.Version, offset, length int64) (io.ReadCloser, error) {
	body, err := s.next.OpenRange(ctx, v, offset, length)
	if err != nil {
		return nil, err
	}
	s.countRead("range")
	return countingReader{body, s.bytes}, nil
}

func (s *instrumentedSource) countRead(read string) {
	if s.reads != nil {
		s.reads.WithLabelValues(read).Inc()
	}
}

// countingReader counts what is read through it. It deliberately has no
// WriteTo, so that copies go through Read (and the caller's buffer).
type countingReader struct {
	io.ReadCloser
	namespace prometheus.Counter // nil: not counted by namespace
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		SourceBytesRead.Add(float64(n))
		if r.namespace != nil {
			r.namespace.Add(float64(n))
		}
	}
	return n, err
}
