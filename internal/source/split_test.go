package source

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"

	"github.com/crowdpack/crowdpack/internal/linecheck"
	"github.com/crowdpack/crowdpack/internal/rawphone"
)

// memSource serves data as the version with ETag etag; OpenRange fails with
// ErrChanged for any other version.
type memSource struct {
	data string
	etag string
	read func(io.Reader) io.Reader // how the bytes arrive, e.g. iotest.HalfReader
}

func (m memSource) Open(context.Context) (io.ReadCloser, Version, error) {
	return m.body(m.data), Version{Size: int64(len(m.data)), ETag: m.etag}, nil
}

func (m memSource) OpenRange(_ context.Context, v Version, offset, length int64) (io.ReadCloser, error) {
	if v.ETag != m.etag || v.Size != int64(len(m.data)) {
		return nil, fmt.Errorf("%w: the object is no longer version %s", ErrChanged, v.ETag)
	}
	if err := checkRange(v, offset, length); err != nil {
		return nil, err
	}
	return m.body(m.data[offset : offset+length]), nil
}

func (m memSource) body(s string) io.ReadCloser {
	var r io.Reader = strings.NewReader(s)
	if m.read != nil {
		r = m.read(r)
	}
	return io.NopCloser(r)
}

// wantChunk is a chunk as a test expects it; uploaded gives Size and Digest.
type wantChunk struct {
	firstLine, lastLine, start, end, lines int64
	uploaded                               string
}

func (w wantChunk) chunk(index int) Chunk {
	sum := sha256.Sum256([]byte(w.uploaded))
	return Chunk{Index: index, FirstLine: w.firstLine, LastLine: w.lastLine, Start: w.start, End: w.end,
		Lines: w.lines, Size: int64(len(w.uploaded)), Digest: hex.EncodeToString(sum[:])}
}

// hashed is the uploaded MD5 lines of numbers, computed apart from rawphone.
func hashed(numbers ...string) string {
	var b strings.Builder
	for _, n := range numbers {
		sum := md5.Sum([]byte(n))
		b.WriteString(hex.EncodeToString(sum[:]) + "\n")
	}
	return b.String()
}

const (
	n1, n2, n3 = "13800138000", "13912345678", "15000000001"
)

// cuttingCases are files with the chunks they are cut into.
var cuttingCases = []struct {
	name    string
	content string
	opts    SplitOptions
	want    []wantChunk
}{
	{
		name: "a file under the limit is one chunk", content: "a\nb\n", opts: SplitOptions{MaxLines: 3},
		want: []wantChunk{{1, 2, 0, 4, 2, "a\nb\n"}},
	},
	{
		name: "a file of exactly the limit is one chunk", content: "a\nb\n", opts: SplitOptions{MaxLines: 2},
		want: []wantChunk{{1, 2, 0, 4, 2, "a\nb\n"}},
	},
	{
		name: "trailing empty lines stay in the last chunk", content: "a\nb\n\n\r", opts: SplitOptions{MaxLines: 2},
		want: []wantChunk{{1, 4, 0, 6, 2, "a\nb\n\n\r"}},
	},
	{
		name: "the line beyond the limit starts the next chunk", content: "a\nb\nc\n", opts: SplitOptions{MaxLines: 2},
		want: []wantChunk{{1, 2, 0, 4, 2, "a\nb\n"}, {3, 3, 4, 6, 1, "c\n"}},
	},
	{
		name: "empty lines after a full chunk stay in it", content: "a\nb\n\n\r\nc\n", opts: SplitOptions{MaxLines: 2},
		want: []wantChunk{{1, 4, 0, 7, 2, "a\nb\n\n\r\n"}, {5, 5, 7, 9, 1, "c\n"}},
	},
	{
		name: "a line that starts with CR and goes on is not empty", content: "a\nb\n\rc\n", opts: SplitOptions{MaxLines: 2},
		want: []wantChunk{{1, 2, 0, 4, 2, "a\nb\n"}, {3, 3, 4, 7, 1, "\rc\n"}},
	},
	{
		name: "an empty file is one chunk of nothing", content: "", opts: SplitOptions{MaxLines: 2},
		want: []wantChunk{{1, 0, 0, 0, 0, ""}},
	},
	{
		name: "a last line without newline is counted", content: "a\nb\nc", opts: SplitOptions{MaxLines: 2},
		want: []wantChunk{{1, 2, 0, 4, 2, "a\nb\n"}, {3, 3, 4, 5, 1, "c"}},
	},
	{
		name: "a limit of 0 never splits", content: strings.Repeat("a\n", 5000),
		want: []wantChunk{{1, 5000, 0, 10000, 5000, strings.Repeat("a\n", 5000)}},
	},
	{
		name: "a skipped header row is in no chunk", content: "phone\na\nb\nc\n", opts: SplitOptions{MaxLines: 2, SkipHeaderRow: true},
		want: []wantChunk{{2, 3, 6, 10, 2, "a\nb\n"}, {4, 4, 10, 12, 1, "c\n"}},
	},
	{
		name: "a header row alone leaves one chunk of nothing", content: "phone", opts: SplitOptions{MaxLines: 2, SkipHeaderRow: true},
		want: []wantChunk{{2, 1, 5, 5, 0, ""}},
	},
	{
		name:    "hashing uploads MD5 lines and leaves invalid and empty lines out",
		content: n1 + "\n\nbad\n+86 139 1234 5678\r\n", opts: SplitOptions{HashMD5: true},
		want: []wantChunk{{1, 4, 0, 36, 2, hashed(n1, n2)}},
	},
	{
		name:    "hashing cuts by non-empty lines, invalid ones included",
		content: n1 + "\nbad\n" + n2 + "\n", opts: SplitOptions{MaxLines: 2, HashMD5: true},
		want: []wantChunk{{1, 2, 0, 16, 1, hashed(n1)}, {3, 3, 16, 28, 1, hashed(n2)}},
	},
	{
		name:    "hashing after a skipped header row",
		content: "mobile\r\n" + n1 + "\r\n0086" + n2 + "\r\n86" + n3, opts: SplitOptions{MaxLines: 2, SkipHeaderRow: true, HashMD5: true},
		want: []wantChunk{{2, 3, 8, 38, 2, hashed(n1, n2)}, {4, 4, 38, 51, 1, hashed(n3)}},
	},
}

