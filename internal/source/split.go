package source

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/crowdpack/crowdpack/internal/linecheck"
	"github.com/crowdpack/crowdpack/internal/rawphone"
)

// SplitOptions says how a file becomes uploads.
type SplitOptions struct {
	// MaxLines is the most non-empty lines of one chunk; 0 never splits.
	MaxLines int64
	// SkipHeaderRow leaves line 1 out of every chunk.
	SkipHeaderRow bool
	// HashMD5 reads each line as a raw mobile number and uploads its MD5
	// line (see rawphone); lines that hold no number are reported and left
	// out, empty lines are left out.
	HashMD5 bool
}

// Chunk is one upload cut from a file at line boundaries. Consecutive
// chunks cover the file (after a skipped header row) without gap: empty
// lines after a chunk's last non-empty line belong to it.
type Chunk struct {
	// Index numbers the chunks from 1, as the uploads' file names do.
	Index int
	// FirstLine and LastLine are the chunk's first and last lines in the
	// file, numbered from 1; LastLine is FirstLine-1 for a chunk of no line.
	FirstLine, LastLine int64
	// Start and End are the byte range [Start, End) of the chunk in the file.
	Start, End int64
	// Lines counts the lines uploaded: the non-empty lines of the range, or
	// with hashing the numbers hashed.
	Lines int64
	// Size is the length of the uploaded bytes: End-Start, or with hashing
	// Lines*rawphone.LineLen.
	Size int64
	// Digest is the SHA-256 of the uploaded bytes, 64 lowercase hex characters.
	Digest string
}

// The states of a cutter between two bytes of the file.
type cutState int

const (
	inHeader    cutState = iota // in line 1, which is skipped
	atLineStart                 // no byte of the next line seen yet
	afterCR                     // the line began with a "\r" held back: empty if "\n" follows
	inLine                      // in a non-empty line
)

// cutter is the digest's sink that cuts the file into chunks. A chunk ends
// where the non-empty line that would exceed MaxLines starts, so whether a
// line is empty ("" or "\r") is decided at its first bytes, before any of
// it is given to a chunk: a leading "\r" is held back until the next byte.
// The bytes of one Write a chunk takes are given to it in one run, not line
// by line: hashing and SHA-256 work best on long runs.
type cutter struct {
	opts      SplitOptions
	state     cutState
	offset    int64 // in the file, of the next byte to look at
	lineNo    int64 // lines begun so far
	lineStart int64 // offset of the current line

	p        []byte // being written
	at, from int    // in p: the next byte to look at; the first not yet given to a chunk

	current  Chunk
	nonEmpty int64    // non-empty lines of the current chunk
	sum      chunkSum // of the current chunk's uploaded bytes
	chunks   []Chunk  // the chunks done
	hasher   *rawphone.Hasher
	hashed   *rawphone.Writer // hashes into sum, with HashMD5
	hashedAt int64            // hasher.Uploaded() when the current chunk began

	// With neither header row nor hashing, the uploads together are the
	// file, byte for byte and in order, so the cutter also takes the file's
	// SHA-256, with one hash for as long as one upload's bytes are the
	// file's: until the first cut, the current chunk's hash is the file's
	// (file is nil). At the cut, that hash goes on as the file's (and the
	// next chunk gets a hash of its own): the cutter writes to it the rest of
	// the buffer being cut, then hands it over to the fileHasher, which
	// writes the buffers after, beside the uploads' hash. A file of one
	// upload is thus hashed once, and a file of several hashed twice in two
	// goroutines.
	hashesFile bool
	file       hash.Hash        // the file's hash once the first cut happened
	fileFrom   int64            // the offset of the first cut
	fileSize   int64            // bytes written to the file's hash by the cutter
	handoff    chan<- hash.Hash // to the fileHasher: one per Write, the file's hash once
	handedOff  bool
	bufStart   int64 // the offset of p

	// With the line checks of a Phone file, the runs of valid phone lines
	// the checker found in each p, one word a Write (see skipCheckedLines).
	checked <-chan []linecheck.Run
	runs    []linecheck.Run // of p, not yet moved past

	noBulk bool // tests only: every line looked at one by one
}

