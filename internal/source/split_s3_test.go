package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crowdpack/crowdpack/internal/linecheck"
	"github.com/crowdpack/crowdpack/internal/testutil/miniotest"
)

func TestS3ChunksReReadAsTheirSourceBytes(t *testing.T) {
	s := minioServer(t)
	lines := phoneBytes(2500 * phoneLineLen)
	cases := []struct {
		name      string
		header    string
		opts      SplitOptions
		wantLines []int64
	}{
		{"2,500 lines at 1,000 a chunk are 3 chunks", "", SplitOptions{MaxLines: 1000}, []int64{1000, 1000, 500}},
		{"a skipped header row is left out of the first chunk", "phone_md5\r\n", SplitOptions{MaxLines: 1000, SkipHeaderRow: true}, []int64{1000, 1000, 500}},
		{"a limit of 0 makes one chunk", "", SplitOptions{}, []int64{2500}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := append([]byte(tc.header), lines...)
			src, got := putAndDigestChunks(t, s, data, tc.opts)
			if n := len(got.Chunks); n != len(tc.wantLines) {
				t.Fatalf("%d chunks, want %d", n, len(tc.wantLines))
			}
			wantStart := int64(len(tc.header))
			for i, c := range got.Chunks {
				if c.Lines != tc.wantLines[i] || c.Start != wantStart {
					t.Errorf("chunk %d: %d lines from byte %d, want %d lines from byte %d", c.Index, c.Lines, c.Start, tc.wantLines[i], wantStart)
				}
				if uploaded := readChunk(t, src, got.Version, c, tc.opts); uploaded != string(data[c.Start:c.End]) {
					t.Errorf("chunk %d re-read differs from its source bytes", c.Index)
				}
				wantStart = c.End
			}
			if wantStart != int64(len(data)) {
				t.Errorf("the chunks end at byte %d, want the end of the file, %d", wantStart, len(data))
			}
		})
	}
}

// putAndDigestChunks stores data in a bucket of its own and digests it.
func putAndDigestChunks(t *testing.T, s *miniotest.Server, data []byte, opts SplitOptions) (Source, Result) {
	t.Helper()
	bucket := newBucket(t, s, false)
	if _, err := s.PutBytes(context.Background(), bucket, "export.csv", data); err != nil {
		t.Fatal(err)
	}
	src := mustNewS3(t, s3Config(s, bucket, "export.csv"))
	got, err := DigestChunks(context.Background(), src, nil, opts)
	if err != nil {
		t.Fatalf("DigestChunks: %v", err)
	}
	return src, got
}

func TestS3HashedChunksAreTheMD5LinesOfTheNumbers(t *testing.T) {
	s := minioServer(t)
	var raw strings.Builder
	var numbers []string
	raw.WriteString("手机号\r\n")
	for i := range 2500 {
		number := fmt.Sprintf("1%02d%08d", 30+i%70, i*7919)
		numbers = append(numbers, number)
		raw.WriteString(rawForm(i, number))
		if i%400 == 0 {
			raw.WriteString("1380013800\n\r\n+1 (555) 010-0199\n") // two invalid lines and an empty one
		}
	}
	opts := SplitOptions{MaxLines: 1000, SkipHeaderRow: true, HashMD5: true}
	export := strings.TrimSuffix(raw.String(), "\n") // the last line has no newline
	src, got := putAndDigestChunks(t, s, []byte(export), opts)

	var restreamed bytes.Buffer
	for _, c := range got.Chunks {
		restreamed.WriteString(readChunk(t, src, got.Version, c, opts))
	}
	if restreamed.String() != hashed(numbers...) {
		t.Errorf("the re-read chunks are not the MD5 lines of the %d numbers", len(numbers))
	}
	if n := len(got.Chunks); n != 3 {
		t.Errorf("%d chunks, want 3 (2,514 non-empty lines at 1,000 a chunk)", n)
	}
	want := linecheck.Report{Lines: 2514, InvalidLines: 14, EmptyLines: 7, CRLF: true,
		FirstInvalidLineNumbers: []int64{3, 5, 406, 408, 809}}
	if diff := cmp.Diff(want, got.Report); diff != "" {
		t.Errorf("report mismatch (-want +got):\n%s", diff)
	}
}

// rawForm writes number as a CRM export might, in each accepted form in turn.
func rawForm(i int, number string) string {
	a, b, c := number[:3], number[3:7], number[7:]
	switch i % 6 {
	case 0:
		return number + "\n"
	case 1:
		return "+86 " + a + "-" + b + "-" + c + "\r\n"
	case 2:
		return "86" + number + "\n"
	case 3:
		return "0086 (" + a + ") " + b + " " + c + "\n"
	case 4:
		return " " + a + " " + b + " " + c + " \n"
	}
	return "+86" + number + "\r\n"
}

