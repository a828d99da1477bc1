package controllers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	v1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

const (
	// progressInterval is how often acknowledged parts are written to status
	// while an upload runs (and once more when it stops).
	progressInterval = time.Second
	// partAttempts bounds the tries of one part within a reconcile before
	// the reconcile backs off as a whole.
	partAttempts = 3
)

// flushBackoff bounds the last write of progress when the API server is
// unreachable: about 25 s in all, within a manager's graceful stop.
var flushBackoff = wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 7}

// reconcileParts sends every part WeChat Pay has not acknowledged yet, at
// most PartConcurrency at a time. Each part is read with a ranged GET
// pinned to the digested version, digested and sent; acknowledgements are
// written to status as they come, so that a restart goes on where it
// stopped and never sends an acknowledged part again. Sets PartsUploaded.
func (r *UserPackageUploadReconciler) reconcileParts(ctx context.Context, u *v1.UserPackageUpload, a *attempt) error {
	if !u.Spec.WantsParts() {
		removeCondition(u, v1.ConditionPartsUploaded)
		return nil
	}
	up := u.Status.Upload
	if err := checkPlan(up, u.Status.Source.Size); err != nil {
		return failCondition(u, v1.ConditionPartsUploaded, err)
	}
	acked, err := decodePartSet(up.PartsAcked, up.PartCount)
	if err != nil {
		return failCondition(u, v1.ConditionPartsUploaded, stall(v1.ReasonInvalidSpec, "%v", err))
	}
	if acked.count() < up.PartCount {
		if err := r.uploadParts(ctx, u, a, acked); err != nil {
			return failCondition(u, v1.ConditionPartsUploaded, err)
		}
		r.event(u, corev1.EventTypeNormal, v1.ReasonPartsUploaded, partsMessage(u.Status.Upload))
	}
	setCondition(u, v1.ConditionPartsUploaded, metav1.ConditionTrue, v1.ReasonPartsUploaded, partsMessage(u.Status.Upload))
	return nil
}

func partsMessage(up *v1.UploadStatus) string {
	return fmt.Sprintf("all %d parts acknowledged (%d bytes)", up.PartCount, up.BytesDone)
}

// checkPlan refuses a part plan that cannot describe the file, rather than
// sending parts that WeChat Pay would refuse one by one.
func checkPlan(up *v1.UploadStatus, size int64) error {
	if up.PartSize <= 0 || up.PartSize > wechatpay.MaxPartSize || up.PartCount != (size+up.PartSize-1)/up.PartSize {
		return stall(v1.ReasonWeChatPayRejected,
			"initiate upload answered a part plan of %d parts of %d bytes, which does not fit the file's %d bytes; change the spec (e.g. spec.file.filename) to start a new upload",
			up.PartCount, up.PartSize, size)
	}
	return nil
}

func (r *UserPackageUploadReconciler) uploadParts(ctx context.Context, u *v1.UserPackageUpload, a *attempt, acked *partSet) error {
	src, err := a.sourceFor(ctx, r, u)
	if err != nil {
		return err
	}
	wc, err := a.clientFor(ctx, r, u)
	if err != nil {
		return err
	}
	setCondition(u, v1.ConditionPartsUploaded, metav1.ConditionFalse, v1.ReasonProgressing,
		fmt.Sprintf("uploading %d parts", u.Status.Upload.PartCount))
	// A stale set of acknowledged parts would resend parts.
	if err := a.status.ensureCurrent(ctx, u); err != nil {
		return err
	}
	up := u.Status.Upload
	p := &partUploader{
		wechat:   wc,
		source:   src,
		version:  pinnedVersion(u.Status.Source),
		upload:   *up,
		progress: &progress{u: u, status: a.status, acked: acked, journal: &r.acks},
		backoff:  r.RetryBaseDelay,
	}
	p.progress.recall()
	if err := p.run(ctx, r.PartConcurrency); err != nil {
		return err
	}
	r.acks.forget(up.ID)
	return nil
}

// partUploader sends the missing parts of one upload.
type partUploader struct {
	wechat   wechatpay.API
	source   source.Source
	version  source.Version
	upload   v1.UploadStatus
	progress *progress
	backoff  time.Duration
}

// partBuffers keeps part buffers between uploads. A part is held whole (its
// digest goes into the signed meta that precedes its bytes), so memory is
// bounded by the parts in flight times their size, whatever the file size.
var partBuffers sync.Pool

// partBuffer returns a buffer of size bytes, reusing one when it is big enough.
func partBuffer(size int64) []byte {
	if b, ok := partBuffers.Get().(*[]byte); ok && int64(cap(*b)) >= size {
		return (*b)[:size]
	}
	return make([]byte, size)
}

func (p *partUploader) run(ctx context.Context, concurrency int) error {
	stopPersisting := p.progress.persistEvery(ctx, progressInterval)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for _, part := range p.progress.missing() {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			// Send no more parts once their acknowledgement cannot be written.
			if err := p.progress.writeError(); err != nil {
				return err
			}
			return p.sendWithRetries(gctx, part)
		})
	}
	err := g.Wait()
	if flushErr := stopPersisting(); flushErr != nil && err == nil {
		err = flushErr
	}
	return err
}

