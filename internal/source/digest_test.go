package source

import (
	"context"
	"errors"
	"io"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crowdpack/crowdpack/internal/linecheck"
)

// fakeSource serves content but claims size bytes.
type fakeSource struct {
	content string
	size    int64
	openErr error
}

func (f fakeSource) Open(context.Context) (io.ReadCloser, Version, error) {
	if f.openErr != nil {
		return nil, Version{}, f.openErr
	}
	return io.NopCloser(strings.NewReader(f.content)), Version{Size: f.size, ETag: "e"}, nil
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
			if err == nil || IsTerminal(err) {
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

func BenchmarkDigestFromMinIO(b *testing.B) {
	const size = (256 << 20) / phoneLineLen * phoneLineLen
	s := minioServer(b)
	bucket := newBucket(b, s, false)
	if _, err := s.PutObject(context.Background(), bucket, "bench.csv", newPhoneLines(size), size); err != nil {
		b.Fatalf("upload: %v", err)
	}
	src := mustNewS3(b, s3Config(s, bucket, "bench.csv"))
	b.SetBytes(size)
	for b.Loop() {
		check, _ := linecheck.New(linecheck.Phone)
		if _, err := Digest(context.Background(), src, check); err != nil {
			b.Fatal(err)
		}
	}
}