func TestS3AChunkOfAnObjectChangedSinceTheDigestFails(t *testing.T) {
	s := minioServer(t)
	for _, versioned := range []bool{false, true} {
		t.Run(fmt.Sprintf("versioned %v", versioned), func(t *testing.T) {
			bucket := newBucket(t, s, versioned)
			ctx := context.Background()
			data := phoneBytes(2500 * phoneLineLen)
			if _, err := s.PutBytes(ctx, bucket, "export.csv", data); err != nil {
				t.Fatal(err)
			}
			src := mustNewS3(t, s3Config(s, bucket, "export.csv"))
			got, err := DigestChunks(ctx, src, nil, SplitOptions{MaxLines: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.PutBytes(ctx, bucket, "export.csv", withInvalidLines(data)); err != nil {
				t.Fatal(err)
			}
			err = readAllOfChunk(src, got.Version, got.Chunks[1], SplitOptions{MaxLines: 1000}, true)
			if !errors.Is(err, ErrChanged) {
				t.Fatalf("re-reading chunk 2 of a changed object: %v, want ErrChanged", err)
			}
		})
	}
}

// BenchmarkHashedSplitFromMinIO digests a raw-number export in MinIO,
// hashed and cut into chunks of 500,000 lines, then re-reads every chunk
// part by part, as the controller will, while sampling the heap: memory must
// stay flat (under 64 MiB) whatever the size. The export is
// CROWDPACK_RAW_EXPORT_MIB MiB (default 24; the figure is 300:
// about 25 million numbers and 50 chunks).
func BenchmarkHashedSplitFromMinIO(b *testing.B) {
	const heapLimit = 64 << 20
	lines := rawExportMiB(b) << 20 / 14 // 14.25 bytes a line on average
	size := mustCount(io.Copy(io.Discard, newRawExport(lines)))
	s := minioServer(b)
	bucket := newBucket(b, s, false)
	if _, err := s.PutObject(context.Background(), bucket, "raw.csv", newRawExport(lines), size); err != nil {
		b.Fatalf("upload: %v", err)
	}
	src := mustNewS3(b, s3Config(s, bucket, "raw.csv"))
	opts := SplitOptions{MaxLines: 500_000, HashMD5: true}
	var digestTook, restreamTook time.Duration
	var peak uint64
	var chunks int
	for b.Loop() {
		runtime.GC()
		stop := sampleHeap()
		start := time.Now()
		got, err := DigestChunks(context.Background(), src, nil, opts)
		digestTook += time.Since(start)
		if err != nil {
			b.Fatalf("DigestChunks: %v", err)
		}
		start = time.Now()
		restreamChunks(b, src, got, opts)
		restreamTook += time.Since(start)
		peak, chunks = max(peak, stop()), len(got.Chunks)
	}
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(float64(size)/(1<<20), "MiB")
	b.ReportMetric(float64(chunks), "chunks")
	b.ReportMetric(mb/digestTook.Seconds(), "digest-MB/s")
	b.ReportMetric(mb/restreamTook.Seconds(), "restream-MB/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	if peak > heapLimit {
		b.Errorf("peak heap in use %d MiB, want under %d MiB", peak>>20, heapLimit>>20)
	}
}

func rawExportMiB(b *testing.B) int64 {
	mib, err := strconv.ParseInt(os.Getenv("CROWDPACK_RAW_EXPORT_MIB"), 10, 64)
	if err != nil || mib <= 0 {
		return 24
	}
	return mib
}

func mustCount(n int64, err error) int64 {
	if err != nil {
		panic(err)
	}
	return n
}

// restreamChunks re-reads every chunk in parts of 5 MiB, as the controller
// sends them; each chunk must match its digest.
func restreamChunks(b *testing.B, src Source, got Result, opts SplitOptions) {
	part := make([]byte, 5<<20)
	for _, c := range got.Chunks {
		r, err := OpenChunk(context.Background(), src, got.Version, c, opts)
		if err != nil {
			b.Fatalf("OpenChunk %d: %v", c.Index, err)
		}
		for err == nil {
			_, err = r.ReadPart(part)
		}
		r.Close()
		if err != io.EOF {
			b.Fatalf("re-reading chunk %d: %v", c.Index, err)
		}
	}
}

// rawExport is a deterministic reader of a raw-number export of a given
// number of lines: half plain 11-digit numbers, half after "+86 " or
// "0086" (the latter with CRLF), one in a thousand invalid. It is made line
// by line, so any size costs no memory.
type rawExport struct {
	remaining int64
	next      int64
	line      []byte
}

func newRawExport(lines int64) *rawExport {
	return &rawExport{remaining: lines, line: make([]byte, 0, 64)}
}

func (r *rawExport) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(r.line) == 0 {
			if r.remaining == 0 {
				break
			}
			r.line = r.makeLine(r.line[:0])
			r.remaining--
		}
		k := copy(p[n:], r.line)
		n += k
		r.line = r.line[k:]
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (r *rawExport) makeLine(dst []byte) []byte {
	i := r.next
	r.next++
	if i%1000 == 999 {
		return append(dst, "1380013800\n"...) // 10 digits
	}
	switch i % 4 {
	case 1:
		dst = append(dst, "+86 "...)
	case 3:
		dst = append(dst, "0086"...)
	}
	dst = strconv.AppendInt(dst, 13_000_000_000+i%7_000_000_000, 10)
	if i%4 == 3 {
		return append(dst, '\r', '\n')
	}
	return append(dst, '\n')
}
