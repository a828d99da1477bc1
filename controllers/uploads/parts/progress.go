package parts

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/controllers/statuswriter"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// Progress collects acknowledgements from the part senders; one goroutine
// at a time writes them to status (the ticker's, then the final flush), and
// only that goroutine touches the object.
type Progress struct {
	u        *upv1.UserPackageUpload
	chunk    int // the position of the upload in status.uploads
	status   *statuswriter.Writer
	remember func(part int64) // keeps an acknowledgement beyond this reconcile
	// summarize brings what status says of the whole object up to date
	// before a write.
	summarize func(*upv1.UserPackageUpload)

	mu       sync.Mutex
	acked    *Set
	dirty    bool
	writeErr error // the last write's error, nil once a write succeeds
}

// NewProgress is the progress of the upload at position chunk of
// u.Status.Uploads, acked already acknowledged. Outcomes the writer holds
// unwritten go with the first progress write.
func NewProgress(u *upv1.UserPackageUpload, chunk int, w *statuswriter.Writer, acked *Set,
	remember func(part int64), summarize func(*upv1.UserPackageUpload)) *Progress {
	return &Progress{u: u, chunk: chunk, status: w, acked: acked, remember: remember, summarize: summarize, dirty: w.Unsaved()}
}

// Recall counts parts acknowledged in an earlier reconcile of this process
// whose acknowledgement never reached status.
func (p *Progress) Recall(parts []int64) {
	for _, part := range parts {
		if !p.acked.Has(part) {
			p.acked.Add(part)
			p.dirty = true
		}
	}
}

func (p *Progress) missing() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked.Missing()
}

func (p *Progress) has(part int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked.Has(part)
}

func (p *Progress) writeError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writeErr
}

// ack counts an acknowledged part.
func (p *Progress) ack(part int64) {
	p.remember(part)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.acked.Add(part)
	p.dirty = true
}

// persistEvery writes progress every interval until the returned function
// is called; that one, asked to flush, writes what is left and reports the
// last error. The flush outlives ctx and retries for a while: acknowledged
// parts must not be forgotten because the manager is stopping or the API
// server blinks.
func (p *Progress) persistEvery(ctx context.Context, interval time.Duration) (stop func(flush bool) error) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				_ = p.persist(ctx)
			}
		}
	}()
	return func(flush bool) error {
		close(done)
		<-finished
		if !flush {
			return nil
		}
		var err error
		_ = wait.ExponentialBackoffWithContext(context.WithoutCancel(ctx), statuswriter.Backoff, func(ctx context.Context) (bool, error) {
			err = p.persist(ctx)
			return err == nil, nil
		})
		return err
	}
}

// settle puts every acknowledged part into the object, unwritten; the
// senders have stopped.
func (p *Progress) settle() {
	SetDone(&p.u.Status.Uploads[p.chunk], p.acked)
}

// persist writes the acknowledged parts to status. The senders go on
// meanwhile: the lock is held to copy the set, not during the write.
func (p *Progress) persist(ctx context.Context) error {
	p.mu.Lock()
	if !p.dirty {
		p.mu.Unlock()
		return nil
	}
	acked := p.acked.clone()
	p.dirty = false
	p.mu.Unlock()

	SetDone(&p.u.Status.Uploads[p.chunk], acked)
	p.summarize(p.u)
	err := p.status.Patch(ctx, p.u)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.dirty = true
		p.writeErr = classify.Retry(upv1.ReasonAPIServerUnavailable, 0, "record acknowledged parts: %v; retrying", err)
		return err
	}
	p.writeErr = nil
	return nil
}

// SetDone writes the set of acknowledged parts into status, with the
// counts derived from it. The parts cut the upload's chunk, of up.Size
// bytes. Once every part is acknowledged the bitmap says nothing more
// than the counts, and is dropped: status stays small for many chunks.
func SetDone(up *upv1.UploadStatus, acked *Set) {
	up.PartsAcked = acked.Encode()
	up.PartsDone = acked.Count()
	up.BytesDone = 0
	for part := int64(1); part <= up.PartCount; part++ {
		if acked.Has(part) {
			_, size := wechatpay.PartBounds(up.Size, up.PartSize, int(part))
			up.BytesDone += size
		}
	}
	if Done(up) {
		up.PartsAcked = ""
	}
	SetProgress(up)
}

// Done reports whether WeChat Pay acknowledged every part of an upload.
func Done(up *upv1.UploadStatus) bool {
	return up.PartCount > 0 && up.PartsDone == up.PartCount
}

// SetProgress keeps the human-readable parts column in step with the counters.
func SetProgress(up *upv1.UploadStatus) {
	if up.PartCount > 0 {
		up.Progress = fmt.Sprintf("%d/%d", up.PartsDone, up.PartCount)
	}
}