func newCutter(opts SplitOptions) *cutter {
	c := &cutter{opts: opts, state: atLineStart, current: Chunk{Index: 1, FirstLine: 1}}
	c.sum.hash = sha256.New()
	if opts.SkipHeaderRow {
		c.state, c.current.FirstLine = inHeader, 2
	}
	c.hashesFile = !opts.SkipHeaderRow && !opts.HashMD5
	if opts.HashMD5 {
		c.hasher = rawphone.NewHasher(c.current.FirstLine)
		c.hashed = rawphone.NewWriter(&c.sum, c.hasher)
	}
	return c
}

// Write cuts p into chunks; it never fails.
func (c *cutter) Write(p []byte) (int, error) {
	c.p, c.at, c.from, c.bufStart = p, 0, 0, c.offset
	if c.checked != nil {
		c.runs = <-c.checked
	}
	for c.at < len(p) {
		switch c.state {
		case inHeader:
			c.skipHeader()
		case atLineStart:
			if !c.noBulk && (c.skipCheckedLines() || c.bulkLines()) {
				continue
			}
			c.startLine()
		case afterCR:
			c.decideCR()
		default:
			c.continueLine()
		}
	}
	c.flush()
	if c.handoff != nil {
		c.handOver(p)
	}
	c.p = nil
	return len(p), nil
}

// handOver sends the fileHasher its word on the p just cut: the file's
// hash if the first cut happened in p, written up to the end of p, and nil
// otherwise.
func (c *cutter) handOver(p []byte) {
	if c.file == nil || c.handedOff {
		c.handoff <- nil
		return
	}
	from := c.fileFrom - c.bufStart
	if from == -1 {
		// The cut is at a line that began with the "\r" p's previous ended
		// with, held back until p's first byte.
		c.fileSize += int64(len(cr))
		_, _ = c.file.Write(cr)
		from = 0
	}
	c.fileSize += int64(len(p)) - from
	_, _ = c.file.Write(p[from:])
	c.handedOff = true
	c.handoff <- c.file
}

// fileHasher is the digest's sink that writes the file's buffers to the
// file's hash from the cutter's hand-over on (see cutter.hashesFile): after
// a cut, the file's SHA-256 and the uploads' run side by side.
type fileHasher struct {
	handoff <-chan hash.Hash
	hash    hash.Hash
	size    int64 // written
}

// Write waits for the cutter's word on p; it never fails.
func (f *fileHasher) Write(p []byte) (int, error) {
	if h := <-f.handoff; h != nil {
		f.hash = h // written up to the end of p by the cutter
	} else if f.hash != nil {
		f.size += int64(len(p))
		_, _ = f.hash.Write(p)
	}
	return len(p), nil
}

// advance moves past n bytes that the current chunk takes.
func (c *cutter) advance(n int) {
	c.at += n
	c.offset += int64(n)
}

// skip moves past n bytes that no chunk takes (yet).
func (c *cutter) skip(n int) {
	c.flush()
	c.advance(n)
	c.from = c.at
}

// flush gives the bytes moved past since the last flush to the current chunk.
func (c *cutter) flush() {
	if c.at > c.from {
		c.take(c.p[c.from:c.at])
	}
	c.from = c.at
}

// toLineEnd returns how many bytes of p from at belong to the current
// line, its "\n" included, and whether the line ends in p.
func (c *cutter) toLineEnd() (int, bool) {
	if i := bytes.IndexByte(c.p[c.at:], '\n'); i >= 0 {
		return i + 1, true
	}
	return len(c.p) - c.at, false
}

// skipHeader moves past the bytes of line 1.
func (c *cutter) skipHeader() {
	n, ends := c.toLineEnd()
	c.skip(n)
	if ends {
		c.state, c.lineNo, c.current.Start = atLineStart, 1, c.offset
	}
}

