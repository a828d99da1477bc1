// Package delta computes what a new revision of a CRM export adds to its
// base, the last revision expanded into a crowd package: the revision's
// members that the base does not have, as WeChat Pay receives them, in the
// revision's order. A sync uploads only those (WeChat Pay's expand only
// adds members) and reports the others as counts.
//
// A member is a line as WeChat Pay receives it: with MD5 hashing the MD5
// line rawphone makes of a raw number (so "+86 138-0013-8000" and
// "13800138000" are one member), otherwise the line itself without its
// line ending. Lines are compared exactly, byte for byte: an upper-case MD5
// is another member than its lower-case form. A wrong "added" only uploads a
// member again, which WeChat Pay ignores; a wrong "unchanged" would lose
// one, so nothing is folded that WeChat Pay might tell apart.
//
// Memory is bounded whatever the sizes: a computation holds at most its
// share of a Pool's budget, shared by every computation of the manager, and
// reads the two files as many times as that share needs (see Compute).
// Nothing is written to disk, and no raw number is kept: the set holds
// 128-bit keys of the hashed lines only.
//
// The output is deterministic: the same two versions give the same bytes
// whatever the budget and the number of passes.
package delta

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/crowdpack/crowdpack/internal/linecheck"
	"github.com/crowdpack/crowdpack/internal/source"
)

// DefaultBudget is the budget of a computation without a Pool.
const DefaultBudget = 64 << 20

// Format says how both files are read: the upload spec of the sync's
// children (spec.file.dataType, hashing and skipHeaderRow).
type Format struct {
	// DataType is Phone (MD5 lines, or raw numbers with HashMD5) or OpenID.
	DataType linecheck.DataType
	// HashMD5 reads each line as a raw mobile number and compares its MD5
	// line, as the upload sends it (see rawphone). Only with Phone.
	HashMD5 bool
	// SkipHeaderRow leaves line 1 of each file out.
	SkipHeaderRow bool
}

func (f Format) validate() error {
	switch {
	case f.DataType != linecheck.Phone && f.DataType != linecheck.OpenID:
		return fmt.Errorf("delta: unknown data type %q", f.DataType)
	case f.HashMD5 && f.DataType != linecheck.Phone:
		return fmt.Errorf("delta: MD5 hashing needs data type %q, not %q", linecheck.Phone, f.DataType)
	}
	return nil
}

// minMemberLen is the shortest member line of the format, its line ending
// aside: it bounds how many members a file of a given size can hold.
func (f Format) minMemberLen() int64 {
	switch {
	case f.HashMD5:
		return 11 // an 11-digit number
	case f.DataType == linecheck.Phone:
		return 32
	}
	return 6
}

// Counts summarise a computation. Lines = Added + Unchanged + Invalid.
type Counts struct {
	// Lines counts the non-empty lines of the revision (a header row left
	// out by SkipHeaderRow aside), invalid ones included.
	Lines int64
	// Added counts the revision's lines whose member the base does not have:
	// the lines of the output. A member the revision repeats is counted (and
	// output) each time, as a full upload would send it.
	Added int64
	// Unchanged counts the revision's lines whose member the base has.
	Unchanged int64
	// Invalid counts the revision's lines that hold no member (linecheck's
	// rules, or rawphone's with MD5 hashing). They are left out of the output.
	Invalid int64
	// InvalidLineNumbers lists the first invalid lines of the revision by
	// their number in the file, at most linecheck.MaxInvalidLineNumbers.
	InvalidLineNumbers []int64
	// BaseMembers counts the distinct members of the base.
	BaseMembers int64
	// Left counts the distinct members of the base that the revision does
	// not have. WeChat Pay cannot remove them: they are only reported.
	Left int64
	// Passes is how many times both files were read.
	Passes int
}

// Opener opens one pinned version of a file, once per pass.
type Opener interface {
	// Open streams the file from its start. It must yield the same bytes
	// every time, or fail (source.ErrChanged).
	Open(ctx context.Context) (io.ReadCloser, error)
	// Size is the file's length in bytes.
	Size() int64
}

