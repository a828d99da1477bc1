package delta

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/crowdpack/crowdpack/internal/linecheck"
	"github.com/crowdpack/crowdpack/internal/rawphone"
)

// key stands for one member in the set: 128 bits, h well mixed (the set is
// split into ranges of h and searched by it), l as it came.
type key struct{ h, l uint64 }

func (k key) less(o key) int {
	switch {
	case k.h != o.h:
		if k.h < o.h {
			return -1
		}
		return 1
	case k.l != o.l:
		if k.l < o.l {
			return -1
		}
		return 1
	}
	return 0
}

// keyOf returns the key of a member. A lower-case MD5 line is its 16 bytes,
// exactly; any other member (an upper-case MD5, an openid) is the first 16
// bytes of its SHA-256, so two members share a key with a chance of 2^-128
// a pair. The bytes are then mixed by a bijection, (a, b) to
// (fmix(a ^ fmix(b)), b), which keeps distinct keys distinct and spreads
// even made-up MD5 lines ("000…001") evenly over h.
func keyOf(member []byte) key {
	if sum, ok := lowerHex16(member); ok {
		return keyOfSum(sum)
	}
	sum := sha256.Sum256(member)
	return keyOfSum([16]byte(sum[:16]))
}

// keyOfSum is the key of the member whose 16 bytes are sum: the MD5 of a
// lower-case MD5 line, as rawphone.Sum returns it.
func keyOfSum(sum [16]byte) key {
	a, b := binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:])
	return key{h: fmix(a ^ fmix(b)), l: b}
}

// fmix is MurmurHash3's 64-bit finaliser, a bijection.
func fmix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// lowerHexValue maps '0'-'9' and 'a'-'f' to their value, anything else to 0xFF.
var lowerHexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	for i := range 10 {
		t['0'+i] = byte(i)
	}
	for i := range 6 {
		t['a'+i] = byte(10 + i)
	}
	return t
}()

// lowerHex16 decodes 32 lower-case hex characters.
func lowerHex16(s []byte) (sum [16]byte, ok bool) {
	if len(s) != 32 {
		return sum, false
	}
	var bad byte
	for i := range sum {
		hi, lo := lowerHexValue[s[2*i]], lowerHexValue[s[2*i+1]]
		bad |= hi | lo
		sum[i] = hi<<4 | lo&0x0F
	}
	return sum, bad&0xF0 == 0
}

// fileStats describes one read of a file.
type fileStats struct {
	// Lines, Invalid and InvalidLineNumbers as in Counts.
	lines, invalid     int64
	invalidLineNumbers []int64
	// members counts the member lines; check is a sum over their keys, so
	// that two reads of one file can be compared cheaply.
	members int64
	check   uint64
}

// sameMembers tells whether two reads of a file yielded the same members.
func (s fileStats) sameMembers(o fileStats) bool {
	return s.members == o.members && s.check == o.check
}

// readBufferSize is the buffer lines are read from.
const readBufferSize = 64 << 10

// A file is read, split into lines and hashed (MD5 for raw numbers, the
// costliest step) in a goroutine of its own, which hands the members over
// in batches through a small ring, so that it works on the next lines while
// fn looks up those before, as the digest's sinks overlap.
const (
	batchLines = 256
	batches    = 4
)

// batch is member lines handed from the reading goroutine to fn.
type batch struct {
	n    int
	keys [batchLines]key
	// members are the lines, or with MD5 hashing the 16 bytes of the MD5.
	members [batchLines][maxMemberLen]byte
	lens    [batchLines]uint8
}

// maxMemberLen is the longest member (an openid; see linecheck).
const maxMemberLen = 64

// errStopped ends the reading goroutine once fn has failed.
var errStopped = errors.New("delta: reading stopped")

// eachMember reads the file o opens once and calls fn with each member
// line, in order, and its key. The member is the line as WeChat Pay
// receives it, without its "\n", or with MD5 hashing the 16 bytes of the
// MD5 (that rawphone.HashLine writes in hex); it is valid only during the
// call. progress, if not nil, is kept at the bytes of the file read so far.
func eachMember(ctx context.Context, o Opener, format Format, progress *atomic.Int64, fn func(k key, member []byte) error) (fileStats, error) {
	body, err := o.Open(ctx)
	if err != nil {
		return fileStats{}, err
	}
	defer body.Close()
	counted := &countingReader{ctx: ctx, r: body, n: progress}
	if counted.n == nil {
		counted.n = new(atomic.Int64)
	}
	var r io.Reader = counted
	firstLine := int64(1)
	if format.SkipHeaderRow {
		r, firstLine = &lineSkipper{r: r}, 2
	}
	free, full := make(chan *batch, batches), make(chan *batch, batches)
	for range batches {
		free <- new(batch)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	var stats fileStats
	var readErr error
	go func() {
		defer close(done)
		defer close(full)
		stats, readErr = readMembers(r, format, firstLine, free, full, stop)
	}()
	var fnErr error
	for b := range full {
		for j := 0; j < b.n && fnErr == nil; j++ {
			if fnErr = fn(b.keys[j], b.members[j][:b.lens[j]]); fnErr != nil {
				close(stop)
			}
		}
		free <- b
	}
	<-done
	switch {
	case fnErr != nil:
		return fileStats{}, fnErr
	case readErr != nil:
		return fileStats{}, readErr
	}
	if n := counted.n.Load(); n != o.Size() {
		return fileStats{}, fmt.Errorf("torn read: the file yielded %d of its %d bytes", n, o.Size())
	}
	return stats, nil
}

// readMembers reads the lines of r, the first numbered firstLine, and sends
// its members in batches taken from free to full, until r ends or stop is
// closed.
func readMembers(r io.Reader, format Format, firstLine int64, free <-chan *batch, full chan<- *batch, stop <-chan struct{}) (fileStats, error) {
	var stats fileStats
	ring := batchRing{free: free, full: full, stop: stop}
	if !ring.take() {
		return stats, errStopped
	}
	lines := newLineReader(r)
	defer lines.clear()
	for lineNo := firstLine; ; lineNo++ {
		line, overlong, err := lines.readLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			return stats, err
		}
		if len(line) == 0 && !overlong {
			continue // an empty line: no member, not invalid
		}
		stats.lines++
		k, valid := ring.b.add(format, line, overlong)
		if !valid {
			stats.addInvalid(lineNo)
			continue
		}
		stats.members++
		stats.check += fmix(k.h ^ k.l)
		if ring.b.n == batchLines && !ring.pass() {
			return stats, errStopped
		}
	}
	full <- ring.b
	return stats, nil
}

