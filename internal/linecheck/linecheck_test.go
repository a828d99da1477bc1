package linecheck

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	md5Line    = "e10adc3949ba59abbe56e057f20f883e"
	openIDLine = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
)

func TestChecker(t *testing.T) {
	cases := []struct {
		name       string
		dataType   DataType
		skipHeader bool
		input      string
		want       Report
	}{
		{
			name:     "an empty file has no lines",
			dataType: Phone,
			input:    "",
			want:     Report{},
		},
		{
			name:     "lower-case MD5 hex lines are valid phones",
			dataType: Phone,
			input:    md5Line + "\n" + md5Line + "\n",
			want:     Report{Lines: 2},
		},
		{
			name:     "upper-case MD5 hex is accepted too",
			dataType: Phone,
			input:    strings.ToUpper(md5Line) + "\n",
			want:     Report{Lines: 1},
		},
		{
			name:     "a final line without newline is counted",
			dataType: Phone,
			input:    md5Line + "\n" + md5Line,
			want:     Report{Lines: 2},
		},
		{
			name:     "a plain mobile number is not an MD5 hash",
			dataType: Phone,
			input:    md5Line + "\n13800138000\n",
			want:     Report{Lines: 2, InvalidLines: 1, FirstInvalidLineNumbers: []int64{2}},
		},
		{
			name:     "31 or 33 hex characters are invalid",
			dataType: Phone,
			input:    md5Line[1:] + "\n" + md5Line + "0\n",
			want:     Report{Lines: 2, InvalidLines: 2, FirstInvalidLineNumbers: []int64{1, 2}},
		},
		{
			name:     "surrounding spaces make a line invalid",
			dataType: Phone,
			input:    " " + md5Line + "\n" + md5Line + " \n",
			want:     Report{Lines: 2, InvalidLines: 2, FirstInvalidLineNumbers: []int64{1, 2}},
		},
		{
			name:     "CRLF line endings are flagged but the lines stay valid",
			dataType: Phone,
			input:    md5Line + "\r\n" + md5Line + "\r\n",
			want:     Report{Lines: 2, CRLF: true},
		},
		{
			name:     "a carriage return inside a line makes it invalid",
			dataType: Phone,
			input:    md5Line[:16] + "\r" + md5Line[16:] + "\n",
			want:     Report{Lines: 1, InvalidLines: 1, FirstInvalidLineNumbers: []int64{1}},
		},
		{
			name:     "empty lines are counted apart, a lone CR included",
			dataType: Phone,
			input:    md5Line + "\n\n\r\n" + md5Line + "\n",
			want:     Report{Lines: 2, EmptyLines: 2, CRLF: true},
		},
		{
			name:     "a header row is flagged and counted invalid",
			dataType: Phone,
			input:    "phone\n" + md5Line + "\n",
			want:     Report{Lines: 2, InvalidLines: 1, HeaderRow: true, FirstInvalidLineNumbers: []int64{1}},
		},
		{
			name:     "a Chinese header row is flagged",
			dataType: Phone,
			input:    "手机号md5\r\n" + md5Line + "\r\n",
			want:     Report{Lines: 2, InvalidLines: 1, HeaderRow: true, CRLF: true, FirstInvalidLineNumbers: []int64{1}},
		},
		{
			name:     "a header-like word after line 1 is only an invalid line",
			dataType: Phone,
			input:    md5Line + "\nphone\n",
			want:     Report{Lines: 2, InvalidLines: 1, FirstInvalidLineNumbers: []int64{2}},
		},
		{
			name:     "a byte order mark is flagged and makes line 1 invalid",
			dataType: Phone,
			input:    "\ufeff" + md5Line + "\n" + md5Line + "\n",
			want:     Report{Lines: 2, InvalidLines: 1, BOM: true, FirstInvalidLineNumbers: []int64{1}},
		},
		{
			name:     "a byte order mark before a header flags both",
			dataType: OpenID,
			input:    "\ufeffopenid\n" + openIDLine + "\n",
			want:     Report{Lines: 2, InvalidLines: 1, BOM: true, HeaderRow: true, FirstInvalidLineNumbers: []int64{1}},
		},
		{
			name:     "only the first five invalid line numbers are listed",
			dataType: Phone,
			input:    strings.Repeat("x\n", 7),
			want:     Report{Lines: 7, InvalidLines: 7, HeaderRow: true, FirstInvalidLineNumbers: []int64{1, 2, 3, 4, 5}},
		},
		{
			name:     "a 28-character openid is valid",
			dataType: OpenID,
			input:    openIDLine + "\n",
			want:     Report{Lines: 1},
		},
		{
			name:     "openids from 6 to 64 characters are plausible",
			dataType: OpenID,
			input:    "o1_a-B\n" + strings.Repeat("Ab1_", 16) + "\n",
			want:     Report{Lines: 2},
		},
		{
			name:     "openids shorter than 6 or longer than 64 characters are invalid",
			dataType: OpenID,
			input:    "o1_aB\n" + strings.Repeat("Ab1_", 16) + "x\n",
			want:     Report{Lines: 2, InvalidLines: 2, FirstInvalidLineNumbers: []int64{1, 2}},
		},
		{
			name:     "an openid with a character outside [A-Za-z0-9_-] is invalid",
			dataType: OpenID,
			input:    openIDLine + "\n" + openIDLine[:27] + "=\n",
			want:     Report{Lines: 2, InvalidLines: 1, FirstInvalidLineNumbers: []int64{2}},
		},
		{
			name:     "a lower-case word is a header, not an openid",
			dataType: OpenID,
			input:    "user_openid\n" + openIDLine + "\n",
			want:     Report{Lines: 2, InvalidLines: 1, HeaderRow: true, FirstInvalidLineNumbers: []int64{1}},
		},
		{
			name:     "a capitalised OpenID column name on line 1 is a header",
			dataType: OpenID,
			input:    "OpenID\r\n" + openIDLine + "\r\n",
			want:     Report{Lines: 2, InvalidLines: 1, HeaderRow: true, CRLF: true, FirstInvalidLineNumbers: []int64{1}},
		},
		{
			name:     "an MD5 hash is a plausible openid",
			dataType: OpenID,
			input:    md5Line + "\n",
			want:     Report{Lines: 1},
		},
		{
			name:       "a skipped header row is neither counted nor flagged",
			dataType:   Phone,
			skipHeader: true,
			input:      "\ufeffphone\r\n" + md5Line + "\r\n",
			want:       Report{Lines: 1, CRLF: true},
		},
		{
			name:       "a skipped line 1 is not checked even when it is a valid MD5 line",
			dataType:   Phone,
			skipHeader: true,
			input:      md5Line + "\nbad\n",
			want:       Report{Lines: 1, InvalidLines: 1, FirstInvalidLineNumbers: []int64{2}},
		},
		{
			name:       "a very long skipped line is not counted",
			dataType:   OpenID,
			skipHeader: true,
			input:      strings.Repeat("x", 1000) + "\n" + openIDLine + "\n",
			want:       Report{Lines: 1},
		},
		{
			name:       "after a skipped header row lines keep their numbers in the file",
			dataType:   Phone,
			skipHeader: true,
			input:      "phone\n" + md5Line + "\n\nbad\n",
			want:       Report{Lines: 2, InvalidLines: 1, EmptyLines: 1, FirstInvalidLineNumbers: []int64{4}},
		},
		{
			name:     "a very long line is one invalid line and no header",
			dataType: OpenID,
			input:    strings.Repeat("a", 10_000) + "\r\n" + openIDLine + "\n",
			want:     Report{Lines: 2, InvalidLines: 1, CRLF: true, FirstInvalidLineNumbers: []int64{1}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{len(tc.input) + 1, 1, 3, 33} {
				c := mustNew(t, tc.dataType)
				if tc.skipHeader {
					c.SkipHeaderRow()
				}
				writeInChunks(c, []byte(tc.input), chunk)
				if diff := cmp.Diff(tc.want, c.Report()); diff != "" {
					t.Errorf("written in chunks of %d: report mismatch (-want +got):\n%s", chunk, diff)
				}
			}
		})
	}
}

