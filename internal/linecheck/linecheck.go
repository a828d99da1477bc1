// Package linecheck checks, while a crowd package streams past, that every
// line holds one identifier of the declared data type. It is an io.Writer so
// it can take the same stream as a hash: the file is read once. A Checker is
// not safe for concurrent use; one goroutine writes to it, and Report is
// called once the writes are done.
//
// The checker never keeps line content (it is personal data): a line split
// across writes is carried in a small fixed buffer, and a report only holds
// counts, flags and line numbers.
package linecheck

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
)

// DataType is what each line of a crowd package holds.
type DataType string

const (
	// Phone lines are MD5-hashed mobile numbers: exactly 32 hex characters,
	// upper or lower case.
	Phone DataType = "Phone"
	// OpenID lines are WeChat openids. The common form is 28 characters of
	// [A-Za-z0-9_-]; to stay tolerant of other forms, any 6..64 such
	// characters with at least one digit or upper-case letter are accepted
	// ("plausible openid"). A real openid is base64-like, so a line of only
	// lower-case letters, '_' and '-' ("openid", "user_id") is a column name
	// or junk: all 28 characters being so has a probability near 1e-6.
	OpenID DataType = "OpenID"
)

// MaxInvalidLineNumbers is how many invalid line numbers a Report lists.
const MaxInvalidLineNumbers = 5

// Report summarises the lines of one file. It never holds line content.
type Report struct {
	// Lines counts the non-empty lines, a header row and invalid lines included.
	Lines int64
	// InvalidLines counts the non-empty lines that are not valid for the data
	// type; a header row is one of them (and also flagged by HeaderRow).
	InvalidLines int64
	// EmptyLines counts lines with nothing but a line ending.
	EmptyLines int64
	// HeaderRow is set when line 1 is invalid and looks like a column name
	// ("phone", "md5", "openid", "手机号"): WeChat Pay wants no header.
	HeaderRow bool
	// CRLF is set when any line ends with "\r\n". The "\r" is not part of the
	// line, so such lines can still be valid.
	CRLF bool
	// BOM is set when the file starts with a UTF-8 byte order mark. WeChat Pay
	// reads it as part of line 1, so that line is also counted invalid.
	BOM bool
	// FirstInvalidLineNumbers lists the 1-based numbers of the first invalid
	// lines, at most MaxInvalidLineNumbers of them.
	FirstInvalidLineNumbers []int64
}

