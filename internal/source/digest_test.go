package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crowdpack/crowdpack/internal/linecheck"
)

// fakeSource serves content but claims size bytes.
type fakeSource struct {
	content string
	size    int64
	openErr error
	read    func(io.Reader) io.Reader // how the bytes arrive, e.g. iotest.HalfReader
}

func (f fakeSource) Open(context.Context) (io.ReadCloser, Version, error) {
	if f.openErr != nil {
		return nil, Version{}, f.openErr
	}
	var body io.Reader = strings.NewReader(f.content)
	if f.read != nil {
		body = f.read(body)
	}
	return io.NopCloser(body), Version{Size: f.size, ETag: "e"}, nil
}

func (f fakeSource) OpenRange(context.Context, Version, int64, int64) (io.ReadCloser, error) {
	return nil, errors.New("not used")
}

func TestDigestFailsOnATornRead(t *testing.T) {
	cases := []struct {
		name string
		src  fakeSource
	}{
		{"fewer bytes than the size is a torn read", fakeSource{content: "abc", size: 4}},
		{"more bytes than the size is a torn read", fakeSource{content: "abcde", size: 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Digest(context.Background(), tc.src, nil)
			if err == nil || isTerminal(err) {
				t.Fatalf("Digest error = %v, want a transient error", err)
			}
		})
	}
}

func TestDigestPassesOpenErrorsThrough(t *testing.T) {
	_, err := Digest(context.Background(), fakeSource{openErr: ErrAccessDenied}, nil)
	if !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("Digest error = %v, want ErrAccessDenied", err)
	}
}

func TestDigestOfAnEmptyFile(t *testing.T) {
	got, err := Digest(context.Background(), fakeSource{}, nil)
	const sha256OfNothing = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if err != nil || got.Digest != sha256OfNothing {
		t.Fatalf("Digest = %q, %v; want %s", got.Digest, err, sha256OfNothing)
	}
}

// TestDigestMemoryStaysFlat digests a 1 GiB object from MinIO while sampling
// the heap: streaming must keep it far below the size of the file.
func TestDigestMemoryStaysFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the 1 GiB digest in -short mode")
	}
	const size = (1 << 30) / phoneLineLen * phoneLineLen
	const heapLimit = 64 << 20
	s := minioServer(t)
	bucket := newBucket(t, s, false)
	if _, err := s.PutObject(context.Background(), bucket, "big.csv", newPhoneLines(size), size); err != nil {
		t.Fatalf("upload: %v", err)
	}
	wantDigest := sha256Hex(newPhoneLines(size))
	src := mustNewS3(t, s3Config(s, bucket, "big.csv"))
	check, _ := linecheck.New(linecheck.Phone)

	runtime.GC()
	time.Sleep(100 * time.Millisecond)
	stop := sampleHeap()
	start := time.Now()
	got, err := Digest(context.Background(), src, check)
	elapsed := time.Since(start)
	peak := stop()
	if err != nil {
		t.Fatalf("Digest: %v", err)
	}

	t.Logf("digested %d MiB in %s: %.0f MB/s, peak heap in use %.1f MiB",
		size>>20, elapsed.Round(time.Millisecond), float64(size)/elapsed.Seconds()/1e6, float64(peak)/(1<<20))
	if got.Digest != wantDigest || got.Report.Lines != size/phoneLineLen || got.Report.InvalidLines != 0 {
		t.Errorf("Digest = %s with %+v, want %s with %d valid lines", got.Digest, got.Report, wantDigest, size/phoneLineLen)
	}
	if peak > heapLimit {
		t.Errorf("peak heap in use %d MiB, want under %d MiB", peak>>20, heapLimit>>20)
	}
}

