package rawphone_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/crowdpack/crowdpack/internal/linecheck"
	"github.com/crowdpack/crowdpack/internal/rawphone"
)

// md5Line is the uploaded line of a number, computed apart from the package.
func md5Line(number string) string {
	sum := md5.Sum([]byte(number))
	return hex.EncodeToString(sum[:]) + "\n"
}

func TestHashLine(t *testing.T) {
	cases := []struct {
		name string
		line string
		// want is the 11 digits hashed; empty: the line is invalid.
		want string
	}{
		{"11 digits starting with 1 are a number", "13800138000", "13800138000"},
		{"spaces between the digits are removed", "138 0013 8000", "13800138000"},
		{"dashes between the digits are removed", "138-0013-8000", "13800138000"},
		{"parentheses around the prefix are removed", "(138)00138000", "13800138000"},
		{"surrounding spaces are removed", "  13800138000 ", "13800138000"},
		{"a leading +86 is removed", "+8613800138000", "13800138000"},
		{"a leading +86 with separators is removed", "+86 138-0013-8000", "13800138000"},
		{"a leading (+86) is removed", "(+86) 138 0013 8000", "13800138000"},
		{"a leading 0086 is removed", "008613800138000", "13800138000"},
		{"a leading 0086 with a space is removed", "0086 138 0013 8000", "13800138000"},
		{"a leading 86 is removed", "8613800138000", "13800138000"},
		{"a leading 86 with a dash is removed", "86-138-0013-8000", "13800138000"},
		{"10 digits are invalid", "1380013800", ""},
		{"12 digits are invalid", "138001380001", ""},
		{"11 digits not starting with 1 are invalid", "23800138000", ""},
		{"a + before a number without 86 is invalid", "+13800138000", ""},
		{"another country code is invalid", "+85213800138000", ""},
		{"86 before 10 digits is invalid", "861380013800", ""},
		{"0086 before 12 digits is invalid", "0086138001380001", ""},
		{"a + inside the number is invalid", "138+0013+8000", ""},
		{"two + signs are invalid", "++8613800138000", ""},
		{"a letter is invalid", "1380013800a", ""},
		{"dots are invalid", "138.0013.8000", ""},
		{"a tab is invalid", "138\t00138000", ""},
		{"full-width digits are invalid", "１３８００１３８０００", ""},
		{"an MD5 hash is invalid", "e10adc3949ba59abbe56e057f20f883e", ""},
		{"only separators are invalid", " - ( ) ", ""},
		{"a number padded past 64 bytes is invalid", "13800138000" + strings.Repeat(" ", 54), ""},
		{"a column name is invalid", "phone", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var dst [rawphone.LineLen]byte
			ok := rawphone.HashLine(&dst, []byte(tc.line))
			if ok != (tc.want != "") {
				t.Fatalf("HashLine(%q) = %v, want %v", tc.line, ok, tc.want != "")
			}
			if ok && string(dst[:]) != md5Line(tc.want) {
				t.Errorf("HashLine(%q) wrote %q, want the MD5 of %s", tc.line, dst, tc.want)
			}
		})
	}
}

// n1 and n2 are the uploaded lines of two numbers.
var n1, n2 = md5Line("13800138000"), md5Line("13912345678")

// hasherCases are streams of raw lines with what they hash to.
var hasherCases = []struct {
	name       string
	firstLine  int64
	input      string
	want       string
	wantReport linecheck.Report
}{
	{
		name:       "an empty stream has no lines",
		firstLine:  1,
		input:      "",
		wantReport: linecheck.Report{},
	},
	{
		name:       "every line becomes its MD5 line",
		firstLine:  1,
		input:      "13800138000\n+86 139-1234-5678\n",
		want:       n1 + n2,
		wantReport: linecheck.Report{Lines: 2},
	},
	{
		name:       "CRLF endings are flagged and the lines stay numbers",
		firstLine:  1,
		input:      "13800138000\r\n8613912345678\r\n",
		want:       n1 + n2,
		wantReport: linecheck.Report{Lines: 2, CRLF: true},
	},
	{
		name:       "a last line without newline is hashed",
		firstLine:  1,
		input:      "13800138000\n0086 13912345678",
		want:       n1 + n2,
		wantReport: linecheck.Report{Lines: 2},
	},
	{
		name:       "a last line without newline ending in CR is hashed",
		firstLine:  1,
		input:      "13800138000\r",
		want:       n1,
		wantReport: linecheck.Report{Lines: 1, CRLF: true},
	},
	{
		name:       "empty lines are skipped, not invalid",
		firstLine:  1,
		input:      "\n13800138000\n\r\n\n13912345678\n\n",
		want:       n1 + n2,
		wantReport: linecheck.Report{Lines: 2, EmptyLines: 4, CRLF: true},
	},
	{
		name:       "invalid lines are left out and reported by number",
		firstLine:  1,
		input:      "13800138000\n1380013800\nabc\n13912345678\n+1 555 0100\n",
		want:       n1 + n2,
		wantReport: linecheck.Report{Lines: 5, InvalidLines: 3, FirstInvalidLineNumbers: []int64{2, 3, 5}},
	},
	{
		name:       "only the first five invalid line numbers are listed",
		firstLine:  1,
		input:      "13800138000\n" + strings.Repeat("0\n", 7),
		want:       n1,
		wantReport: linecheck.Report{Lines: 8, InvalidLines: 7, FirstInvalidLineNumbers: []int64{2, 3, 4, 5, 6}},
	},
	{
		name:       "a header row on line 1 is flagged and left out",
		firstLine:  1,
		input:      "手机号\r\n13800138000\r\n",
		want:       n1,
		wantReport: linecheck.Report{Lines: 2, InvalidLines: 1, HeaderRow: true, CRLF: true, FirstInvalidLineNumbers: []int64{1}},
	},
	{
		name:       "a byte order mark is flagged and makes line 1 invalid",
		firstLine:  1,
		input:      "\ufeff13800138000\n13912345678\n",
		want:       n2,
		wantReport: linecheck.Report{Lines: 2, InvalidLines: 1, BOM: true, FirstInvalidLineNumbers: []int64{1}},
	},
	{
		name:       "a very long line is one invalid line",
		firstLine:  1,
		input:      strings.Repeat("1", 10_000) + "\r\n13800138000\n",
		want:       n1,
		wantReport: linecheck.Report{Lines: 2, InvalidLines: 1, CRLF: true, FirstInvalidLineNumbers: []int64{1}},
	},
	{
		name:       "lines are numbered from the first line given",
		firstLine:  1001,
		input:      "13800138000\nphone\n",
		want:       n1,
		wantReport: linecheck.Report{Lines: 2, InvalidLines: 1, FirstInvalidLineNumbers: []int64{1002}},
	},
}

