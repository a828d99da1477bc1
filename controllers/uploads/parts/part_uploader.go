package parts

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
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
)

// Uploader sends the missing parts of one upload: the parts of its
// chunk, [upload.Start, upload.End) of the file.
type Uploader struct {
	WeChat  wechatpay.API
	Source  source.Source
	Version source.Version // the digested version, which every part is read from
	Upload  upv1.UploadStatus
	// Stream, when set, makes the chunk's uploaded bytes (hashed lines),
	// which are read in order rather than by ranged reads of the file.
	Stream   func(context.Context) (*source.ChunkReader, error)
	Memory   *semaphore.Weighted // bytes of parts held at once, by the whole manager
	NsMemory *semaphore.Weighted // bytes of parts held at once, by the object's namespace
	Progress *Progress
	Backoff  time.Duration // the first wait before a part is tried again
}

// Run sends the missing parts. When all are acknowledged, the last of them
// are left in the object for the caller's next write; when not, what was
// acknowledged is written before run returns.
func (p *Uploader) Run(ctx context.Context, concurrency int) error {
	stopPersisting := p.Progress.persistEvery(ctx, progressInterval)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	var err error
	if p.Stream != nil {
		err = p.streamParts(gctx, g)
	} else {
		p.readParts(gctx, g)
	}
	// A failed send cancels gctx, which stops the stream: the send's error
	// is the one to report.
	err = cmp.Or(g.Wait(), err)
	if err == nil && len(p.Progress.missing()) > 0 {
		err = fmt.Errorf("stopped with parts left to send: %w", context.Cause(ctx))
	}
	if err == nil {
		_ = stopPersisting(false)
		p.Progress.settle()
		return nil
	}
	if flushErr := stopPersisting(true); flushErr != nil {
		err = errors.Join(err, flushErr)
	}
	return err
}

// readParts sends each missing part, read by a ranged read, in g.
func (p *Uploader) readParts(ctx context.Context, g *errgroup.Group) {
	for _, part := range p.Progress.missing() {
		g.Go(func() error {
			if err := p.mayGoOn(ctx); err != nil {
				return err
			}
			return withRetries(ctx, p.Backoff, func() error { return p.send(ctx, part) })
		})
	}
}

// mayGoOn says whether another part may be sent: not once the reconcile
// stops, nor once acknowledgements cannot be written.
func (p *Uploader) mayGoOn(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return p.Progress.writeError()
}

// withRetries tries a part a few times, so that one transient failure
// among thousands of parts does not back the whole upload off. A long
// Retry-After is left to the reconcile's own requeue.
func withRetries(ctx context.Context, backoff time.Duration, send func() error) error {
	for try := 0; ; try++ {
		err := send()
		var rt *classify.RetryError
		if !errors.As(err, &rt) || try == partAttempts-1 || rt.After > maxPartRetryWait {
			return err
		}
		delay := max(rt.After, backoff<<try)
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
func (p *Uploader) send(ctx context.Context, part int64) error {
	offset, size := wechatpay.PartBounds(p.Upload.Size, p.Upload.PartSize, int(part))
	offset += p.Upload.Start
	body, err := p.Source.OpenRange(ctx, p.Version, offset, size)
	if err != nil {
		return classify.Source(err)
	}
	defer body.Close()
	release, err := takeMemory(ctx, p.NsMemory, p.Memory, size)
	if err != nil {
		return err
	}
	defer release()
	buf := make([]byte, size)
	if _, err := io.ReadFull(body, buf); err != nil {
		return classify.Source(fmt.Errorf("read the part at byte %d: %w", offset, err))
	}
	return p.deliver(ctx, part, buf)
}

// deliver uploads one part held in buf.
func (p *Uploader) deliver(ctx context.Context, part int64, buf []byte) error {
	sum := sha256.Sum256(buf)
	// A part on its way is not cancelled by a stopping manager: the answer
	// is awaited (the call has its own timeout) and recorded by the last
	// write of progress, so that no acknowledged part is sent again.
	_, err := p.WeChat.UploadPart(context.WithoutCancel(ctx), wechatpay.Part{
		UploadID: p.Upload.ID,
		Number:   int(part),
		Filename: p.Upload.Filename,
		Size:     int64(len(buf)),
		Digest:   hex.EncodeToString(sum[:]),
		Open:     func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil },
	})
	if err != nil {
		return classify.WeChatPay(err)
	}
	p.Progress.ack(part)
	return nil
}

// takeMemory takes size bytes of the namespace's share and of the
// manager's part memory budget; release gives both back.
func takeMemory(ctx context.Context, namespace, manager *semaphore.Weighted, size int64) (release func(), err error) {
	if err := namespace.Acquire(ctx, size); err != nil {
		return nil, fmt.Errorf("wait for part memory: %w", err)
	}
	if err := manager.Acquire(ctx, size); err != nil {
		namespace.Release(size)
		return nil, fmt.Errorf("wait for part memory: %w", err)
	}
	return func() { manager.Release(size); namespace.Release(size) }, nil
}