// sampleHeap samples the heap in use every 5 ms until the returned function
// is called, which returns the peak.
func sampleHeap() (stop func() uint64) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
	}
	var peak atomic.Uint64
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		ticker := time.NewTicker(5 * time.Millisecond)
		defer ticker.Stop()
		for {
			metrics.Read(samples)
			inUse := samples[0].Value.Uint64() + samples[1].Value.Uint64()
			if inUse > peak.Load() {
				peak.Store(inUse)
			}
			select {
			case <-done:
				return
			case <-ticker.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

// TestDigestMatchesASequentialRead compares the pipelined digest with one
// sequential pass of SHA-256 and the line checks, around the buffer bounds.
func TestDigestMatchesASequentialRead(t *testing.T) {
	const ring = digestBuffers * digestBufferSize
	cases := []struct {
		name string
		size int64
		read func(io.Reader) io.Reader
	}{
		{"a file smaller than one buffer", 1000 * phoneLineLen, nil},
		{"a file of exactly one buffer", digestBufferSize, nil},
		{"a file one byte longer than a buffer", digestBufferSize + 1, nil},
		{"a file of exactly the whole ring", ring, nil},
		{"a file several times the ring", 3*ring + 17, nil},
		{"a file the store sends one byte at a time", 2*digestBufferSize + 5, iotest.OneByteReader},
		{"a file the store sends in uneven pieces", 3*ring + 5, iotest.HalfReader},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			content := withInvalidLines(phoneBytes(tc.size))
			check, _ := linecheck.New(linecheck.Phone)
			got, err := Digest(context.Background(), fakeSource{content: string(content), size: tc.size, read: tc.read}, check)
			if err != nil {
				t.Fatalf("Digest: %v", err)
			}
			want, _ := linecheck.New(linecheck.Phone)
			_, _ = want.Write(content)
			if got.Digest != sha256Hex(bytes.NewReader(content)) {
				t.Errorf("Digest = %s, want the SHA-256 of the content", got.Digest)
			}
			if diff := cmp.Diff(want.Report(), got.Report); diff != "" {
				t.Errorf("Report differs from a sequential check (-want +got):\n%s", diff)
			}
		})
	}
}

// withInvalidLines spoils a few lines, so a report that lost or reordered
// bytes would show it.
func withInvalidLines(content []byte) []byte {
	for _, at := range []int{0, len(content) / 3, len(content) / 2, len(content) - 2} {
		if at >= 0 && at < len(content) {
			content[at] = 'x'
		}
	}
	return content
}

// TestDigestStopsAllItsGoroutines ends digests in every way but success and
// checks that Digest returns promptly with no goroutine of its own left.
func TestDigestStopsAllItsGoroutines(t *testing.T) {
	errStore := errors.New("connection reset by the store")
	cases := []struct {
		name    string
		body    func(ctx context.Context, reading chan<- struct{}) io.Reader
		cancel  bool // cancel once the body signals it is reading
		wantErr error
	}{
		{
			name: "a read error midway ends the digest with that error",
			body: func(context.Context, chan<- struct{}) io.Reader {
				return io.MultiReader(newPhoneLines(3*digestBuffers*digestBufferSize), iotest.ErrReader(errStore))
			},
			wantErr: errStore,
		},
		{
			name: "a cancelled context ends a read that waits for the store",
			body: func(ctx context.Context, reading chan<- struct{}) io.Reader {
				return io.MultiReader(newPhoneLines(digestBufferSize+7), blockingReader{ctx, reading})
			},
			cancel:  true,
			wantErr: context.Canceled,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			reading := make(chan struct{}, 1)
			src := bodySource{size: 1 << 40, body: func(ctx context.Context) io.Reader { return tc.body(ctx, reading) }}
			check, _ := linecheck.New(linecheck.Phone)
			done := make(chan error, 1)
			go func() {
				_, err := Digest(ctx, src, check)
				done <- err
			}()
			if tc.cancel {
				<-reading
				cancel()
			}
			err := awaitReturn(t, done)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Digest error = %v, want %v", err, tc.wantErr)
			}
			if n := goroutinesIn("source.consumeChunks"); n > 0 {
				t.Errorf("%d goroutines of the digest outlived it", n)
			}
		})
	}
}

// TestFanOutStopsWhileSinksLagBehind cancels a fan-out whose reader waits
// for a free buffer because a sink is slow.
func TestFanOutStopsWhileSinksLagBehind(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writing := make(chan struct{}, 1)
	slow := slowSink{ctx: ctx, writing: writing}
	done := make(chan error, 1)
	go func() {
		_, err := fanOut(ctx, newPhoneLines(10*digestBuffers*digestBufferSize), []io.Writer{sha256.New(), slow})
		done <- err
	}()
	<-writing
	cancel()
	if err := awaitReturn(t, done); !errors.Is(err, context.Canceled) {
		t.Errorf("fanOut error = %v, want context.Canceled", err)
	}
	if n := goroutinesIn("source.consumeChunks"); n > 0 {
		t.Errorf("%d goroutines of the fan-out outlived it", n)
	}
}

func TestDigestOfACancelledContextReadsNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Digest(ctx, fakeSource{content: "abc", size: 3}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Digest error = %v, want context.Canceled", err)
	}
}

// awaitReturn waits for done, failing the test if that takes a long time.
func awaitReturn(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("did not return within 30s")
		return nil
	}
}

// goroutinesIn counts the goroutines with function in their stack.
func goroutinesIn(function string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), function+"(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// bodySource opens whatever body returns for the context it is given.
type bodySource struct {
	size int64
	body func(ctx context.Context) io.Reader
}

func (s bodySource) Open(ctx context.Context) (io.ReadCloser, Version, error) {
	return io.NopCloser(s.body(ctx)), Version{Size: s.size, ETag: "e"}, nil
}

