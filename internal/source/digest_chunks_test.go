package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"

	"github.com/crowdpack/crowdpack/internal/linecheck"
)

// numberedLines is n lines of 15 digits and a newline: 16 bytes a line, so
// 16,384 lines fill one digest buffer exactly.
func numberedLines(from, n int) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf("%015d\n", from+i)
	}
	return lines
}

// phoneLinesFrom is n valid phone lines, 32 hex digits of a number and a
// newline each.
func phoneLinesFrom(from, n int) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf("%032x\n", from+i)
	}
	return lines
}

// inUploadsOfNonEmpty groups lines into uploads of at most max non-empty
// lines each, an empty line ("\n" or "\r\n") going with the line before.
func inUploadsOfNonEmpty(max int, lines []string) []string {
	var uploads []string
	var upload strings.Builder
	nonEmpty := 0
	for _, line := range lines {
		if empty := line == "\n" || line == "\r\n"; !empty {
			if nonEmpty == max {
				uploads = append(uploads, upload.String())
				upload.Reset()
				nonEmpty = 0
			}
			nonEmpty++
		}
		upload.WriteString(line)
	}
	return append(uploads, upload.String())
}

// inUploadsOf groups lines into uploads of at most max lines each.
func inUploadsOf(max int, lines []string) []string {
	var uploads []string
	for len(lines) > max {
		uploads = append(uploads, strings.Join(lines[:max], ""))
		lines = lines[max:]
	}
	return append(uploads, strings.Join(lines, ""))
}

// The file's digest and every upload's are the SHA-256 of their bytes, whether
// the file is one upload (its one hash then serves both), cut or hashed.
func TestDigestChunksDigestsAreTheSHA256OfTheBytes(t *testing.T) {
	const perBuffer = digestBufferSize / 16
	big := numberedLines(0, 4*perBuffer+7)
	// perBuffer lines that fill the first buffer but its last byte.
	crAtBufferEnd := strings.Join(big[:perBuffer-1], "") + "12345678901234\n"
	// Valid phone lines, which the line checker hands the cutter as runs,
	// over several buffers; and the same with a line of each other kind.
	phones := phoneLinesFrom(0, 3*digestBufferSize/linecheck.PhoneLineLen)
	mixed := slices.Concat(phones[:9000], []string{"bad\n", "\r\n", phones[0][:32] + "\r\n", "\n"}, phones[9000:])
	cases := []struct {
		name    string
		content string
		opts    SplitOptions
		uploads []string // the bytes of each upload, computed apart from the cutter
	}{
		{name: "one upload, never split", content: "a\nb\nc\n", uploads: []string{"a\nb\nc\n"}},
		{name: "one upload under the limit, no last newline", content: "a\nb\nc", opts: SplitOptions{MaxLines: 5}, uploads: []string{"a\nb\nc"}},
		{name: "one upload of exactly the limit", content: "a\nb\nc\n", opts: SplitOptions{MaxLines: 3}, uploads: []string{"a\nb\nc\n"}},
		{name: "a cut exactly between two full uploads", content: "a\nb\nc\nd\n", opts: SplitOptions{MaxLines: 2}, uploads: []string{"a\nb\n", "c\nd\n"}},
		{
			name: "several uploads with empty lines and carriage returns", content: "\r\na\r\n\r\nb\r\nc\r\n\n\rd",
			opts: SplitOptions{MaxLines: 1}, uploads: []string{"\r\na\r\n\r\n", "b\r\n", "c\r\n\n", "\rd"},
		},
		{name: "an empty file", content: "", uploads: []string{""}},
		{name: "an empty file with a limit", content: "", opts: SplitOptions{MaxLines: 2}, uploads: []string{""}},
		{name: "a file of empty lines", content: "\n\r\n\n", opts: SplitOptions{MaxLines: 1}, uploads: []string{"\n\r\n\n"}},
		{name: "one upload of several buffers", content: strings.Join(big, ""), opts: SplitOptions{MaxLines: int64(len(big))}, uploads: []string{strings.Join(big, "")}},
		{name: "cuts on the buffers' boundaries", content: strings.Join(big, ""), opts: SplitOptions{MaxLines: perBuffer}, uploads: inUploadsOf(perBuffer, big)},
		{name: "cuts inside buffers", content: strings.Join(big, ""), opts: SplitOptions{MaxLines: 10_000}, uploads: inUploadsOf(10_000, big)},
		{
			name:    `a cut at a line begun by a "\r" that ends the first buffer`,
			content: crAtBufferEnd + "\rx\n" + strings.Join(big[:3], ""), opts: SplitOptions{MaxLines: perBuffer},
			uploads: []string{crAtBufferEnd, "\rx\n" + strings.Join(big[:3], "")},
		},
		{name: "phone lines, one upload", content: strings.Join(phones, ""), uploads: []string{strings.Join(phones, "")}},
		{name: "phone lines, cut inside and across buffers", content: strings.Join(phones, ""), opts: SplitOptions{MaxLines: 7000}, uploads: inUploadsOf(7000, phones)},
		{name: "phone lines among other lines, cut", content: strings.Join(mixed, ""), opts: SplitOptions{MaxLines: 4500}, uploads: inUploadsOfNonEmpty(4500, mixed)},
		{name: "a skipped header row, one upload", content: "phone\na\nb\n", opts: SplitOptions{SkipHeaderRow: true}, uploads: []string{"a\nb\n"}},
		{name: "a skipped header row, cut", content: "phone\na\nb\n", opts: SplitOptions{MaxLines: 1, SkipHeaderRow: true}, uploads: []string{"a\n", "b\n"}},
		{name: "a skipped header row only", content: "phone", opts: SplitOptions{SkipHeaderRow: true}, uploads: []string{""}},
		{name: "hashing, one upload", content: n1 + "\n" + n2 + "\n", opts: SplitOptions{HashMD5: true}, uploads: []string{hashed(n1, n2)}},
		{name: "hashing, cut", content: n1 + "\r\n" + n2 + "\n" + n3, opts: SplitOptions{MaxLines: 2, HashMD5: true}, uploads: []string{hashed(n1, n2), hashed(n3)}},
		{name: "hashing an empty file", content: "", opts: SplitOptions{HashMD5: true}, uploads: []string{""}},
		{name: "hashing after a header row", content: "mobile\n" + n1 + "\n", opts: SplitOptions{SkipHeaderRow: true, HashMD5: true}, uploads: []string{hashed(n1)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, read := range []func(io.Reader) io.Reader{nil, iotest.HalfReader, iotest.OneByteReader} {
				// Checked as the reconciler does.
				check, _ := linecheck.New(linecheck.Phone)
				got, err := DigestChunks(context.Background(), memSource{data: tc.content, read: read}, check, tc.opts)
				if err != nil {
					t.Fatalf("DigestChunks: %v", err)
				}
				if want := sha256Of(tc.content); got.Digest != want {
					t.Errorf("file digest %s, want %s", got.Digest, want)
				}
				if len(got.Chunks) != len(tc.uploads) {
					t.Fatalf("%d uploads, want %d", len(got.Chunks), len(tc.uploads))
				}
				for i, c := range got.Chunks {
					if want := sha256Of(tc.uploads[i]); c.Digest != want || c.Size != int64(len(tc.uploads[i])) {
						t.Errorf("upload %d: digest %s of %d bytes, want %s of %d", c.Index, c.Digest, c.Size, want, len(tc.uploads[i]))
					}
				}
			}
		})
	}
}

