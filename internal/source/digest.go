package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sync"
	"sync/atomic"

	"github.com/crowdpack/crowdpack/internal/linecheck"
)

// A digest streams through a small ring of fixed buffers, so memory stays
// flat whatever the size of the file: one goroutine reads into a free
// buffer while the SHA-256 and the line checks, each in a goroutine of its
// own, consume the buffers read before (DigestChunks: the cutter, which
// hashes the uploads, and the file's SHA-256 where it is not the one
// upload's, see cutter.hashesFile); a buffer is free again once every
// consumer is done with it. Reading, hashing and checking thus overlap.
const (
	digestBufferSize = 256 << 10
	digestBuffers    = 4
)

// Result describes one version of a file, read once.
type Result struct {
	Version Version
	// Digest is the SHA-256 of the file, 64 lowercase hex characters.
	Digest string
	// Report holds the line checks; it is zero when no checker was given.
	// With hashing it is the hashing's report on the raw lines.
	Report linecheck.Report
	// Chunks are the uploads the file is cut into; only DigestChunks sets it.
	Chunks []Chunk
}

// Digest streams the current version of src once through SHA-256 and check
// (which may be nil). It fails if fewer or more bytes arrive than the
// version's size, since the digest would then describe no version at all.
// The body src opens must end a blocked read when ctx ends (an HTTP body
// does): that is how cancellation stops the reading goroutine.
func Digest(ctx context.Context, src Source, check *linecheck.Checker) (Result, error) {
	var sinks []io.Writer
	if check != nil {
		sinks = append(sinks, check)
	}
	result, err := digestWith(ctx, src, sinks, true)
	if err == nil && check != nil {
		result.Report = check.Report()
	}
	return result, err
}

// DigestChunks is Digest that also cuts the file into the chunks opts asks
// for, in the same single read, and records each chunk's uploaded lines,
// size and SHA-256 (see Chunk). With opts.HashMD5 the hashing checks the
// lines and check is not used: raw numbers would all fail the Phone check.
// With opts.SkipHeaderRow, check leaves line 1 out.
func DigestChunks(ctx context.Context, src Source, check *linecheck.Checker, opts SplitOptions) (Result, error) {
	if opts.HashMD5 {
		check = nil
	}
	cut := newCutter(opts)
	sinks := []io.Writer{cut}
	files := &fileHasher{}
	if cut.hashesFile {
		// The cutter's word to the fileHasher never blocks: one a buffer.
		handoff := make(chan hash.Hash, digestBuffers)
		cut.handoff, files.handoff = handoff, handoff
		sinks = append(sinks, files)
	}
	if check != nil {
		if opts.SkipHeaderRow {
			check.SkipHeaderRow()
		}
		sinks = append(sinks, checkFor(check, cut))
	}
	// Without header row and hashing the uploads are the file's bytes: the
	// cutter and the fileHasher take the file's SHA-256 (see
	// cutter.hashesFile), and a file of one upload is hashed once.
	result, err := digestWith(ctx, src, sinks, !cut.hashesFile)
	if err != nil {
		return Result{}, err
	}
	result.Chunks, result.Report = cut.finish()
	if digest, ok, err := cut.fileDigest(files, result.Version.Size); err != nil {
		return Result{}, err
	} else if ok {
		result.Digest = digest
	}
	if check != nil {
		result.Report = check.Report()
	}
	return result, nil
}

// digestWith streams the current version of src once through sinks and,
// with hashFile, SHA-256, and returns the version and the digest (empty
// without hashFile: then a sink takes it).
func digestWith(ctx context.Context, src Source, sinks []io.Writer, hashFile bool) (Result, error) {
	body, v, err := src.Open(ctx)
	if err != nil {
		return Result{}, err
	}
	defer body.Close()

	var fileHash hash.Hash
	if hashFile {
		fileHash = sha256.New()
		sinks = append([]io.Writer{fileHash}, sinks...)
	}
	n, err := fanOut(ctx, body, sinks)
	if err != nil {
		return Result{}, fmt.Errorf("read the object: %w", err)
	}
	switch {
	case v.Size == UnknownSize:
		v.Size = n
	case n != v.Size:
		return Result{}, fmt.Errorf("torn read: the object did not yield its %d bytes", v.Size)
	}
	result := Result{Version: v}
	if fileHash != nil {
		result.Digest = hex.EncodeToString(fileHash.Sum(nil))
	}
	return result, nil
}

