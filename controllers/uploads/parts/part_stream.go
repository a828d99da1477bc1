package parts

import (
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sync/errgroup"

	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// streamParts sends the missing parts of a chunk whose uploaded bytes are
// made as it is read (hashed lines): the chunk is read again from its
// start, in order, and cut into parts. Acknowledged parts are read, to
// make the next ones, but not sent. The part that ends the chunk comes
// with the check that the chunk still hashes to its digest, so a file that
// changed never has its last part sent (and is never merged).
func (p *Uploader) streamParts(ctx context.Context, g *errgroup.Group) error {
	r, err := p.Stream(ctx)
	if err != nil {
		return classify.Source(err)
	}
	defer r.Close()
	for part := int64(1); part <= p.Upload.PartCount; part++ {
		if err := p.mayGoOn(ctx); err != nil {
			return err
		}
		buf, release, err := p.readPart(ctx, r, part)
		if err != nil {
			return err
		}
		if p.Progress.has(part) {
			release()
			continue
		}
		g.Go(func() error {
			defer release()
			return withRetries(ctx, p.Backoff, func() error { return p.deliver(ctx, part, buf) })
		})
	}
	return nil
}

// readPart reads the next part of the stream into memory taken from the
// budgets; release gives the memory back.
func (p *Uploader) readPart(ctx context.Context, r interface{ ReadPart([]byte) (int, error) }, part int64) ([]byte, func(), error) {
	_, size := wechatpay.PartBounds(p.Upload.Size, p.Upload.PartSize, int(part))
	release, err := takeMemory(ctx, p.NsMemory, p.Memory, size)
	if err != nil {
		return nil, nil, err
	}
	buf := make([]byte, size)
	n, err := r.ReadPart(buf)
	if err == nil && int64(n) != size {
		err = fmt.Errorf("part %d: %d of %d bytes: %w", part, n, size, io.ErrUnexpectedEOF)
	}
	if err != nil && !(errors.Is(err, io.EOF) && int64(n) == size) {
		release()
		return nil, nil, classify.Source(fmt.Errorf("read part %d of the chunk again: %w", part, err))
	}
	return buf, release, nil
}