// The lines moved past in bulk are cut as when each line is looked at.
func TestTheCutterCutsAsLineByLineWhenItMovesInBulk(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"\n", "\r", "\r\n", "a", "0123456789abcdef", "\t", "\n\n", "x\r"}
	for round := range 25 {
		var b strings.Builder
		for b.Len() < 3*digestBufferSize/2 {
			if rng.IntN(10) < 8 {
				fmt.Fprintf(&b, "%0*d\n", 1+rng.IntN(40), rng.IntN(1000))
			} else {
				b.WriteString(pieces[rng.IntN(len(pieces))])
			}
		}
		content := b.String()
		for _, opts := range []SplitOptions{{}, {MaxLines: 1 + rng.Int64N(20_000)}, {MaxLines: 1 + rng.Int64N(5)}, {MaxLines: 7000, SkipHeaderRow: true}} {
			cut := func(noBulk bool) []Chunk {
				c := newCutter(opts)
				c.noBulk = noBulk
				for p := []byte(content); len(p) > 0; {
					n := min(len(p), digestBufferSize)
					_, _ = c.Write(p[:n])
					p = p[n:]
				}
				chunks, _ := c.finish()
				return chunks
			}
			if diff := cmp.Diff(cut(true), cut(false)); diff != "" {
				t.Fatalf("round %d, %+v: chunks mismatch (-line by line +in bulk):\n%s", round, opts, diff)
			}
		}
	}
}

// The lines moved past because the line checker found them valid phone
// lines are cut as when each line is looked at, whatever else the file
// holds: invalid lines, "\r\n", empty lines, a header row, lines split
// across buffers, no newline at the end.
func TestTheCutterCutsAsLineByLineWhenItMovesPastCheckedLines(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const valid = "e10adc3949ba59abbe56e057f20f883e\n"
	pieces := []string{"\n", "\r", "\r\n", "phone\n", "0123456789abcdef\n", valid[:32] + "\r\n", valid[:20], "x\r"}
	for round := range 12 {
		var b strings.Builder
		for b.Len() < 3*digestBufferSize/2 {
			if rng.IntN(10) < 8 {
				b.WriteString(strings.Repeat(valid, 1+rng.IntN(3000)))
			} else {
				b.WriteString(pieces[rng.IntN(len(pieces))])
			}
		}
		content := []byte(b.String())
		for _, opts := range []SplitOptions{{}, {MaxLines: 1 + rng.Int64N(20_000)}, {MaxLines: 1 + rng.Int64N(5)}, {MaxLines: 7000, SkipHeaderRow: true}} {
			oneByOne := newCutter(opts)
			oneByOne.noBulk = true
			checkedRuns := make(chan []linecheck.Run, 1)
			checked := newCutter(opts)
			checked.checked = checkedRuns
			check, _ := linecheck.New(linecheck.Phone)
			if opts.SkipHeaderRow {
				check.SkipHeaderRow()
			}
			for p := content; len(p) > 0; {
				n := min(len(p), 1+rng.IntN(digestBufferSize))
				_, _ = oneByOne.Write(p[:n])
				checkedRuns <- check.WriteRuns(p[:n], nil)
				_, _ = checked.Write(p[:n])
				p = p[n:]
			}
			want, _ := oneByOne.finish()
			got, _ := checked.finish()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("round %d, %+v: chunks mismatch (-line by line +past checked lines):\n%s", round, opts, diff)
			}
		}
	}
}

func sha256Of(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
