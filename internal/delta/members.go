package delta

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
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
	var a, b uint64
	if sum, ok := lowerHex16(member); ok {
		a, b = binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:])
	} else {
		sum := sha256.Sum256(member)
		a, b = binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:16])
	}
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

// eachMember reads the file o opens once and calls fn with each member
// line, in order, as WeChat Pay receives it (without its "\n") and its key.
// progress, if not nil, is kept at the bytes of the file read so far. The
// member is valid only during the call.
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
	var stats fileStats
	var hasher *rawphone.Hasher
	if format.HashMD5 {
		hasher = rawphone.NewHasher(firstLine)
		ahead := hashAhead(rawphone.NewReader(r, hasher))
		defer ahead.stop()
		r = ahead
	}
	br := bufio.NewReaderSize(r, readBufferSize)
	lineNo := firstLine - 1
	for {
		line, overlong, err := readLine(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fileStats{}, err
		}
		lineNo++
		if hasher == nil {
			if len(line) == 0 && !overlong {
				continue // an empty line: no member, not invalid
			}
			stats.lines++
			if overlong || !linecheck.Valid(format.DataType, line) {
				stats.invalid++
				if len(stats.invalidLineNumbers) < linecheck.MaxInvalidLineNumbers {
					stats.invalidLineNumbers = append(stats.invalidLineNumbers, lineNo)
				}
				continue
			}
		}
		k := keyOf(line)
		stats.members++
		stats.check += fmix(k.h ^ k.l)
		if err := fn(k, line); err != nil {
			return fileStats{}, err
		}
	}
	if hasher != nil {
		r.(*aheadReader).stop() // the hashing is done: its report is final
	}
	if n := counted.n.Load(); n != o.Size() {
		return fileStats{}, fmt.Errorf("torn read: the file yielded %d of its %d bytes", n, o.Size())
	}
	if hasher != nil {
		report := hasher.Report()
		stats.lines, stats.invalid, stats.invalidLineNumbers = report.Lines, report.InvalidLines, report.FirstInvalidLineNumbers
	}
	return stats, nil
}

// readLine returns the next line of br without its line ending ("\n" or
// "\r\n"; a last line may have none), or io.EOF. A line longer than br's
// buffer is overlong: it is read to its end and returned empty.
func readLine(br *bufio.Reader) (line []byte, overlong bool, err error) {
	line, err = br.ReadSlice('\n')
	for err == bufio.ErrBufferFull {
		overlong = true
		_, err = br.ReadSlice('\n')
	}
	switch {
	case err == io.EOF && (len(line) > 0 || overlong):
		err = nil // a last line without "\n"
	case err != nil:
		return nil, false, err
	}
	if overlong {
		return nil, true, nil
	}
	line = bytes.TrimSuffix(line, newline)
	return bytes.TrimSuffix(line, carriageReturn), false, nil
}

var newline, carriageReturn = []byte("\n"), []byte("\r")

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

// aheadReader reads the hashed lines of a file from a goroutine that hashes
// them, so that the hashing (MD5, the most costly step) of the next lines
// overlaps the lookups of those read, as the digest's sinks overlap. The
// pipe holds no buffer: the goroutine is one write (hashBufferSize) ahead.
type aheadReader struct {
	*io.PipeReader
	done chan struct{}
}

// hashBufferSize is what the hashing goroutine writes at a time.
const hashBufferSize = 32 << 10

func hashAhead(hashed io.Reader) *aheadReader {
	pr, pw := io.Pipe()
	a := &aheadReader{PipeReader: pr, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		_, err := io.CopyBuffer(pw, struct{ io.Reader }{hashed}, make([]byte, hashBufferSize))
		pw.CloseWithError(err) // nil: the reader sees io.EOF
	}()
	return a
}

// stop ends the goroutine, if it still runs, and waits for it.
func (a *aheadReader) stop() {
	a.CloseWithError(errReaderClosed)
	<-a.done
}