// skipCheckedLines moves, from the start of a line, past the lines of p
// that the line checker found to be valid phone lines (see linecheck.Run),
// as many as the current chunk has room for. Such lines are whole and
// non-empty, and the checker knows where they end, so the cutter need not
// look at them again: its scan would cost about half a SHA-256 of the same
// bytes, in the hash's own goroutine. It reports whether it moved.
func (c *cutter) skipCheckedLines() bool {
	for len(c.runs) > 0 && c.runs[0].End() <= c.at {
		c.runs = c.runs[1:]
	}
	if len(c.runs) == 0 || c.runs[0].Start > c.at {
		return false
	}
	lines := int64((c.runs[0].End() - c.at) / linecheck.PhoneLineLen)
	if c.opts.MaxLines > 0 {
		lines = min(lines, c.opts.MaxLines-c.nonEmpty)
		if lines == 0 {
			return false // the next line starts a new chunk
		}
	}
	n := int(lines) * linecheck.PhoneLineLen
	c.lineNo += lines
	c.nonEmpty += lines
	c.lineStart = c.offset + int64(n-linecheck.PhoneLineLen)
	c.advance(n)
	return true
}

// bulkLines moves, from the start of a line, past the whole lines that
// follow as long as each is non-empty and known to be so at its first byte
// (it begins with neither "\n" nor "\r") and the current chunk has room for
// them: a scan of many bytes at a time (see wellBegun, and bytes.Count)
// instead of a look at each line, which would cost more than the SHA-256
// of the line. It leaves the line it stops at, and the rest, to the look at
// each line, and reports whether it moved.
func (c *cutter) bulkLines() bool {
	q := c.p[c.at:]
	if q[0] == '\n' || q[0] == '\r' {
		return false
	}
	last := bytes.LastIndexByte(q[:wellBegun(q)], '\n')
	if last < 0 {
		return false
	}
	q = q[:last+1] // whole lines, each begun with neither "\n" nor "\r"
	lines := int64(bytes.Count(q, newline))
	if room := c.opts.MaxLines - c.nonEmpty; c.opts.MaxLines > 0 && lines > room {
		if room == 0 {
			return false
		}
		end := 0 // of the room lines that still fit
		for range room {
			end += bytes.IndexByte(q[end:], '\n') + 1
		}
		q, lines = q[:end], room
	}
	c.lineNo += lines
	c.nonEmpty += lines
	c.lineStart = c.offset + int64(bytes.LastIndexByte(q[:len(q)-1], '\n')+1)
	c.advance(len(q))
	return true
}

var newline = []byte("\n")

// wellBegun returns how many bytes of p, from its start, hold no "\n"
// followed by a byte from "\b" to "\x0f" ("\n" and "\r" among them), the
// next byte looked at too: every line that begins in them begins with
// neither "\n" nor "\r". It looks at 32 bytes at a time, and stops short of
// the 32 where one is found and of the end of p.
func wellBegun(p []byte) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
		nls   = 0x0a0a0a0a0a0a0a0a
	)
	// A byte of pair(b, i) is 0 where b[j] is "\n" and b[j+1] is 8 to 15.
	pair := func(b *[33]byte, i int) uint64 {
		w := binary.LittleEndian.Uint64(b[i : i+8])
		next := binary.LittleEndian.Uint64(b[i+1 : i+9])
		return w ^ nls | (next&0xf8f8f8f8f8f8f8f8 ^ 0x0808080808080808)
	}
	// (x - ones) &^ x & highs is not 0 if and only if a byte of x is 0.
	zero := func(x uint64) uint64 { return (x - ones) &^ x & highs }
	i := 0
	for ; i+33 <= len(p); i += 32 {
		b := (*[33]byte)(p[i : i+33])
		if zero(pair(b, 0))|zero(pair(b, 8))|zero(pair(b, 16))|zero(pair(b, 24)) != 0 {
			break
		}
	}
	return i
}

// startLine looks at the first byte of a line.
func (c *cutter) startLine() {
	c.lineNo++
	c.lineStart = c.offset
	switch c.p[c.at] {
	case '\n':
		c.advance(1) // an empty line
	case '\r':
		c.skip(1) // held back: taken once the line is known
		c.state = afterCR
	default:
		c.beginNonEmptyLine()
		c.state = inLine
	}
}