func TestDigestChunksCutsAtLineBoundaries(t *testing.T) {
	for _, tc := range cuttingCases {
		t.Run(tc.name, func(t *testing.T) {
			var want []Chunk
			for i, w := range tc.want {
				want = append(want, w.chunk(i+1))
			}
			for _, read := range []func(io.Reader) io.Reader{nil, iotest.OneByteReader, iotest.HalfReader} {
				src := memSource{data: tc.content, etag: "v1", read: read}
				got, err := DigestChunks(context.Background(), src, nil, tc.opts)
				if err != nil {
					t.Fatalf("DigestChunks: %v", err)
				}
				if diff := cmp.Diff(want, got.Chunks); diff != "" {
					t.Fatalf("chunks mismatch (-want +got):\n%s", diff)
				}
				for i, c := range got.Chunks {
					if uploaded := readChunk(t, src, got.Version, c, tc.opts); uploaded != tc.want[i].uploaded {
						t.Errorf("chunk %d re-read as %q, want %q", c.Index, uploaded, tc.want[i].uploaded)
					}
				}
			}
		})
	}
}

// readChunk re-reads a chunk whole; it must match its digest.
func readChunk(t testing.TB, src Source, v Version, c Chunk, opts SplitOptions) string {
	t.Helper()
	r, err := OpenChunk(context.Background(), src, v, c, opts)
	if err != nil {
		t.Fatalf("OpenChunk %d: %v", c.Index, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("re-read chunk %d: %v", c.Index, err)
	}
	return string(data)
}

func TestDigestChunksReportsTheLines(t *testing.T) {
	cases := []struct {
		name    string
		content string
		opts    SplitOptions
		want    linecheck.Report
	}{
		{
			name: "hashing reports invalid lines by number and empty lines apart", content: n1 + "\n\nbad\n+1 555 0100\n" + n2,
			opts: SplitOptions{MaxLines: 1000, HashMD5: true},
			want: linecheck.Report{Lines: 4, InvalidLines: 2, EmptyLines: 1, FirstInvalidLineNumbers: []int64{3, 4}},
		},
		{
			name: "hashing flags a header row it was not told to skip", content: "手机号\n" + n1 + "\n",
			opts: SplitOptions{HashMD5: true},
			want: linecheck.Report{Lines: 2, InvalidLines: 1, HeaderRow: true, FirstInvalidLineNumbers: []int64{1}},
		},
		{
			name: "hashing leaves a skipped header row out of the report", content: "手机号\n" + n1 + "\nbad\n",
			opts: SplitOptions{SkipHeaderRow: true, HashMD5: true},
			want: linecheck.Report{Lines: 2, InvalidLines: 1, FirstInvalidLineNumbers: []int64{3}},
		},
		{
			name: "the line checks without hashing leave a skipped header row out", content: "phone\n" + md5Of(n1) + "\nbad\n",
			opts: SplitOptions{SkipHeaderRow: true},
			want: linecheck.Report{Lines: 2, InvalidLines: 1, FirstInvalidLineNumbers: []int64{3}},
		},
		{
			name: "the line checks without hashing still flag a header row", content: "phone\n" + md5Of(n1) + "\n",
			want: linecheck.Report{Lines: 2, InvalidLines: 1, HeaderRow: true, FirstInvalidLineNumbers: []int64{1}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check, _ := linecheck.New(linecheck.Phone)
			got, err := DigestChunks(context.Background(), memSource{data: tc.content}, check, tc.opts)
			if err != nil {
				t.Fatalf("DigestChunks: %v", err)
			}
			if diff := cmp.Diff(tc.want, got.Report); diff != "" {
				t.Errorf("report mismatch (-want +got):\n%s", diff)
			}
			if got.Digest != sha256Hex(strings.NewReader(tc.content)) {
				t.Errorf("Digest = %s, want the SHA-256 of the whole file", got.Digest)
			}
		})
	}
}

func md5Of(number string) string {
	return strings.TrimSuffix(hashed(number), "\n")
}

func TestChunkReaderFailsWhenTheBytesAreNotTheDigested(t *testing.T) {
	content := n1 + "\n" + n2 + "\n" + n3 + "\n"
	opts := SplitOptions{MaxLines: 1000, HashMD5: true}
	cases := []struct {
		name      string
		src       Source
		spoil     func(*Chunk)
		wantErr   error // nil: a transient error
		wantAtEOF bool  // the error comes at the end of the stream, not at open
	}{
		{
			name: "an object overwritten since the digest fails with ErrChanged at open",
			src:  memSource{data: content, etag: "v2"}, spoil: func(*Chunk) {}, wantErr: ErrChanged,
		},
		{
			name: "a chunk that re-reads to another digest fails with ErrChanged at its end",
			src:  memSource{data: content, etag: "v1"}, spoil: func(c *Chunk) { c.Digest = strings.Repeat("0", 64) },
			wantErr: ErrChanged, wantAtEOF: true,
		},
		{
			name: "a chunk that re-reads to another size fails with ErrChanged at its end",
			src:  memSource{data: content, etag: "v1"}, spoil: func(c *Chunk) { c.Size-- },
			wantErr: ErrChanged, wantAtEOF: true,
		},
		{
			name:  "a range that yields too few bytes is a torn read, not a change",
			src:   memSource{data: content, etag: "v1", read: func(r io.Reader) io.Reader { return io.LimitReader(r, 20) }},
			spoil: func(*Chunk) {}, wantAtEOF: true,
		},
	}
	digested, err := DigestChunks(context.Background(), memSource{data: content, etag: "v1"}, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := digested.Chunks[0]
			tc.spoil(&c)
			err := readAllOfChunk(tc.src, digested.Version, c, opts, tc.wantAtEOF)
			t.Logf("error: %v", err)
			if err == nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) || tc.wantErr == nil && isTerminal(err) {
				t.Errorf("error = %v, want %v (nil: a transient error)", err, tc.wantErr)
			}
		})
	}
}

