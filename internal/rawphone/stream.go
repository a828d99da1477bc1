package rawphone

import (
	"bytes"

	"github.com/crowdpack/crowdpack/internal/linecheck"
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Hasher hashes a stream of raw-number lines into uploaded lines, one
// buffer at a time, and reports on the lines in linecheck's shape: empty
// lines are skipped (counted apart, never invalid), lines that hold no
// mobile number are counted invalid, by line number, and left out. The
// output for a line depends on that line alone, so the same bytes cut into
// buffers anywhere give the same output. A Hasher is not safe for
// concurrent use.
type Hasher struct {
	report linecheck.Report
	lineNo int64

	// An unfinished line: its length so far, its start (up to MaxRawLineLen
	// bytes and a "\r": a longer line is invalid whatever the rest holds) and
	// its last byte (to see a trailing "\r").
	carried  int
	carry    [MaxRawLineLen + 1]byte
	lastByte byte
}

// NewHasher returns a Hasher whose first line is line firstLine of the file:
// reports number lines as the file does.
func NewHasher(firstLine int64) *Hasher {
	h := &Hasher{lineNo: firstLine - 1}
	h.report.FirstInvalidLineNumbers = make([]int64, 0, linecheck.MaxInvalidLineNumbers)
	return h
}

// Transform hashes the lines of src into dst and returns how many bytes it
// wrote and read. It stops early only when dst has no room left for a line
// (LineLen bytes). A line src ends inside of is carried over to the next
// call; atEOF says src is the end of the stream, so a last line without a
// newline is a line too.
func (h *Hasher) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int) {
	for nSrc < len(src) || atEOF && h.carried > 0 {
		if len(dst)-nDst < LineLen {
			return nDst, nSrc
		}
		i := bytes.IndexByte(src[nSrc:], '\n')
		if i < 0 {
			h.carryOver(src[nSrc:])
			nSrc = len(src)
			if atEOF {
				nDst += h.finishLine(dst[nDst:], nil)
			}
			continue
		}
		nDst += h.finishLine(dst[nDst:], src[nSrc:nSrc+i])
		nSrc += i + 1
	}
	return nDst, nSrc
}

// Report returns the summary of the lines transformed so far.
func (h *Hasher) Report() linecheck.Report {
	r := h.report
	r.FirstInvalidLineNumbers = append([]int64(nil), r.FirstInvalidLineNumbers...)
	return r
}

// Uploaded counts the lines hashed so far: those transformed into dst.
func (h *Hasher) Uploaded() int64 {
	return h.report.Lines - h.report.InvalidLines
}

// carryOver keeps the start of an unfinished line.
func (h *Hasher) carryOver(p []byte) {
	if len(p) > 0 {
		copy(h.carry[min(h.carried, len(h.carry)):], p)
		h.carried += len(p)
		h.lastByte = p[len(p)-1]
	}
}

// finishLine counts the line that ends here, the carried start of it (if
// any) followed by tail, and writes its uploaded line to dst if it is a
// number. It returns the bytes written to dst.
func (h *Hasher) finishLine(dst, tail []byte) int {
	if h.carried == 0 {
		return h.countLine(dst, tail, len(tail) > 0 && tail[len(tail)-1] == '\r', false)
	}
	h.carryOver(tail)
	overlong := h.carried > len(h.carry)
	n := h.countLine(dst, h.carry[:min(h.carried, len(h.carry))], h.lastByte == '\r', overlong)
	clear(h.carry[:]) // a raw number is kept no longer than its line
	h.carried = 0
	return n
}

// countLine counts one complete line, of which only the start is known when
// it is overlong, and hashes it into dst when it is a number.
func (h *Hasher) countLine(dst, line []byte, endsCR, overlong bool) int {
	h.lineNo++
	if endsCR {
		h.report.CRLF = true
		if !overlong {
			line = line[:len(line)-1]
		}
	}
	if len(line) == 0 {
		h.report.EmptyLines++
		return 0
	}
	h.report.Lines++
	if h.lineNo == 1 && bytes.HasPrefix(line, utf8BOM) {
		h.report.BOM = true // WeChat Pay would read it as part of the number
	}
	if !overlong && HashLine((*[LineLen]byte)(dst), line) {
		return LineLen
	}
	h.countInvalid(line, overlong)
	return 0
}

func (h *Hasher) countInvalid(line []byte, overlong bool) {
	h.report.InvalidLines++
	if len(h.report.FirstInvalidLineNumbers) < linecheck.MaxInvalidLineNumbers {
		h.report.FirstInvalidLineNumbers = append(h.report.FirstInvalidLineNumbers, h.lineNo)
	}
	if h.lineNo == 1 && !overlong && linecheck.LooksLikeHeader(linecheck.Phone, bytes.TrimPrefix(line, utf8BOM)) {
		h.report.HeaderRow = true
	}
}