// decideCR gives the "\r" a line began with to a chunk once the next byte
// says whether the line is empty.
func (c *cutter) decideCR() {
	empty := c.p[c.at] == '\n'
	if !empty {
		c.beginNonEmptyLine()
	}
	c.flush()
	c.take(cr)
	c.state = inLine
	if empty {
		c.advance(1)
		c.state = atLineStart
	}
}

var cr = []byte("\r")

// continueLine moves past the rest of a non-empty line.
func (c *cutter) continueLine() {
	n, ends := c.toLineEnd()
	c.advance(n)
	if ends {
		c.state = atLineStart
	}
}

// beginNonEmptyLine counts the line that starts at lineStart, first cutting
// the chunk if it is full.
func (c *cutter) beginNonEmptyLine() {
	if c.opts.MaxLines > 0 && c.nonEmpty == c.opts.MaxLines {
		c.flush()
		c.closeChunk(c.lineStart, c.lineNo-1)
		c.current = Chunk{Index: c.current.Index + 1, FirstLine: c.lineNo, Start: c.lineStart}
		c.nonEmpty = 0
	}
	c.nonEmpty++
}

// take gives bytes of the file to the current chunk.
func (c *cutter) take(p []byte) {
	if c.hashed != nil {
		_, _ = c.hashed.Write(p) // into sum: never fails
		return
	}
	_, _ = c.sum.Write(p)
	if c.hashesFile && c.file == nil {
		c.fileSize += int64(len(p))
	}
}

// closeChunk records the current chunk, ending at end and lastLine, and
// starts the sum of the next.
func (c *cutter) closeChunk(end, lastLine int64) {
	chunk := c.current
	chunk.End, chunk.LastLine = end, lastLine
	chunk.Size, chunk.Digest = c.sum.size, c.sum.digest()
	chunk.Lines = c.nonEmpty
	if c.hasher != nil {
		chunk.Lines = c.hasher.Uploaded() - c.hashedAt
		c.hashedAt = c.hasher.Uploaded()
	}
	c.chunks = append(c.chunks, chunk)
	if c.hashesFile && c.file == nil {
		// The first cut: the hash so far is the file's, and goes on as such.
		c.file, c.sum.hash = c.sum.hash, sha256.New()
		c.fileFrom = end
	}
	c.sum.reset()
}

// finish closes the last chunk at the end of the file and returns the
// chunks and, with hashing, the report on the lines.
func (c *cutter) finish() ([]Chunk, linecheck.Report) {
	switch c.state {
	case afterCR:
		c.take(cr) // a last line of only "\r" is empty
	case inHeader:
		c.current.Start = c.offset
	}
	var report linecheck.Report
	if c.hashed != nil {
		_ = c.hashed.Close() // a last line without newline
		report = c.hasher.Report()
	}
	c.closeChunk(c.offset, max(c.lineNo, c.current.FirstLine-1))
	return c.chunks, report
}

// fileDigest returns the SHA-256 of the file's n bytes, in lowercase hex,
// once finish is done (and the fileHasher f), and whether the cutter took
// it (see hashesFile). It fails if the file's hash was not given the n
// bytes: it would not be the file's.
func (c *cutter) fileDigest(f *fileHasher, n int64) (string, bool, error) {
	if !c.hashesFile {
		return "", false, nil
	}
	if written := c.fileSize + f.size; written != n {
		return "", true, fmt.Errorf("the file's hash was given %d bytes of its %d", written, n)
	}
	// The last closeChunk moved the hash of a file never cut to file too.
	return hex.EncodeToString(c.file.Sum(nil)), true, nil
}

// chunkSum is the SHA-256 and length of the bytes written to it.
type chunkSum struct {
	hash hash.Hash
	size int64
}

func (s *chunkSum) Write(p []byte) (int, error) {
	s.size += int64(len(p))
	return s.hash.Write(p)
}

// digest is the SHA-256 so far, in lowercase hex.
func (s *chunkSum) digest() string {
	return hex.EncodeToString(s.hash.Sum(nil))
}

func (s *chunkSum) reset() {
	s.hash.Reset()
	s.size = 0
}