func TestLooksLikeHeaderAgreesWithTheChecker(t *testing.T) {
	lines := []string{"phone", "手机号", "+86 138-0013-8000", md5Line, "openid", "OpenID", openIDLine, ""}
	for _, dataType := range []DataType{Phone, OpenID} {
		for _, line := range lines {
			c := mustNew(t, dataType)
			writeString(c, line+"\n")
			if got, want := LooksLikeHeader(dataType, []byte(line)), c.Report().HeaderRow; got != want {
				t.Errorf("LooksLikeHeader(%s, %q) = %v, but the checker flags a header row: %v", dataType, line, got, want)
			}
		}
	}
}

func TestNewRejectsAnUnknownDataType(t *testing.T) {
	if _, err := New("Email"); err == nil {
		t.Fatal("New(Email) succeeded, want an error")
	}
}

func TestReportDoesNotChangeTheChecker(t *testing.T) {
	c := mustNew(t, Phone)
	writeString(c, "bad\n"+md5Line[:10])
	first := c.Report()
	writeString(c, md5Line[10:]+"\nbad\n")
	want := Report{Lines: 3, InvalidLines: 2, FirstInvalidLineNumbers: []int64{1, 3}}
	if diff := cmp.Diff(want, c.Report()); diff != "" {
		t.Errorf("report after more writes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{1, 2}, first.FirstInvalidLineNumbers); diff != "" {
		t.Errorf("earlier report changed (-want +got):\n%s", diff)
	}
}

func FuzzChecker(f *testing.F) {
	for _, seed := range []string{
		"", "\n", "\r\n", "\r", md5Line + "\n", md5Line + "\r\n" + md5Line,
		"\ufeffphone\n" + md5Line, openIDLine + "\n\n" + openIDLine,
		strings.Repeat("x", 300) + "\r\n" + md5Line, "a\rb\n\r\r\n",
	} {
		f.Add([]byte(seed), uint64(1), false)
		f.Add([]byte(seed), uint64(7), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, openID bool) {
		dataType := Phone
		if openID {
			dataType = OpenID
		}
		checkEveryWay(t, dataType, data, seed)
		checkEveryWay(t, dataType, amidValidLines(data, seed), seed)
	})
}

// checkEveryWay checks data written whole and at random points, with each
// fast path, against checking every line one by one.
func checkEveryWay(t *testing.T, dataType DataType, data []byte, seed uint64) {
	slow := mustNew(t, dataType)
	slow.noFastPath = true
	slow.Write(data)
	want := slow.Report()

	if got, lines := want.Lines+want.EmptyLines, countLines(data); got != lines {
		t.Errorf("Lines+EmptyLines = %d, want %d lines", got, lines)
	}
	if want.InvalidLines > want.Lines {
		t.Errorf("InvalidLines %d > Lines %d", want.InvalidLines, want.Lines)
	}

	for _, path := range fastPaths() {
		whole := path.newChecker(t, dataType)
		whole.Write(data)
		if diff := cmp.Diff(want, whole.Report()); diff != "" {
			t.Errorf("%s reports otherwise (-line by line +fast):\n%s", path.name, diff)
		}

		split := path.newChecker(t, dataType)
		writeAtRandomPoints(split, data, rand.New(rand.NewPCG(seed, seed)))
		if diff := cmp.Diff(want, split.Report()); diff != "" {
			t.Errorf("%s, written at random points, reports otherwise (-line by line +split):\n%s", path.name, diff)
		}
	}
}

// amidValidLines puts data after up to a group of valid phone lines, as
// many as seed says, and before two groups: the fuzzer's bytes then fall
// at every place in a group the assembly checks.
func amidValidLines(data []byte, seed uint64) []byte {
	before := int(seed % phoneGroupLines)
	line := md5Line + "\n"
	return slices.Concat([]byte(strings.Repeat(line, before)), data, []byte(strings.Repeat(line, 2*phoneGroupLines)))
}

// BenchmarkChecker checks ~64 MiB of MD5 phone lines written in 256 KiB
// chunks, with the Go path alone and with AVX2, and hashes them with
// SHA-256, which the checks run beside. Besides MB/s each reports
// "cpu-GB/s", the bytes per second of the thread's CPU time, which other
// work on a shared machine moves far less.
func BenchmarkChecker(b *testing.B) {
	const chunk = 256 << 10
	data := phoneLines(64 << 20)
	check := func(b *testing.B, pureGo bool) {
		perThreadCPU(b, data, func() {
			c := mustNew(b, Phone)
			c.pureGo = pureGo
			writeInChunks(c, data, chunk)
			if r := c.Report(); r.InvalidLines != 0 {
				b.Fatalf("invalid lines in generated data: %+v", r)
			}
		})
	}
	b.Run("pure Go", func(b *testing.B) { check(b, true) })
	b.Run("AVX2", func(b *testing.B) {
		if !haveAVX2 {
			b.Skip("the CPU has no AVX2")
		}
		check(b, false)
	})
	b.Run("SHA-256", func(b *testing.B) {
		perThreadCPU(b, data, func() { writeInChunks(sha256.New(), data, chunk) })
	})
}

// perThreadCPU runs process, which goes over data once, as often as b asks,
// and reports "cpu-GB/s" besides MB/s.
func perThreadCPU(b *testing.B, data []byte, process func()) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, runs := threadCPU(b), 0
	for b.Loop() {
		process()
		runs++
	}
	b.ReportMetric(float64(runs*len(data))/float64(threadCPU(b)-start), "cpu-GB/s")
}