// batchRing is the reading goroutine's end of the ring: b is the batch
// being filled.
type batchRing struct {
	free <-chan *batch
	full chan<- *batch
	stop <-chan struct{}
	b    *batch
}

// take makes an empty batch from free the one being filled, or returns
// false once stop is closed: fn failed, so reading ends.
func (g *batchRing) take() bool {
	select {
	case g.b = <-g.free:
		g.b.n = 0
		return true
	case <-g.stop:
		return false
	}
}

// pass hands the full batch over and takes the next.
func (g *batchRing) pass() bool {
	g.full <- g.b
	return g.take()
}

// add checks line and, if it is a member, stores it (with MD5 hashing its
// MD5) and its key in the batch's next slot; invalid lines leave the batch
// as it was. An overlong line is never valid.
func (b *batch) add(format Format, line []byte, overlong bool) (key, bool) {
	var k key
	switch {
	case overlong:
		return k, false
	case format.HashMD5:
		sum, valid := rawphone.Sum(line)
		if !valid {
			return k, false
		}
		k = keyOfSum(sum)
		b.lens[b.n] = uint8(copy(b.members[b.n][:], sum[:]))
	case linecheck.Valid(format.DataType, line):
		k = keyOf(line)
		b.lens[b.n] = uint8(copy(b.members[b.n][:], line))
	default:
		return k, false
	}
	b.keys[b.n] = k
	b.n++
	return k, true
}

// addInvalid counts an invalid line, keeping the first line numbers only:
// the status reports where to look, never the lines.
func (s *fileStats) addInvalid(lineNo int64) {
	s.invalid++
	if len(s.invalidLineNumbers) < linecheck.MaxInvalidLineNumbers {
		s.invalidLineNumbers = append(s.invalidLineNumbers, lineNo)
	}
}

// lineReader splits a stream into lines in a buffer of its own, which it
// clears once done: raw numbers are kept no longer than their buffer.
type lineReader struct {
	r          io.Reader
	buf        []byte
	start, end int   // the bytes of buf not yet returned
	err        error // r's, once it failed or ended
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: r, buf: make([]byte, readBufferSize)}
}

// readLine returns the next line without its line ending ("\n" or "\r\n";
// a last line may have none), or io.EOF. A line longer than the buffer is
// overlong: it is read to its end and returned empty.
func (l *lineReader) readLine() (line []byte, overlong bool, err error) {
	for {
		if i := bytes.IndexByte(l.buf[l.start:l.end], '\n'); i >= 0 {
			line = l.buf[l.start : l.start+i]
			l.start += i + 1
			return trimLine(line, overlong), overlong, nil
		}
		if l.err != nil {
			if l.err != io.EOF {
				return nil, false, l.err
			}
			if l.start == l.end && !overlong {
				return nil, false, l.err
			}
			line, l.start = l.buf[l.start:l.end], l.end // a last line without "\n"
			return trimLine(line, overlong), overlong, nil
		}
		if l.start == 0 && l.end == len(l.buf) {
			overlong, l.end = true, 0 // no "\n" in a full buffer: drop the line's start
		}
		l.end = copy(l.buf, l.buf[l.start:l.end])
		l.start = 0
		var n int
		n, l.err = l.r.Read(l.buf[l.end:])
		l.end += n
	}
}

// clear wipes the buffer.
func (l *lineReader) clear() {
	clear(l.buf)
}

// trimLine drops a trailing "\r"; an overlong line is returned empty.
func trimLine(line []byte, overlong bool) []byte {
	if overlong {
		return nil
	}
	return bytes.TrimSuffix(line, carriageReturn)
}

var carriageReturn = []byte("\r")

// countingReader counts the bytes read through it and stops once ctx ends.
// The count is atomic: the hashing goroutine reads, the lookups look.
type countingReader struct {
	ctx context.Context
	r   io.Reader
	n   *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, context.Cause(c.ctx)
	}
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// lineSkipper leaves out the first line, its "\n" included, as an upload
// that skips the header row does.
type lineSkipper struct {
	r       io.Reader
	skipped bool
}

func (s *lineSkipper) Read(p []byte) (int, error) {
	for !s.skipped {
		n, err := s.r.Read(p)
		if i := bytes.IndexByte(p[:n], '\n'); i >= 0 {
			s.skipped = true
			return copy(p, p[i+1:n]), err
		}
		if err != nil {
			return 0, err
		}
	}
	return s.r.Read(p)
}