// readAllOfChunk re-reads a chunk and returns the error of its opening or,
// when atEOF, of its reading.
func readAllOfChunk(src Source, v Version, c Chunk, opts SplitOptions, atEOF bool) error {
	r, err := OpenChunk(context.Background(), src, v, c, opts)
	if err != nil || !atEOF {
		return err
	}
	defer r.Close()
	_, err = io.ReadAll(r)
	return err
}

func TestReadPartCutsTheStreamInOrder(t *testing.T) {
	content := strings.Repeat(n1+"\r\n+86 "+n2+"\nbad\n\n", 5) // 10 numbers: 330 uploaded bytes
	want := strings.Repeat(hashed(n1, n2), 5)
	cases := []struct {
		name      string
		partSize  int
		wantParts []int
		spoil     bool
	}{
		{name: "a chunk of whole parts ends with a full part", partSize: 165, wantParts: []int{165, 165}},
		{name: "a chunk of uneven parts ends with a short part", partSize: 100, wantParts: []int{100, 100, 100, 30}},
		{name: "a spoilt chunk fails with its last full part", partSize: 165, wantParts: []int{165, 165}, spoil: true},
		{name: "a spoilt chunk fails with its last short part", partSize: 100, wantParts: []int{100, 100, 100, 30}, spoil: true},
	}
	src := memSource{data: content, etag: "v1"}
	opts := SplitOptions{HashMD5: true}
	digested, err := DigestChunks(context.Background(), src, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := digested.Chunks[0]
			if tc.spoil {
				c.Digest = strings.Repeat("0", 64)
			}
			r, err := OpenChunk(context.Background(), src, digested.Version, c, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got := readParts(t, r, tc.partSize, tc.wantParts, tc.spoil)
			if !tc.spoil {
				if n, err := r.ReadPart(make([]byte, tc.partSize)); n != 0 || err != io.EOF {
					t.Errorf("after the last part: %d bytes, %v; want io.EOF", n, err)
				}
				if got != want {
					t.Errorf("parts concatenated differ from the MD5 lines")
				}
			}
		})
	}
}