// SourceOpener opens version v of src, every time with a read pinned to
// it: once the object changes, Open fails with source.ErrChanged.
func SourceOpener(src source.Source, v source.Version) Opener {
	return sourceOpener{src: src, v: v}
}

type sourceOpener struct {
	src source.Source
	v   source.Version
}

func (o sourceOpener) Open(ctx context.Context) (io.ReadCloser, error) {
	if o.v.Size == 0 {
		return http.NoBody, nil
	}
	return o.src.OpenRange(ctx, o.v, 0, o.v.Size)
}

func (o sourceOpener) Size() int64 { return o.v.Size }

// Options tune a computation.
type Options struct {
	// Pool lends the memory, shared by every computation of the manager.
	// Without it, a pool of Budget bytes is made for this computation.
	Pool *Pool
	// Budget is the bytes of the pool made without Pool; 0 is DefaultBudget.
	Budget int64

	// maxKeys, when set, caps the key set, so tests can force many passes
	// on small files.
	maxKeys int
}

func (o Options) pool() *Pool {
	if o.Pool != nil {
		return o.Pool
	}
	if o.Budget <= 0 {
		return NewPool(DefaultBudget)
	}
	return NewPool(o.Budget)
}

// ErrBudget means the budget cannot hold what a computation needs at the
// least: one bit per possible member of the revision and a few thousand
// keys. A bigger budget can help, retrying cannot.
var ErrBudget = errors.New("delta: budget too small")

// outBufferSize is the buffer of the output writer.
const outBufferSize = 32 << 10

// Compute writes to w the lines of revision whose member base does not
// have, in the revision's order, each as WeChat Pay receives it and ended
// by "\n", and returns the counts.
//
// It reads both files in passes. The 128-bit keys of the members are split
// by value into ranges; pass p reads the base and keeps, sorted, the keys
// of range p that fit its share of the pool, then reads the revision and
// decides every line whose key falls in that range. Decisions of passes
// before the last are kept as one bit per member line of the revision;
// the last pass writes the output in the revision's order. One pass does
// when the base fits; each further pass reads both files again.
func Compute(ctx context.Context, revision, base Opener, format Format, w io.Writer, opts Options) (Counts, error) {
	if err := format.validate(); err != nil {
		return Counts{}, err
	}
	pool := opts.pool()
	plan, err := planFor(pool.Budget(), revision.Size(), base.Size(), format, opts.maxKeys)
	if err != nil {
		return Counts{}, err
	}
	a, err := pool.get(ctx, plan)
	if err != nil {
		return Counts{}, err
	}
	defer pool.put(a)
	out := bufio.NewWriterSize(w, outBufferSize)
	c := &computation{format: format, revision: revision, base: base, arena: a, out: out}
	counts, err := c.run(ctx)
	if err != nil {
		return Counts{}, err
	}
	if err := out.Flush(); err != nil {
		return Counts{}, err
	}
	return counts, nil
}

// Reader reads the output of a computation; see NewReader.
type Reader struct {
	pipe   *io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
	counts Counts
	err    error
}

// NewReader starts a computation whose output is read from the Reader
// (Compute runs in a goroutine of its own). Reading it to io.EOF and then
// again with a new Reader yields the same bytes: it can be digested first
// and streamed in parts later. Close it to stop the computation.
func NewReader(ctx context.Context, revision, base Opener, format Format, opts Options) *Reader {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	r := &Reader{pipe: pr, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.counts, r.err = Compute(ctx, revision, base, format, pw, opts)
		pw.CloseWithError(r.err) // nil: readers see io.EOF
	}()
	return r
}

// Read reads the output. At its end it returns io.EOF, or the
// computation's error.
func (r *Reader) Read(p []byte) (int, error) {
	return r.pipe.Read(p)
}

// Counts returns the counts once Read has returned io.EOF.
func (r *Reader) Counts() Counts {
	<-r.done
	return r.counts
}

// Close stops the computation, if it still runs, and waits for it to end.
func (r *Reader) Close() error {
	r.cancel()
	r.pipe.CloseWithError(errReaderClosed)
	<-r.done
	return nil
}

var errReaderClosed = errors.New("delta: reader closed")
