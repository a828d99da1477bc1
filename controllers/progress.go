package controllers

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// progress collects acknowledgements from the part senders; one goroutine
// at a time writes them to status (the ticker's, then the final flush), and
// only that goroutine touches the object.
type progress struct {
	u        *upv1.UserPackageUpload
	chunk    int // the position of the upload in status.uploads
	status   *statusWriter
	remember func(part int64) // keeps an acknowledgement beyond this reconcile

	mu       sync.Mutex
	acked    *partSet
	dirty    bool
	writeErr error // the last write's error, nil once a write succeeds
}

// recall counts parts acknowledged in an earlier reconcile of this process
// whose acknowledgement never reached status.
func (p *progress) recall(parts []int64) {
	for _, part := range parts {
		if !p.acked.has(part) {
			p.acked.add(part)
			p.dirty = true
		}
	}
}

func (p *progress) missing() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked.missing()
}

func (p *progress) has(part int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked.has(part)
}

func (p *progress) writeError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writeErr
}

// ack counts an acknowledged part.
func (p *progress) ack(part int64) {
	p.remember(part)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.acked.add(part)
	p.dirty = true
}

// persistEvery writes progress every interval until the returned function
// is called; that one, asked to flush, writes what is left and reports the
// last error. The flush outlives ctx and retries for a while: acknowledged
// parts must not be forgotten because the manager is stopping or the API
// server blinks.
func (p *progress) persistEvery(ctx context.Context, interval time.Duration) (stop func(flush bool) error) {
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
		_ = wait.ExponentialBackoffWithContext(context.WithoutCancel(ctx), outcomeBackoff, func(ctx context.Context) (bool, error) {
			err = p.persist(ctx)
			return err == nil, nil
		})
		return err
	}
}

// settle puts every acknowledged part into the object, unwritten; the
// senders have stopped.
func (p *progress) settle() {
	setPartsDone(&p.u.Status.Uploads[p.chunk], p.acked)
}

// persist writes the acknowledged parts to status. The senders go on
// meanwhile: the lock is held to copy the set, not during the write.
func (p *progress) persist(ctx context.Context) error {
	p.mu.Lock()
	if !p.dirty {
		p.mu.Unlock()
		return nil
	}
	acked := p.acked.clone()
	p.dirty = false
	p.mu.Unlock()

	setPartsDone(&p.u.Status.Uploads[p.chunk], acked)
	setSummary(p.u)
	err := p.status.patch(ctx, p.u)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.dirty = true
		p.writeErr = retry(upv1.ReasonAPIServerUnavailable, 0, "record acknowledged parts: %v; retrying", err)
		return err
	}
	p.writeErr = nil
	return nil
}

// setPartsDone writes the set of acknowledged parts into status, with the
// counts derived from it. The parts cut the upload's chunk, of up.Size
// bytes. Once every part is acknowledged the bitmap says nothing more
// than the counts, and is dropped: status stays small for many chunks.
func setPartsDone(up *upv1.UploadStatus, acked *partSet) {
	up.PartsAcked = acked.encode()
	up.PartsDone = acked.count()
	up.BytesDone = 0
	for part := int64(1); part <= up.PartCount; part++ {
		if acked.has(part) {
			_, size := wechatpay.PartBounds(up.Size, up.PartSize, int(part))
			up.BytesDone += size
		}
	}
	if partsDone(up) {
		up.PartsAcked = ""
	}
	setProgress(up)
}