// readParts reads parts of partSize as the controller does; they must be
// of the sizes wanted and, when spoilt, the last must fail with ErrChanged.
func readParts(t *testing.T, r *ChunkReader, partSize int, wantParts []int, spoilt bool) string {
	t.Helper()
	var got bytes.Buffer
	for k, size := range wantParts {
		part := make([]byte, partSize)
		n, err := r.ReadPart(part)
		failing := spoilt && k == len(wantParts)-1
		if n != size || (err != nil) != failing || err != nil && !errors.Is(err, ErrChanged) {
			t.Fatalf("part %d: %d bytes, %v; want %d bytes, failing: %v", k, n, err, size, failing)
		}
		got.Write(part[:n])
	}
	return got.String()
}

// FuzzDigestChunks checks the cutting against the rules, whatever the
// bytes and however the store delivers them: the chunks cover the file after
// a skipped header without gap, each full one but the last holds MaxLines
// non-empty lines, and re-read chunks are the source bytes, or with hashing
// the MD5 lines of the numbers, line by line.
func FuzzDigestChunks(f *testing.F) {
	for _, seed := range []string{"", "\n", "\r", "a\r\n\rb\n\r", n1 + "\n\n+86 " + n2 + "\r\nbad\n" + n3, "h\n1\n2\n\r\n3"} {
		f.Add([]byte(seed), uint8(2), false, false)
		f.Add([]byte(seed), uint8(1), true, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, maxLines uint8, skipHeader, hashMD5 bool) {
		opts := SplitOptions{MaxLines: int64(maxLines % 8), SkipHeaderRow: skipHeader, HashMD5: hashMD5}
		src := memSource{data: string(data), etag: "v1"}
		got, err := DigestChunks(context.Background(), src, nil, opts)
		if err != nil {
			t.Fatal(err)
		}
		bytewise, _ := DigestChunks(context.Background(), memSource{data: string(data), read: iotest.OneByteReader}, nil, opts)
		if diff := cmp.Diff(got.Chunks, bytewise.Chunks); diff != "" {
			t.Fatalf("chunks depend on how the bytes arrive (-whole +bytewise):\n%s", diff)
		}
		body := data[bodyStart(data, skipHeader):]
		var uploaded strings.Builder
		for i, c := range got.Chunks {
			lines := nonEmptyLines(data[c.Start:c.End])
			if last := i == len(got.Chunks)-1; opts.MaxLines > 0 && (lines > opts.MaxLines || !last && lines != opts.MaxLines) {
				t.Errorf("chunk %d holds %d non-empty lines, limit %d", c.Index, lines, opts.MaxLines)
			}
			uploaded.WriteString(readChunk(t, src, got.Version, c, opts))
		}
		if first, last := got.Chunks[0], got.Chunks[len(got.Chunks)-1]; first.Start != int64(len(data)-len(body)) || last.End != int64(len(data)) {
			t.Errorf("chunks cover [%d, %d), want [%d, %d)", first.Start, last.End, len(data)-len(body), len(data))
		}
		if want := uploadedBytes(body, hashMD5); uploaded.String() != want {
			t.Errorf("re-read chunks are %q, want %q", uploaded.String(), want)
		}
	})
}

// bodyStart is the offset after a skipped header row.
func bodyStart(data []byte, skipHeader bool) int {
	if !skipHeader {
		return 0
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1
	}
	return len(data)
}

func nonEmptyLines(data []byte) int64 {
	var n int64
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"); line != "" {
			n++
		}
	}
	return n
}

// uploadedBytes is what the chunks of body upload, computed line by line.
func uploadedBytes(body []byte, hashMD5 bool) string {
	if !hashMD5 {
		return string(body)
	}
	var out strings.Builder
	for _, line := range strings.SplitAfter(string(body), "\n") {
		var hashedLine [rawphone.LineLen]byte
		if rawphone.HashLine(&hashedLine, []byte(strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"))) {
			out.Write(hashedLine[:])
		}
	}
	return out.String()
}
