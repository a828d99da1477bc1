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
	"golang.org/x/sync/semaphore"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
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
	// maxPartRetryWait is the longest Retry-After waited for in place; a
	// longer one ends the reconcile, which requeues after it.
	maxPartRetryWait = 10 * time.Second
	// maxPartCount bounds the parts of one upload: the set of acknowledged
	// parts is allocated from it, so a plan edited into status must not
	// make the manager allocate at will.
	maxPartCount = 10_000
)

// reconcileParts sends every part WeChat Pay has not acknowledged yet, at
// most PartConcurrency at a time. Each part is read with a ranged GET
// pinned to the digested version, digested and sent; acknowledgements are
// written to status as they come, so that a restart goes on where it
// stopped and never sends an acknowledged part again. Sets PartsUploaded.
func (r *UserPackageUploadReconciler) reconcileParts(ctx context.Context, u *upv1.UserPackageUpload, a *attempt) error {
	if !u.Spec.WantsParts() {
		removeCondition(u, upv1.ConditionPartsUploaded)
		return nil
	}
	up := u.Status.Upload
	if err := checkPlan(up, u.Status.Source.Size); err != nil {
		return failCondition(u, upv1.ConditionPartsUploaded, err)
	}
	acked, err := decodePartSet(up.PartsAcked, up.PartCount)
	if err != nil {
		return failCondition(u, upv1.ConditionPartsUploaded, stall(upv1.ReasonInvalidSpec, "%v", err))
	}
	if acked.count() < up.PartCount {
		if err := r.uploadParts(ctx, u, a, acked); err != nil {
			return failCondition(u, upv1.ConditionPartsUploaded, err)
		}
	}
	setCondition(u, upv1.ConditionPartsUploaded, metav1.ConditionTrue, upv1.ReasonPartsUploaded, partsMessage(u.Status.Upload))
	return nil
}

func partsMessage(up *upv1.UploadStatus) string {
	return fmt.Sprintf("all %d parts acknowledged (%d bytes)", up.PartCount, up.BytesDone)
}

// checkPlan refuses a part plan that cannot describe the file, before
// anything is allocated from it. Initiate's answer was checked when it
// came, so a bad plan here was written into status by someone else.
func checkPlan(up *upv1.UploadStatus, size int64) error {
	if up.PartSize <= 0 || up.PartSize > wechatpay.MaxPartSize || up.PartCount < 1 || up.PartCount > maxPartCount ||
		size <= 0 || up.PartCount != (size-1)/up.PartSize+1 {
		return stall(upv1.ReasonInvalidPlan,
			"status.upload holds a part plan of %d parts of %d bytes, which cannot describe the file's %d bytes (at most %d parts of at most %d bytes); "+
				"it was not acted upon. Change the spec (e.g. spec.file.filename) to start a new upload",
			up.PartCount, up.PartSize, size, maxPartCount, wechatpay.MaxPartSize)
	}
	return nil
}

func (r *UserPackageUploadReconciler) uploadParts(ctx context.Context, u *upv1.UserPackageUpload, a *attempt, acked *partSet) error {
	src, err := a.sourceFor(ctx, r, u)
	if err != nil {
		return err
	}
	wc, err := a.clientFor(ctx, r, u)
	if err != nil {
		return err
	}
	setCondition(u, upv1.ConditionPartsUploaded, metav1.ConditionFalse, upv1.ReasonProgressing,
		fmt.Sprintf("uploading %d parts", u.Status.Upload.PartCount))
	// A stale set of acknowledged parts would resend parts.
	if err := a.status.ensureCurrent(ctx, u); err != nil {
		return err
	}
	nsMemory, err := a.readSlot(r, u)
	if err != nil {
		return err
	}
	key := client.ObjectKeyFromObject(u)
	p := &partUploader{
		wechat:   wc,
		source:   src,
		version:  pinnedVersion(u.Status.Source),
		upload:   *u.Status.Upload,
		memory:   r.partMemory,
		nsMemory: nsMemory,
		backoff:  r.RetryBaseDelay,
		progress: &progress{
			u: u, status: a.status, acked: acked,
			record: func(part int64) { r.acks.add(key, u.Status.Upload.ID, part) },
		},
	}
	p.progress.recall(r.acks.parts(key, u.Status.Upload.ID))
	if err := p.run(ctx, r.PartConcurrency); err != nil {
		return err
	}
	// The last acknowledgements ride on the next write (merge's claim).
	a.status.keep()
	a.calledWeChatPay = true
	return nil
}

// partUploader sends the missing parts of one upload.
type partUploader struct {
	wechat   wechatpay.API
	source   source.Source
	version  source.Version
	upload   upv1.UploadStatus
	memory   *semaphore.Weighted // bytes of parts held at once, by the whole manager
	nsMemory *semaphore.Weighted // bytes of parts held at once, by the object's namespace
	progress *progress
	backoff  time.Duration
}