// sendWithRetries tries a part a few times, so that one transient failure
// among thousands of parts does not back the whole upload off.
func (p *partUploader) sendWithRetries(ctx context.Context, part int64) error {
	var err error
	for try := range partAttempts {
		if err = p.send(ctx, part); err == nil || !isRetry(err) {
			return err
		}
		delay := p.backoff << try
		var rt *retryError
		if errors.As(err, &rt) && rt.after > 0 {
			delay = rt.after
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
	return err
}

// send reads, digests and uploads one part.
func (p *partUploader) send(ctx context.Context, part int64) error {
	offset, size := wechatpay.PartBounds(p.version.Size, p.upload.PartSize, int(part))
	buf := partBuffer(size)
	defer partBuffers.Put(&buf)
	if err := p.read(ctx, offset, buf); err != nil {
		return sourceError(err)
	}
	sum := sha256.Sum256(buf)
	// A part on its way is not cancelled by a stopping manager: the answer
	// is awaited (the call has its own timeout) and recorded by the last
	// write of progress, so that no acknowledged part is sent again.
	_, err := p.wechat.UploadPart(context.WithoutCancel(ctx), wechatpay.Part{
		UploadID: p.upload.ID,
		Number:   int(part),
		Filename: p.upload.Filename,
		Size:     size,
		Digest:   hex.EncodeToString(sum[:]),
		Open:     func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil },
	})
	if err != nil {
		return weChatPayError(err)
	}
	p.progress.ack(part, size)
	return nil
}

func (p *partUploader) read(ctx context.Context, offset int64, buf []byte) error {
	body, err := p.source.OpenRange(ctx, p.version, offset, int64(len(buf)))
	if err != nil {
		return err
	}
	defer body.Close()
	if _, err := io.ReadFull(body, buf); err != nil {
		return fmt.Errorf("read %d bytes at %d: %w", len(buf), offset, err)
	}
	return nil
}

func isRetry(err error) bool {
	var rt *retryError
	return errors.As(err, &rt)
}

// progress collects acknowledgements from the part senders and writes them
// to status, by itself, so that the object is written by one goroutine.
type progress struct {
	mu       sync.Mutex
	u        *v1.UserPackageUpload
	status   *statusWriter
	acked    *partSet
	journal  *ackJournal
	dirty    bool
	writeErr error // the last write's error, nil once a write succeeds
}

// recall counts the parts acknowledged in an earlier reconcile of this
// process whose acknowledgement never reached status.
func (p *progress) recall() {
	up := p.u.Status.Upload
	for _, part := range p.journal.parts(up.ID) {
		if !p.acked.has(part) {
			_, size := wechatpay.PartBounds(p.u.Status.Source.Size, up.PartSize, int(part))
			p.ack(part, size)
		}
	}
}

func (p *progress) writeError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writeErr
}

// missing lists the parts not acknowledged yet.
func (p *progress) missing() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked.missing()
}

// ack counts an acknowledged part.
func (p *progress) ack(part, size int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	up := p.u.Status.Upload
	p.acked.add(part)
	p.journal.add(up.ID, part)
	up.PartsAcked = p.acked.encode()
	up.PartsDone++
	up.BytesDone += size
	setProgress(up)
	p.dirty = true
}

// persistEvery writes progress every interval until the returned function
// is called; that one writes what is left and reports the last error. The
// last write outlives ctx: acknowledged parts must not be forgotten because
// the manager is stopping.
func (p *progress) persistEvery(ctx context.Context, interval time.Duration) (stop func() error) {
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
	return func() error {
		close(done)
		<-finished
		flushCtx := context.WithoutCancel(ctx)
		var err error
		_ = wait.ExponentialBackoffWithContext(flushCtx, flushBackoff, func(ctx context.Context) (bool, error) {
			err = p.persist(ctx)
			return err == nil, nil
		})
		return err
	}
}

func (p *progress) persist(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.dirty {
		return nil
	}
	if err := p.status.patch(ctx, p.u); err != nil {
		p.writeErr = retry(v1.ReasonAPIServerUnavailable, 0, "record acknowledged parts: %v; retrying", err)
		return err
	}
	p.dirty, p.writeErr = false, nil
	return nil
}

// ackJournal remembers, in memory, the parts acknowledged by WeChat Pay,
// by upload: when status cannot be written (the API server is down), the
// next reconcile of this process still knows not to send them again.
type ackJournal struct {
	mu      sync.Mutex
	uploads map[string][]int64
}

func (j *ackJournal) add(uploadID string, part int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.uploads == nil {
		j.uploads = map[string][]int64{}
	}
	j.uploads[uploadID] = append(j.uploads[uploadID], part)
}

func (j *ackJournal) parts(uploadID string) []int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]int64(nil), j.uploads[uploadID]...)
}

// forget drops an upload whose every acknowledgement is in status.
func (j *ackJournal) forget(uploadID string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.uploads, uploadID)
}
