package source

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// watchedBody fails a read that idles, drips or overruns: a source that
// sends one byte a second would otherwise hold a worker (and the part
// memory it reads into) for as long as it likes. A failure is transient:
// the object is retried with backoff.
type watchedBody struct {
	body      io.ReadCloser
	name      string
	guard     *Guard
	remaining int64 // bytes announced and not read yet
	now       func() time.Time

	mu          sync.Mutex
	started     bool
	idle        *time.Timer
	failure     error // set when the idle timer closed the body
	windowStart time.Time
	windowBytes int64
}

// watch wraps body, which announced size bytes, in the guard's limits.
// The clocks start at the first Read, so time the caller spends before
// reading (waiting for part memory) is not counted against the source.
func (g *Guard) watch(body io.ReadCloser, name string, size int64) io.ReadCloser {
	if g == nil {
		return body
	}
	return &watchedBody{body: body, name: name, guard: g, remaining: size, now: time.Now}
}

// start starts the clocks, once.
func (w *watchedBody) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return
	}
	w.started = true
	w.windowStart = w.now()
	if w.guard.IdleTimeout > 0 {
		w.idle = time.AfterFunc(w.guard.IdleTimeout, w.idled)
	}
}

func (w *watchedBody) idled() {
	w.mu.Lock()
	w.failure = fmt.Errorf("read %s: %w: no byte arrived for %s (--source-idle-timeout)", w.name, ErrTooSlow, w.guard.IdleTimeout)
	w.mu.Unlock()
	w.body.Close()
}

func (w *watchedBody) Read(p []byte) (int, error) {
	w.start()
	n, err := w.body.Read(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failure != nil {
		return n, w.failure
	}
	if n > 0 && w.idle != nil {
		w.idle.Reset(w.guard.IdleTimeout)
	}
	w.remaining -= int64(n)
	if w.remaining < 0 {
		return n, fmt.Errorf("read %s: the source sent more bytes than it announced", w.name)
	}
	if err := w.checkRate(int64(n)); err != nil {
		return n, err
	}
	return n, err
}

// checkRate counts n bytes into the current window and, when the window
// is over, fails if it was slower than the minimum rate.
func (w *watchedBody) checkRate(n int64) error {
	g := w.guard
	if g.MinRate <= 0 || g.RateWindow <= 0 {
		return nil
	}
	w.windowBytes += n
	elapsed := w.now().Sub(w.windowStart)
	if elapsed < g.RateWindow {
		return nil
	}
	rate := float64(w.windowBytes) / elapsed.Seconds()
	if rate < float64(g.MinRate) {
		return fmt.Errorf("read %s: %w: %s/s over the last %s, below the %s/s the manager requires (--source-min-rate)",
			w.name, ErrTooSlow, byteSize(int64(rate)), g.RateWindow.Round(time.Second), byteSize(g.MinRate))
	}
	w.windowStart, w.windowBytes = w.now(), 0
	return nil
}

func (w *watchedBody) Close() error {
	w.mu.Lock()
	if w.idle != nil {
		w.idle.Stop()
	}
	w.mu.Unlock()
	return w.body.Close()
}

// byteSize writes n bytes in the largest binary unit that keeps it whole
// enough to read: 12 B, 63 KiB, 5 MiB.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