const (
	// maxLineLen is the longest valid line of any data type.
	maxLineLen = 64
	// carryCap bounds the part of a line kept between writes. Anything longer
	// is invalid (and no header) whatever its content, so the rest is dropped.
	carryCap = 128
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Checker is a streaming io.Writer that checks lines against a DataType.
// Write never fails; call Report after the last write.
type Checker struct {
	dataType DataType
	report   Report
	lineNo   int64

	// The start of an unfinished line: its first carryCap bytes, whether it
	// was longer than that, and its last byte (to see a trailing "\r").
	carry    [carryCap]byte
	carryLen int
	partial  bool
	overlong bool
	lastByte byte

	// skipFirstLine leaves line 1, a header row the upload leaves out, unchecked.
	skipFirstLine bool

	noFastPath bool // tests only: every line checked one by one
	pureGo     bool // tests only: the fast path without assembly
}

// New returns a Checker for dataType, or an error for an unknown data type.
func New(dataType DataType) (*Checker, error) {
	if dataType != Phone && dataType != OpenID {
		return nil, fmt.Errorf("linecheck: unknown data type %q, want %q or %q", dataType, Phone, OpenID)
	}
	return &Checker{dataType: dataType}, nil
}

// SkipHeaderRow leaves line 1 out of the checks and counts, as an upload
// that skips the header row does; later lines keep their numbers in the
// file. Call it before the first Write.
func (c *Checker) SkipHeaderRow() {
	c.skipFirstLine = true
}

// DataType returns the data type the checker checks.
func (c *Checker) DataType() DataType {
	return c.dataType
}

// Write checks the complete lines in p and carries an unfinished last line
// over to the next write. It always returns len(p), nil.
func (c *Checker) Write(p []byte) (int, error) {
	c.write(p, nil, false)
	return len(p), nil
}

// A Run is consecutive lines of one write that the checker found to be
// valid phone lines: Lines lines of PhoneLineLen bytes each, "\n"
// included, the first at byte Start of the write. A reader that cuts the
// same bytes at lines can move past a run without looking at it again.
type Run struct {
	Start, Lines int
}

// End is the offset in the write just past the run's last "\n".
func (r Run) End() int {
	return r.Start + r.Lines*PhoneLineLen
}

// WriteRuns is Write that also appends to runs the runs of valid phone
// lines found in p, in order, and returns runs. Not every valid line is in
// a run (one with "\r\n", one split across writes, a skipped header row),
// and there are none for OpenID.
func (c *Checker) WriteRuns(p []byte, runs []Run) []Run {
	return c.write(p, runs, true)
}

// write checks p and, with record, appends its runs of valid phone lines
// to runs.
func (c *Checker) write(p []byte, runs []Run, record bool) []Run {
	n := len(p)
	for {
		if c.dataType == Phone && !c.partial && !c.skipsLine(c.lineNo+1) && !c.noFastPath {
			lines := c.countValidPhoneLines(p)
			if record && lines > 0 {
				runs = append(runs, Run{Start: n - len(p), Lines: lines})
			}
			p = p[lines*PhoneLineLen:]
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.carryOver(p)
			return runs
		}
		c.finishLine(p[:i])
		p = p[i+1:]
	}
}

// Report returns the summary of everything written so far, counting an
// unfinished last line (a file without a final newline) as a line.
func (c *Checker) Report() Report {
	final := *c
	final.report.FirstInvalidLineNumbers = slices.Clone(c.report.FirstInvalidLineNumbers)
	if final.partial {
		final.finishLine(nil)
	}
	return final.report
}

// PhoneLineLen is a valid phone line with its "\n".
const PhoneLineLen = 32 + 1

// phoneGroupLines is how many phone lines the assembly checks at a time:
// 32 lines are 33 vectors of 32 bytes, each "\n" at a byte known in advance.
const phoneGroupLines = 32

// countValidPhoneLines counts the valid phone lines at the start of p. It
// is the common case made cheap, with no search for the newline: groups of
// 32 lines with AVX2 where the CPU has it, then eight bytes at a time, four
// lines at a time while they are valid. The checks run next to SHA-256 on
// the same CPU and would otherwise cost about as much. Such a line can be
// no header and holds no BOM, so counting it is all there is to do.
func (c *Checker) countValidPhoneLines(p []byte) int {
	lines := 0
	if !c.pureGo {
		lines = countPhoneGroupLines(p)
		p = p[lines*PhoneLineLen:]
	}
	for len(p) >= 4*PhoneLineLen && areFourPhoneLines((*[4 * PhoneLineLen]byte)(p)) {
		p = p[4*PhoneLineLen:]
		lines += 4
	}
	for len(p) >= PhoneLineLen && p[32] == '\n' && isHex32(p) {
		p = p[PhoneLineLen:]
		lines++
	}
	c.lineNo += int64(lines)
	c.report.Lines += int64(lines)
	return lines
}

// areFourPhoneLines tells whether q is four valid phone lines. It is
// isHex32 and a newline four times over with one branch instead of eight,
// which makes the check about a third faster.
func areFourPhoneLines(q *[4 * PhoneLineLen]byte) bool {
	if q[32] != '\n' || q[65] != '\n' || q[98] != '\n' || q[131] != '\n' {
		return false
	}
	word := func(i int) uint64 { return binary.LittleEndian.Uint64(q[i : i+8]) }
	a0, a1, a2, a3 := word(0), word(8), word(16), word(24)
	b0, b1, b2, b3 := word(33), word(41), word(49), word(57)
	c0, c1, c2, c3 := word(66), word(74), word(82), word(90)
	d0, d1, d2, d3 := word(99), word(107), word(115), word(123)
	hex := hex8(a0) & hex8(a1) & hex8(a2) & hex8(a3) & hex8(b0) & hex8(b1) & hex8(b2) & hex8(b3) &
		hex8(c0) & hex8(c1) & hex8(c2) & hex8(c3) & hex8(d0) & hex8(d1) & hex8(d2) & hex8(d3)
	// hex8 tells only of bytes below 0x80.
	ascii := ^(a0 | a1 | a2 | a3 | b0 | b1 | b2 | b3 | c0 | c1 | c2 | c3 | d0 | d1 | d2 | d3)
	return hex&ascii&highBits == highBits
}

// isHex32 tells whether the first 32 bytes of p are all hex characters.
func isHex32(p []byte) bool {
	_ = p[31]
	a, b := binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint64(p[8:])
	c, d := binary.LittleEndian.Uint64(p[16:]), binary.LittleEndian.Uint64(p[24:])
	if (a|b|c|d)&highBits != 0 {
		return false // a byte from 0x80 up
	}
	return hex8(a)&hex8(b)&hex8(c)&hex8(d)&highBits == highBits
}

const (
	lowBits  = 0x0101010101010101
	highBits = 0x8080808080808080
)

// hex8 sets the high bit of each byte of x (all below 0x80) that is a hex
// character; the other bits are noise. Adding 0x80-lo to a byte sets its
// high bit from lo up, adding 0x7F-hi sets it above hi, and neither carries
// into the next byte.
func hex8(x uint64) uint64 {
	folded := x | 0x20*lowBits // 'A'-'F' to 'a'-'f'
	digit := (x + (0x80-'0')*lowBits) &^ (x + (0x7F-'9')*lowBits)
	letter := (folded + (0x80-'a')*lowBits) &^ (folded + (0x7F-'f')*lowBits)
	return digit | letter
}

// carryOver keeps the start of an unfinished line, up to carryCap bytes.
func (c *Checker) carryOver(p []byte) {
	if len(p) == 0 {
		return
	}
	n := copy(c.carry[c.carryLen:], p)
	c.carryLen += n
	c.overlong = c.overlong || n < len(p)
	c.lastByte = p[len(p)-1]
	c.partial = true
}

// finishLine checks a line that ends here: tail alone, or the carried start
// of the line followed by tail.
func (c *Checker) finishLine(tail []byte) {
	if !c.partial {
		c.checkLine(tail)
		return
	}
	c.carryOver(tail)
	if c.overlong {
		c.countLongLine(c.carry[:], c.lastByte == '\r')
	} else {
		c.checkLine(c.carry[:c.carryLen])
	}
	c.carryLen, c.partial, c.overlong = 0, false, false
}

// skipsLine tells whether line number n is a skipped header row.
func (c *Checker) skipsLine(n int64) bool {
	return c.skipFirstLine && n == 1
}

// checkLine counts one complete line.
func (c *Checker) checkLine(line []byte) {
	c.lineNo++
	if c.skipsLine(c.lineNo) {
		return
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
		c.report.CRLF = true
	}
	if len(line) == 0 {
		c.report.EmptyLines++
		return
	}
	c.countNonEmpty(line)
	switch {
	case c.lineNo == 1 && c.looksLikeHeader(bytes.TrimPrefix(line, utf8BOM)):
		c.report.HeaderRow = true
		c.countInvalid()
	case !c.valid(line):
		c.countInvalid()
	}
}

// countLongLine counts a line longer than carryCap of which only the start
// is known. It is invalid (and no header) whatever the rest holds.
func (c *Checker) countLongLine(start []byte, endsCR bool) {
	c.lineNo++
	if c.skipsLine(c.lineNo) {
		return
	}
	c.report.CRLF = c.report.CRLF || endsCR
	c.countNonEmpty(start)
	c.countInvalid()
}

func (c *Checker) countNonEmpty(line []byte) {
	c.report.Lines++
	if c.lineNo == 1 && bytes.HasPrefix(line, utf8BOM) {
		c.report.BOM = true
	}
}

func (c *Checker) countInvalid() {
	c.report.InvalidLines++
	if len(c.report.FirstInvalidLineNumbers) < MaxInvalidLineNumbers {
		c.report.FirstInvalidLineNumbers = append(c.report.FirstInvalidLineNumbers, c.lineNo)
	}
}

// valid applies the rules documented on Phone and OpenID.
func (c *Checker) valid(line []byte) bool {
	switch c.dataType {
	case Phone:
		if len(line) != 32 {
			return false
		}
		all, _ := classify(line)
		return all&hexChar != 0
	case OpenID:
		if len(line) < 6 || len(line) > maxLineLen {
			return false
		}
		all, some := classify(line)
		return all&idChar != 0 && some&(digit|upper) != 0
	}
	return false
}

// Valid tells whether line (without its line ending) is a valid identifier
// of dataType, by the rules documented on Phone and OpenID. A stream that
// transforms lines instead of checking them uses it to tell members from
// invalid lines.
func Valid(dataType DataType, line []byte) bool {
	return (&Checker{dataType: dataType}).valid(line)
}

// LooksLikeHeader tells whether line, the first of a file of dataType, reads
// like a column name rather than data (see looksLikeHeader). A stream that
// transforms lines instead of checking them uses it to flag a header row.
func LooksLikeHeader(dataType DataType, line []byte) bool {
	return (&Checker{dataType: dataType}).looksLikeHeader(line)
}

// looksLikeHeader tells whether line 1 reads like a column name rather than
// data: words of letters (any script), digits, spaces, '_', '-' or '.', with
// a letter no identifier of the data type would have. For Phone that is any
// letter outside a-f; for OpenID a word without digits that is lower case,
// non-ASCII, or has "id" in it ("openid", "OpenID", "open_id").
func (c *Checker) looksLikeHeader(line []byte) bool {
	if len(line) == 0 || len(line) > maxLineLen {
		return false
	}
	all, some := classify(line)
	if all&headerChar == 0 {
		return false
	}
	switch c.dataType {
	case Phone:
		return some&nonHexLetter != 0
	case OpenID:
		word := some&letter != 0 && some&digit == 0
		return word && (some&upper == 0 || some&nonASCII != 0 || containsID(line))
	}
	return false
}

func containsID(line []byte) bool {
	return bytes.Contains(bytes.ToLower(line), []byte("id"))
}

// Character classes, looked up per byte so a line is checked in one pass.
const (
	hexChar      uint8 = 1 << iota // 0-9 a-f A-F
	idChar                         // A-Z a-z 0-9 _ -
	digit                          // 0-9
	upper                          // A-Z
	letter                         // A-Z a-z, or any byte of a non-ASCII UTF-8 character
	nonHexLetter                   // a letter outside a-f A-F
	nonASCII                       // any byte of a non-ASCII UTF-8 character
	headerChar                     // letter, digit, space, _ - .
)

var classes = func() (t [256]uint8) {
	for b := 0; b < 256; b++ {
		switch {
		case b >= '0' && b <= '9':
			t[b] = hexChar | idChar | digit | headerChar
		case b >= 'a' && b <= 'f', b >= 'A' && b <= 'F':
			t[b] = hexChar | idChar | letter | headerChar
		case b >= 'g' && b <= 'z', b >= 'G' && b <= 'Z':
			t[b] = idChar | letter | nonHexLetter | headerChar
		case b == '_' || b == '-':
			t[b] = idChar | headerChar
		case b == ' ' || b == '.':
			t[b] = headerChar
		case b >= 0x80:
			t[b] = letter | nonHexLetter | nonASCII | headerChar
		}
		if b >= 'A' && b <= 'Z' {
			t[b] |= upper
		}
	}
	return t
}()

// classify returns the classes all bytes of line have, and the classes some
// byte has.
func classify(line []byte) (all, some uint8) {
	all = 0xFF
	for _, b := range line {
		cl := classes[b]
		all &= cl
		some |= cl
	}
	return all, some
}