// threadCPU is the CPU time, in nanoseconds, of the calling thread.
func threadCPU(b *testing.B) int64 {
	const rusageThread = 1 // RUSAGE_THREAD, Linux
	var usage syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &usage); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return usage.Utime.Nano() + usage.Stime.Nano()
}

// phoneLines returns about size bytes of distinct MD5 hex lines.
func phoneLines(size int) []byte {
	var buf bytes.Buffer
	buf.Grow(size + 33)
	for i := 0; buf.Len() < size; i++ {
		sum := md5.Sum(fmt.Appendf(nil, "1380013%04d", i))
		buf.WriteString(hex.EncodeToString(sum[:]))
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

func mustNew(t testing.TB, dataType DataType) *Checker {
	t.Helper()
	c, err := New(dataType)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeString(c *Checker, s string) { c.Write([]byte(s)) }

func writeInChunks(w io.Writer, data []byte, size int) {
	for len(data) > 0 {
		n := min(size, len(data))
		w.Write(data[:n])
		data = data[n:]
	}
}

func writeAtRandomPoints(c *Checker, data []byte, rnd *rand.Rand) {
	for len(data) > 0 {
		n := rnd.IntN(len(data) + 1)
		c.Write(data[:n])
		data = data[n:]
	}
}

// countLines counts newline-terminated lines plus an unterminated last one.
func countLines(data []byte) int64 {
	n := int64(bytes.Count(data, []byte("\n")))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return n
}

// TestIsHex32AgreesWithTheCharacterTable puts every byte value at every
// position of a valid line: the eight-bytes-at-a-time check must agree with
// the per-byte table the other checks use.
func TestIsHex32AgreesWithTheCharacterTable(t *testing.T) {
	for pos := range 32 {
		for b := range 256 {
			line := []byte(md5Line)
			line[pos] = byte(b)
			all, _ := classify(line)
			if want := all&hexChar != 0; isHex32(line) != want {
				t.Fatalf("isHex32 with byte %#x at %d = %v, want %v", b, pos, !want, want)
			}
		}
	}
}

// randomLines returns about size bytes of lines of the kinds a file holds:
// mostly valid phone lines, and now and then an invalid or a header-like
// line, an empty one, "\r\n", a lone "\r", an upper-case hash, a BOM.
func randomLines(rng *rand.Rand, size int) []byte {
	pieces := []string{
		"\n", "\r\n", "\r", "phone\n", "\ufeff", md5Line[:31] + "\n", md5Line + "0\n",
		strings.ToUpper(md5Line) + "\n", md5Line + "\r\n", "13800138000\n", md5Line[:16] + "g" + md5Line[17:] + "\n",
		strings.Repeat("x", 200) + "\n", openIDLine + "\n", md5Line[:5] + "\x80" + md5Line[6:] + "\n",
	}
	var b bytes.Buffer
	for b.Len() < size {
		if rng.IntN(10) < 8 {
			for range 1 + rng.IntN(50) {
				b.WriteString(md5Line + "\n")
			}
		} else {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
	}
	return b.Bytes()
}

// The fast path of valid phone lines reports exactly what checking every
// line one by one does, however the bytes are written, and the runs it
// hands out are valid phone lines, each "\n" included.
func TestTheFastPathReportsAsLineByLine(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		data := randomLines(rng, 1+rng.IntN(20_000))
		for _, dataType := range []DataType{Phone, OpenID} {
			for _, skipHeader := range []bool{false, true} {
				slow := mustNew(t, dataType)
				slow.noFastPath = true
				if skipHeader {
					slow.SkipHeaderRow()
				}
				writeInChunks(slow, data, len(data)+1)
				for _, path := range fastPaths() {
					fast := path.newChecker(t, dataType)
					if skipHeader {
						fast.SkipHeaderRow()
					}
					for p := data; len(p) > 0; {
						n := min(len(p), 1+rng.IntN(4096))
						checkRuns(t, p[:n], fast.WriteRuns(p[:n], nil))
						p = p[n:]
					}
					if diff := cmp.Diff(slow.Report(), fast.Report()); diff != "" {
						t.Fatalf("round %d, %s, %s, skip header %v: report mismatch (-line by line +fast):\n%s", round, path.name, dataType, skipHeader, diff)
					}
				}
			}
		}
	}
}

// A fastPath is a way the checker can count valid phone lines.
type fastPath struct {
	name   string
	pureGo bool
}

// fastPaths are the fast paths this CPU can take: the Go path alone, and
// AVX2 where the CPU has it.
func fastPaths() []fastPath {
	paths := []fastPath{{name: "pure Go", pureGo: true}}
	if haveAVX2 {
		paths = append(paths, fastPath{name: "AVX2"})
	}
	return paths
}

func (f fastPath) newChecker(t testing.TB, dataType DataType) *Checker {
	c := mustNew(t, dataType)
	c.pureGo = f.pureGo
	return c
}

// checkRuns fails unless runs are in order, inside p and made of valid
// phone lines.
func checkRuns(t *testing.T, p []byte, runs []Run) {
	t.Helper()
	end := 0
	for _, r := range runs {
		if r.Start < end || r.Lines < 1 || r.End() > len(p) {
			t.Fatalf("run %+v out of order or outside the %d bytes written (last end %d)", r, len(p), end)
		}
		for line := range r.Lines {
			at := r.Start + line*PhoneLineLen
			if p[at+32] != '\n' || !Valid(Phone, p[at:at+32]) {
				t.Fatalf("run %+v: line at %d is no valid phone line: %q", r, at, p[at:at+PhoneLineLen])
			}
		}
		end = r.End()
	}
}

// TestAreFourPhoneLinesAgreesWithOneLineAtATime puts every byte value at
// every position of four valid lines, and of a group of the assembly's: the
// checks of many lines at once must agree with checking each line alone.
func TestAreFourPhoneLinesAgreesWithOneLineAtATime(t *testing.T) {
	cases := []struct {
		name      string
		lines     int
		needsAVX2 bool
		valid     func(q []byte) bool
	}{
		{
			name:  "four lines eight bytes at a time",
			lines: 4,
			valid: func(q []byte) bool { return areFourPhoneLines((*[4 * PhoneLineLen]byte)(q)) },
		},
		{
			name:      "a group of 32 lines with AVX2",
			lines:     phoneGroupLines,
			needsAVX2: true,
			valid:     func(q []byte) bool { return countPhoneGroupLines(q) == phoneGroupLines },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needsAVX2 && !haveAVX2 {
				t.Skip("the CPU has no AVX2")
			}
			valid := strings.Repeat(md5Line+"\n", tc.lines)
			for pos := range len(valid) {
				for b := range 256 {
					q := []byte(valid)
					q[pos] = byte(b)
					want := true
					for line := q; len(line) > 0; line = line[PhoneLineLen:] {
						want = want && line[32] == '\n' && isHex32(line)
					}
					if got := tc.valid(q); got != want {
						t.Fatalf("byte %#x at %d: valid = %v, want %v", b, pos, got, want)
					}
				}
			}
		})
	}
}

// The AVX2 path counts what the Go path does, and reports what checking
// every line one by one does, when one byte anywhere in a group of lines is
// out of place, however the bytes are written.
func TestTheAVX2PathAgreesWithPureGoAndLineByLine(t *testing.T) {
	if !haveAVX2 {
		t.Skip("the CPU has no AVX2")
	}
	cases := []struct {
		name   string
		b      byte
		insert bool // before the byte at the position instead of over it
	}{
		{name: "a newline out of place splits a line or joins two", b: '\n'},
		{name: "a hex digit where the newline belongs joins two lines", b: '0'},
		{name: "'g', just past 'f', is no hex character", b: 'g'},
		{name: "'G', just past 'F', is none either", b: 'G'},
		{name: "'/', just below '0', is none", b: '/'},
		{name: "':', just past '9', is none", b: ':'},
		{name: "'@', just below 'A', is none", b: '@'},
		{name: "'`', just below 'a', is none", b: '`'},
		{name: "'J' has the low nibble of a newline and the high one of a letter", b: 'J'},
		{name: "0x1A has the low nibble of a newline but not its high one", b: 0x1A},
		{name: "a NUL byte is no hex character", b: 0},
		{name: "0x80, the first byte beyond ASCII, is none", b: 0x80},
		{name: "0xB0 is '0' with the high bit set", b: 0xB0},
		{name: "0x8A is a newline with the high bit set", b: 0x8A},
		{name: "0xFF, the last byte value, is none", b: 0xFF},
		{name: "a carriage return before a newline ends a 31-character line", b: '\r'},
		{name: "an extra carriage return before a newline makes a valid CRLF line", b: '\r', insert: true},
		{name: "an extra hex character makes a line of 33", b: 'a', insert: true},
	}
	rng := rand.New(rand.NewPCG(5, 6))
	groupLen := phoneGroupLines * PhoneLineLen
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for pos := range groupLen {
				data := randomPhoneLines(rng, 2*phoneGroupLines+1+rng.IntN(phoneGroupLines))
				data = data[:len(data)-rng.IntN(PhoneLineLen)] // a last line cut short
				at := rng.IntN(2)*groupLen + pos
				if tc.insert {
					data = slices.Insert(data, at, tc.b)
				} else {
					data[at] = tc.b
				}
				agreeWithPureGoAndLineByLine(t, data, rng)
			}
		})
	}
}