// run sends the missing parts. When all are acknowledged, the last of them
// are left in the object for the caller's next write; when not, what was
// acknowledged is written before run returns.
func (p *partUploader) run(ctx context.Context, concurrency int) error {
	stopPersisting := p.progress.persistEvery(ctx, progressInterval)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for _, part := range p.progress.missing() {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			// Send no more parts once their acknowledgement cannot be written.
			if err := p.progress.writeError(); err != nil {
				return err
			}
			return p.sendWithRetries(gctx, part)
		})
	}
	err := g.Wait()
	if err == nil && len(p.progress.missing()) > 0 {
		err = fmt.Errorf("stopped with parts left to send: %w", context.Cause(ctx))
	}
	if err == nil {
		_ = stopPersisting(false)
		p.progress.settle()
		return nil
	}
	if flushErr := stopPersisting(true); flushErr != nil {
		err = errors.Join(err, flushErr)
	}
	return err
}

// sendWithRetries tries a part a few times, so that one transient failure
// among thousands of parts does not back the whole upload off. A long
// Retry-After is left to the reconcile's own requeue.
func (p *partUploader) sendWithRetries(ctx context.Context, part int64) error {
	for try := 0; ; try++ {
		err := p.send(ctx, part)
		var rt *retryError
		if !errors.As(err, &rt) || try == partAttempts-1 || rt.after > maxPartRetryWait {
			return err
		}
		delay := max(rt.after, p.backoff<<try)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

// send reads, digests and uploads one part. The part is held whole, because
// its digest goes into the signed meta that precedes its bytes; the
// manager-wide memory budget (and the namespace's share of it) bounds how
// many bytes are held at once. Memory is taken once the ranged read's
// response headers are in, so a source slow to answer holds none, and a
// source that then drips is cut off by the guard's minimum rate.
func (p *partUploader) send(ctx context.Context, part int64) error {
	offset, size := wechatpay.PartBounds(p.version.Size, p.upload.PartSize, int(part))
	body, err := p.source.OpenRange(ctx, p.version, offset, size)
	if err != nil {
		return sourceError(err)
	}
	defer body.Close()
	release, err := takeMemory(ctx, p.nsMemory, p.memory, size)
	if err != nil {
		return err
	}
	defer release()
	buf := make([]byte, size)
	if _, err := io.ReadFull(body, buf); err != nil {
		return sourceError(fmt.Errorf("read the part at byte %d: %w", offset, err))
	}
	sum := sha256.Sum256(buf)
	// A part on its way is not cancelled by a stopping manager: the answer
	// is awaited (the call has its own timeout) and recorded by the last
	// write of progress, so that no acknowledged part is sent again.
	_, err = p.wechat.UploadPart(context.WithoutCancel(ctx), wechatpay.Part{
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
	p.progress.ack(part)
	return nil
}

// progress collects acknowledgements from the part senders; one goroutine
// at a time writes them to status (the ticker's, then the final flush), and
// only that goroutine touches the object.
type progress struct {
	u      *upv1.UserPackageUpload
	status *statusWriter
	record func(part int64) // remembers an acknowledgement beyond this reconcile

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

func (p *progress) writeError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writeErr
}

// ack counts an acknowledged part.
func (p *progress) ack(part int64) {
	p.record(part)
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
	setPartsDone(p.u.Status.Upload, p.acked, p.u.Status.Source.Size)
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

	setPartsDone(p.u.Status.Upload, acked, p.u.Status.Source.Size)
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
// counts derived from it.
func setPartsDone(up *upv1.UploadStatus, acked *partSet, fileSize int64) {
	up.PartsAcked = acked.encode()
	up.PartsDone = acked.count()
	up.BytesDone = 0
	for part := int64(1); part <= up.PartCount; part++ {
		if acked.has(part) {
			_, size := wechatpay.PartBounds(fileSize, up.PartSize, int(part))
			up.BytesDone += size
		}
	}
	setProgress(up)
}

// ackJournal remembers, in memory, the parts WeChat Pay acknowledged for
// each object's upload: when status cannot be written (the API server is
// down), the next reconcile of this process still knows not to send them.
type ackJournal struct {
	mu      sync.Mutex
	entries map[client.ObjectKey]journalEntry
}

type journalEntry struct {
	uploadID string
	parts    map[int64]struct{}
}

func (j *ackJournal) add(key client.ObjectKey, uploadID string, part int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.entries == nil {
		j.entries = map[client.ObjectKey]journalEntry{}
	}
	e := j.entries[key]
	if e.uploadID != uploadID {
		e = journalEntry{uploadID: uploadID, parts: map[int64]struct{}{}}
		j.entries[key] = e
	}
	e.parts[part] = struct{}{}
}

// parts lists what the journal holds for the object's upload.
func (j *ackJournal) parts(key client.ObjectKey, uploadID string) []int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	e := j.entries[key]
	if e.uploadID != uploadID {
		return nil
	}
	parts := make([]int64, 0, len(e.parts))
	for part := range e.parts {
		parts = append(parts, part)
	}
	return parts
}

// forget drops an object whose acknowledgements are all in status, or
// which is gone.
func (j *ackJournal) forget(key client.ObjectKey) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.entries, key)
}