// chunk is one buffer of the ring with the bytes read into it.
type chunk struct {
	buf     []byte
	n       int
	pending atomic.Int32 // sinks yet to consume it
}

// fanOut reads r to its end in the calling goroutine and writes every byte,
// in order, to each sink in a goroutine per sink. The sinks must not fail
// (a hash and a line checker never do). It returns the bytes read, and only
// after every sink goroutine has ended, whether r ended, failed or ctx did.
func fanOut(ctx context.Context, r io.Reader, sinks []io.Writer) (int64, error) {
	// At most digestBuffers chunks exist, so sending to any of these
	// channels never blocks.
	free := make(chan *chunk, digestBuffers)
	for range digestBuffers {
		free <- chunks.Get().(*chunk)
	}
	defer recycle(free)
	queues := make([]chan *chunk, len(sinks))
	var wg sync.WaitGroup
	for i, sink := range sinks {
		queues[i] = make(chan *chunk, digestBuffers)
		wg.Go(func() { consumeChunks(queues[i], sink, free) })
	}
	n, err := fillChunks(ctx, r, free, queues)
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	return n, err
}

// chunks are the digests' buffers between digests: a fresh ring for each
// digest was a third of all the bytes the manager allocated in the load
// test (10,000 small files), and garbage the collector had to keep up with.
var chunks = sync.Pool{New: func() any { return &chunk{buf: make([]byte, digestBufferSize)} }}

// recycle gives the chunks back once fanOut is done with them: every sink
// goroutine has ended, so the ones in free are all that no one uses (a
// chunk the reader held when it stopped is left to the collector).
func recycle(free chan *chunk) {
	for {
		select {
		case c := <-free:
			c.n = 0
			chunks.Put(c)
		default:
			return
		}
	}
}

// fillChunks reads r into free chunks and hands each to every queue.
func fillChunks(ctx context.Context, r io.Reader, free <-chan *chunk, queues []chan *chunk) (int64, error) {
	var total int64
	for {
		var c *chunk
		select {
		case <-ctx.Done():
		case c = <-free:
		}
		// Both cases may be ready at once; a cancelled digest reads no more.
		if ctx.Err() != nil {
			return total, context.Cause(ctx)
		}
		n, err := io.ReadFull(r, c.buf)
		total += int64(n)
		if n > 0 {
			c.n = n
			c.pending.Store(int32(len(queues)))
			for _, q := range queues {
				q <- c
			}
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return total, nil
		default:
			return total, err
		}
	}
}

// consumeChunks writes each chunk of queue to sink and frees the chunk once
// the last sink is done with it.
func consumeChunks(queue <-chan *chunk, sink io.Writer, free chan<- *chunk) {
	for c := range queue {
		_, _ = sink.Write(c.buf[:c.n]) // a hash or a line checker: never fails
		if c.pending.Add(-1) == 0 {
			free <- c
		}
	}
}

// checkFor returns the digest's sink that runs check. For Phone it also
// tells cut, buffer by buffer, where the valid phone lines are (see
// cutter.skipCheckedLines): one scan of the bytes, in the checker's
// goroutine, serves both, and the cutter's goroutine is left the hashing.
func checkFor(check *linecheck.Checker, cut *cutter) io.Writer {
	if check.DataType() != linecheck.Phone {
		return check
	}
	// The checker is never more than digestBuffers buffers ahead of the
	// cutter (a buffer is free again only once both are done with it), so
	// sending to checked never blocks.
	checked := make(chan []linecheck.Run, digestBuffers)
	cut.checked = checked
	return &runChecker{check: check, checked: checked}
}

// runChecker checks each buffer and hands the runs of valid phone lines it
// found to the cutter.
type runChecker struct {
	check   *linecheck.Checker
	checked chan<- []linecheck.Run
}

func (r *runChecker) Write(p []byte) (int, error) {
	r.checked <- r.check.WriteRuns(p, nil)
	return len(p), nil
}