func (bodySource) OpenRange(context.Context, Version, int64, int64) (io.ReadCloser, error) {
	return nil, errors.New("not used")
}

// blockingReader waits for more bytes that never come, until ctx ends: a
// stalled store.
type blockingReader struct {
	ctx     context.Context
	reading chan<- struct{}
}

func (r blockingReader) Read([]byte) (int, error) {
	select {
	case r.reading <- struct{}{}:
	default:
	}
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

// slowSink holds its first write until ctx ends.
type slowSink struct {
	ctx     context.Context
	writing chan<- struct{}
}

func (s slowSink) Write(p []byte) (int, error) {
	select {
	case s.writing <- struct{}{}:
	default:
	}
	<-s.ctx.Done()
	return len(p), nil
}

// BenchmarkDigestFromMinIO measures the digest as the reconciler runs it:
// DigestChunks of a 256 MiB object with the line checks, against the
// necessary work alone, a plain GetObject of the same object from the same
// MinIO through minio-go copied in one goroutine into the hashes that are
// written (see miniotest.Server.GetAndHash). Twice: "whole", the file as one upload (a
// maxLinesPerUpload of at least its lines), whose digest is the upload's,
// against GET + SHA-256; and "split", with the reconciler's default of
// 500,000 lines per upload (17 uploads), against GET + the file's SHA-256 +
// a SHA-256 per upload in one pass. The four take turns within each
// iteration, in a rotating order, so that all see the same machine; ns/op
// is their sum. Reported: each one's MB/s, "ratio" (whole over its
// baseline) and "split-ratio" (the goal is 0.9 or more for both), and
// "cpu-ratio" and "split-cpu-ratio", the same for this process's CPU time.
// Timings are reported, never asserted.
func BenchmarkDigestFromMinIO(b *testing.B) {
	const (
		size = (256 << 20) / phoneLineLen * phoneLineLen
		// controllers/uploads' recommendedMaxLines, the default of
		// spec.file.maxLinesPerUpload.
		recommendedMaxLines = 500_000
	)
	s := minioServer(b)
	bucket := newBucket(b, s, false)
	ctx := context.Background()
	if _, err := s.PutObject(ctx, bucket, "bench.csv", newPhoneLines(size), size); err != nil {
		b.Fatalf("upload: %v", err)
	}
	src := mustNewS3(b, s3Config(s, bucket, "bench.csv"))
	wantDigest := sha256Hex(newPhoneLines(size))
	digestChunks := func(maxLines int64) func() (string, error) {
		return func() (string, error) {
			check, _ := linecheck.New(linecheck.Phone)
			got, err := DigestChunks(ctx, src, check, SplitOptions{MaxLines: maxLines})
			return got.Digest, err
		}
	}
	runs := []struct {
		metric    string
		run       func() (string, error)
		took, cpu time.Duration
	}{
		{metric: "baseline-MB/s", run: func() (string, error) { return s.GetAndHash(ctx, bucket, "bench.csv", 0) }},
		{metric: "whole-MB/s", run: digestChunks(size / phoneLineLen)},
		{metric: "split-baseline-MB/s", run: func() (string, error) {
			return s.GetAndHash(ctx, bucket, "bench.csv", recommendedMaxLines*phoneLineLen)
		}},
		{metric: "split-MB/s", run: digestChunks(recommendedMaxLines)},
	}
	iterations := 0
	for b.Loop() {
		for i := range runs {
			r := &runs[(i+iterations)%len(runs)]
			start, startCPU := time.Now(), processCPU()
			digest, err := r.run()
			r.took += time.Since(start)
			r.cpu += processCPU() - startCPU
			if err != nil || digest != wantDigest {
				b.Fatalf("%s: digest %s, %v; want %s", r.metric, digest, err, wantDigest)
			}
		}
		iterations++
	}
	rate := func(took time.Duration) float64 { return float64(size) * float64(iterations) / took.Seconds() / 1e6 }
	for _, r := range runs {
		b.ReportMetric(rate(r.took), r.metric)
	}
	b.ReportMetric(rate(runs[1].took)/rate(runs[0].took), "ratio")
	b.ReportMetric(rate(runs[3].took)/rate(runs[2].took), "split-ratio")
	// This process's CPU time over the baseline's (MinIO's is not in it): a
	// busy machine moves it far less than the ratios of wall-clock time.
	b.ReportMetric(float64(runs[1].cpu)/float64(runs[0].cpu), "cpu-ratio")
	b.ReportMetric(float64(runs[3].cpu)/float64(runs[2].cpu), "split-cpu-ratio")
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		panic(err) // RUSAGE_SELF with a valid pointer cannot fail
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