func TestHasher(t *testing.T) {
	for _, tc := range hasherCases {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{len(tc.input) + 1, 1, 3, 13, 33} {
				out, report := hashByWriter(tc.input, tc.firstLine, size)
				checkHashed(t, "written "+strconv.Itoa(size)+" bytes at a time", out, report, tc.want, tc.wantReport)
			}
			for _, r := range []func(io.Reader) io.Reader{identity, iotest.OneByteReader, iotest.DataErrReader} {
				out, report := hashByReader(tc.input, tc.firstLine, r)
				checkHashed(t, "read", out, report, tc.want, tc.wantReport)
			}
		})
	}
}

func identity(r io.Reader) io.Reader { return r }

func hashByWriter(input string, firstLine int64, size int) (string, linecheck.Report) {
	var out bytes.Buffer
	h := rawphone.NewHasher(firstLine)
	w := rawphone.NewWriter(&out, h)
	for p := []byte(input); len(p) > 0; p = p[min(size, len(p)):] {
		_, _ = w.Write(p[:min(size, len(p))])
	}
	_ = w.Close()
	return out.String(), h.Report()
}

func hashByReader(input string, firstLine int64, wrap func(io.Reader) io.Reader) (string, linecheck.Report) {
	h := rawphone.NewHasher(firstLine)
	out, err := io.ReadAll(rawphone.NewReader(wrap(strings.NewReader(input)), h))
	if err != nil {
		panic(err)
	}
	return string(out), h.Report()
}

func checkHashed(t *testing.T, how, out string, report linecheck.Report, want string, wantReport linecheck.Report) {
	t.Helper()
	if out != want {
		t.Errorf("%s: hashed to %q, want %q", how, out, want)
	}
	if !reflect.DeepEqual(report, wantReport) {
		t.Errorf("%s: report\n%+v, want\n%+v", how, report, wantReport)
	}
}

func TestReaderPassesReadErrorsOn(t *testing.T) {
	broken := io.MultiReader(strings.NewReader("13800138000\n"), iotest.ErrReader(io.ErrClosedPipe))
	_, err := io.ReadAll(rawphone.NewReader(broken, rawphone.NewHasher(1)))
	if err != io.ErrClosedPipe {
		t.Fatalf("ReadAll error = %v, want %v", err, io.ErrClosedPipe)
	}
}

func TestHashingAllocatesNothing(t *testing.T) {
	input := []byte(strings.Repeat("+86 138-0013-8000\r\n\n12345\n", 100))
	h := rawphone.NewHasher(1)
	dst := make([]byte, 64<<10)
	allocs := testing.AllocsPerRun(100, func() {
		h.Transform(dst, input, false) // the 5 invalid line numbers listed come from the first run
	})
	if allocs != 0 {
		t.Errorf("Transform allocates %.1f times per call, want 0", allocs)
	}
}

// BenchmarkHasher hashes ~32 MiB of raw numbers in mixed forms, 256 KiB at
// a time, and reports raw MB/s and lines/s.
func BenchmarkHasher(b *testing.B) {
	forms := []string{"13800138000\n", "+86 138-0013-8000\n", "8613912345678\r\n", "0086 (139) 1234 5678\n"}
	var raw bytes.Buffer
	lines := 0
	for raw.Len() < 32<<20 {
		raw.WriteString(forms[lines%len(forms)])
		lines++
	}
	in, out := raw.Bytes(), make([]byte, 32<<10)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		h := rawphone.NewHasher(1)
		for p := in; len(p) > 0; {
			chunk := p[:min(256<<10, len(p))]
			for len(chunk) > 0 {
				_, nSrc := h.Transform(out, chunk, false)
				chunk, p = chunk[nSrc:], p[nSrc:]
			}
		}
		if h.Uploaded() != int64(lines) {
			b.Fatalf("hashed %d lines, want %d", h.Uploaded(), lines)
		}
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
