package soak

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Kinds of HTTP source the soak serves.
const (
	// sourceDrip sends its bytes in small pieces, just above the
	// managers' minimum source rate (64 KiB/s).
	sourceDrip = "drip"
	// sourceReset resets the connection half way through the body of
	// half of the requests, drawn from the seed, until the faults stop.
	sourceReset = "reset"
)

// dripChunk and dripPause make about 100 KiB/s.
const (
	dripChunk = 4 << 10
	dripPause = 40 * time.Millisecond
)

// httpSources serves the soak's HTTP exports, with ranges, ETags and HEAD
// (http.ServeContent), dripping or resetting as each file's kind says.
type httpSources struct {
	srv    *httptest.Server
	mu     sync.Mutex
	files  map[string]httpFile
	rng    *rand.Rand
	resets atomic.Bool
	// resetCount is how many connections were reset.
	resetCount atomic.Int64
}

type httpFile struct {
	kind     string
	data     []byte
	modified time.Time
}

func startHTTPSources(t *testing.T, seed uint64) *httpSources {
	s := &httpSources{files: map[string]httpFile{}, rng: rand.New(rand.NewPCG(seed, seed+1))}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// put serves data at path, as a file of kind.
func (s *httpSources) put(path, kind string, data []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = httpFile{kind: kind, data: data, modified: time.Now().Truncate(time.Second)}
	return s.srv.URL + path
}

// setResets turns the resetting source's faults on or off.
func (s *httpSources) setResets(on bool) { s.resets.Store(on) }

func (s *httpSources) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	f, ok := s.files[r.URL.Path]
	reset := f.kind == sourceReset && s.resets.Load() && s.rng.IntN(2) == 0
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", fmt.Sprintf(`"%x-%d"`, len(f.data), f.modified.Unix()))
	var out http.ResponseWriter = w
	switch {
	case f.kind == sourceDrip:
		out = &drippingWriter{ResponseWriter: w}
	case reset:
		out = &resettingWriter{ResponseWriter: w, after: len(f.data) / 2, reset: func() { s.resetCount.Add(1) }}
	}
	http.ServeContent(out, r, "", f.modified, bytes.NewReader(f.data))
}

// drippingWriter writes in small pieces with a pause after each.
type drippingWriter struct{ http.ResponseWriter }

func (d *drippingWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n, err := d.ResponseWriter.Write(p[:min(len(p), dripChunk)])
		written += n
		if err != nil {
			return written, err
		}
		d.ResponseWriter.(http.Flusher).Flush()
		p = p[n:]
		time.Sleep(dripPause)
	}
	return written, nil
}

// resettingWriter sends the first after bytes of the body, then resets
// the connection (RST, not a clean close), as a broken proxy does.
type resettingWriter struct {
	http.ResponseWriter
	after int
	sent  int
	reset func()
}

func (rw *resettingWriter) Write(p []byte) (int, error) {
	if rw.sent+len(p) <= rw.after {
		n, err := rw.ResponseWriter.Write(p)
		rw.sent += n
		return n, err
	}
	n, _ := rw.ResponseWriter.Write(p[:rw.after-rw.sent])
	rw.sent += n
	rw.ResponseWriter.(http.Flusher).Flush()
	conn, _, err := http.NewResponseController(rw.ResponseWriter).Hijack()
	if err == nil {
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0)
		}
		_ = conn.Close()
		rw.reset()
	}
	return n, http.ErrAbortHandler
}