// agreeWithPureGoAndLineByLine fails unless the AVX2 path finds in data
// the runs the Go path finds, and both report what checking line by line
// does, written whole and at random points.
func agreeWithPureGoAndLineByLine(t *testing.T, data []byte, rng *rand.Rand) {
	t.Helper()
	slow := mustNew(t, Phone)
	slow.noFastPath = true
	slow.Write(data)
	want := slow.Report()

	pureGo := fastPath{pureGo: true}.newChecker(t, Phone)
	wantRuns := pureGo.WriteRuns(data, nil)
	avx2 := fastPath{}.newChecker(t, Phone)
	gotRuns := avx2.WriteRuns(data, nil)
	if diff := cmp.Diff(wantRuns, gotRuns); diff != "" {
		t.Fatalf("runs of valid lines in %q (-pure Go +AVX2):\n%s", data, diff)
	}
	split := mustNew(t, Phone)
	writeAtRandomPoints(split, data, rng)
	for name, got := range map[string]Report{"pure Go": pureGo.Report(), "AVX2": avx2.Report(), "AVX2 at random points": split.Report()} {
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s reports otherwise on %q (-line by line +fast):\n%s", name, data, diff)
		}
	}
}

// randomPhoneLines returns lines valid phone lines of random hex
// characters, upper and lower case.
func randomPhoneLines(rng *rand.Rand, lines int) []byte {
	const hexChars = "0123456789abcdefABCDEF"
	b := make([]byte, 0, lines*PhoneLineLen)
	for range lines {
		for range 32 {
			b = append(b, hexChars[rng.IntN(len(hexChars))])
		}
		b = append(b, '\n')
	}
	return b
}
