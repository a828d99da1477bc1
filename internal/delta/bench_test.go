package delta

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/testutil/miniotest"
)

// benchLines is the members of each export of the benchmarks:
// CROWDPACK_DELTA_LINES, or def.
func benchLines(def int64) int64 {
	n, err := strconv.ParseInt(os.Getenv("CROWDPACK_DELTA_LINES"), 10, 64)
	if err != nil || n <= 0 {
		return def
	}
	return n
}

// export is a deterministic reader of a raw-number export, made line by
// line so any size costs no memory. The base holds the even numbers
// 13000000000+2i, i < lines; the revision the same but for every 20th,
// replaced by the odd number after it: lines/20 members added, lines/20
// left, in the middle of the file. Numbers are written in the forms of a
// CRM export, the revision's form of a number other than the base's.
type export struct {
	revision  bool
	lines     int64
	next      int64
	line, buf []byte
}

func newExport(lines int64, revision bool) *export {
	return &export{lines: lines, revision: revision, buf: make([]byte, 0, 64)}
}

// exportSize is the length of an export.
func exportSize(lines int64, revision bool) int64 {
	n, err := io.Copy(io.Discard, newExport(lines, revision))
	if err != nil {
		panic(err)
	}
	return n
}

func (e *export) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(e.line) == 0 {
			if e.next == e.lines {
				break
			}
			e.line = e.makeLine(e.next)
			e.next++
		}
		k := copy(p[n:], e.line)
		n += k
		e.line = e.line[k:]
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (e *export) makeLine(i int64) []byte {
	number := 13_000_000_000 + 2*i
	form := i % 4
	if e.revision {
		form = (i + 1) % 4
		if i%20 == 7 {
			number++
		}
	}
	dst := e.buf[:0]
	switch form {
	case 1:
		dst = append(dst, "+86 "...)
	case 3:
		dst = append(dst, "0086"...)
	}
	dst = strconv.AppendInt(dst, number, 10)
	if form == 3 {
		dst = append(dst, '\r')
	}
	return append(dst, '\n')
}

// exportOpener opens an export made on the fly.
type exportOpener struct {
	lines    int64
	revision bool
	size     int64
}

func newExportOpener(lines int64, revision bool) exportOpener {
	return exportOpener{lines: lines, revision: revision, size: exportSize(lines, revision)}
}

func (o exportOpener) Open(context.Context) (io.ReadCloser, error) {
	return io.NopCloser(newExport(o.lines, o.revision)), nil
}

func (o exportOpener) Size() int64 { return o.size }

// BenchmarkCompute computes the delta of two exports made in memory, without
// any store: the CPU cost alone, to profile. The exports have
// CROWDPACK_DELTA_LINES numbers each, default 1,000,000. Reported: passes
// and lines/s of the revision.
func BenchmarkCompute(b *testing.B) {
	n := benchLines(1_000_000)
	revision, base := newExportOpener(n, true), newExportOpener(n, false)
	pool := NewPool(DefaultBudget)
	var counts Counts
	for b.Loop() {
		var err error
		counts, err = Compute(context.Background(), revision, base, raw, io.Discard, Options{Pool: pool})
		if err != nil {
			b.Fatal(err)
		}
	}
	checkBenchCounts(b, n, counts)
	b.ReportMetric(float64(counts.Passes), "passes")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

func checkBenchCounts(b *testing.B, n int64, counts Counts) {
	b.Helper()
	if counts.Added != n/20 || counts.Left != n/20 || counts.Unchanged != n-n/20 || counts.BaseMembers != n {
		b.Fatalf("counts %+v, want %d added and left of %d", counts, n/20, n)
	}
}

// BenchmarkDeltaFromMinIO computes the delta of two raw-number exports of
// CROWDPACK_DELTA_LINES numbers each (default 5,000,000; the revision adds
// 5% and drops 5%) stored in MinIO, hashed with MD5 as the operator does,
// with the default budget of 64 MiB, its output digested with SHA-256.
// Within each iteration, in a rotating order, it also digests both files as
// the operator does today for a raw export (digest-both: source.DigestChunks,
// SHA-256 of the file and of its MD5 lines, the hashing, the cut into
// uploads of 500,000 lines) and with SHA-256 alone (sha256-both:
// source.Digest), one file after the other, so that all see the same
// machine. Reported: each one's seconds per iteration and heap (the peak of
// the heap in use, sampled every 5 ms, over the heap in use after a
// collection just before it; the goal for the delta is the budget plus the
// digest's own), ratio (delta over digest-both; the goal is 3 or
// less), ratio-sha256 (delta over sha256-both) and the passes. Timings are
// reported, never asserted.
func BenchmarkDeltaFromMinIO(b *testing.B) {
	n := benchLines(5_000_000)
	s := miniotest.StartT(b)
	ctx := context.Background()
	if err := s.MakeBucket(ctx, "delta"); err != nil {
		b.Fatal(err)
	}
	var versions [2]source.Version
	var sources [2]source.Source
	for i, name := range []string{"base.csv", "revision.csv"} {
		revision := i == 1
		if _, err := s.PutObject(ctx, "delta", name, newExport(n, revision), exportSize(n, revision)); err != nil {
			b.Fatalf("upload %s: %v", name, err)
		}
		src, err := source.NewS3(source.S3Config{Endpoint: s.Endpoint, Bucket: "delta", Key: name, Insecure: true,
			AccessKey: s.AccessKey, SecretKey: s.SecretKey})
		if err != nil {
			b.Fatal(err)
		}
		got, err := source.Digest(ctx, src, nil)
		if err != nil {
			b.Fatal(err)
		}
		sources[i], versions[i] = src, got.Version
	}
	base, revision := SourceOpener(sources[0], versions[0]), SourceOpener(sources[1], versions[1])
	split := source.SplitOptions{MaxLines: 500_000, HashMD5: true}

	var counts Counts
	var outDigest string
	runs := []struct {
		metric string
		run    func() error
		took   time.Duration
		peak   uint64
	}{
		{metric: "digest-both", run: func() error {
			for _, src := range sources {
				if _, err := source.DigestChunks(ctx, src, nil, split); err != nil {
					return err
				}
			}
			return nil
		}},
		{metric: "sha256-both", run: func() error {
			for _, src := range sources {
				if _, err := source.Digest(ctx, src, nil); err != nil {
					return err
				}
			}
			return nil
		}},
		{metric: "delta", run: func() error {
			hash := sha256.New()
			var err error
			// A pool of its own: its arrays are garbage, collected before
			// the next run, so that each run's heap growth is its own.
			counts, err = Compute(ctx, revision, base, raw, hash, Options{Pool: NewPool(DefaultBudget)})
			digest := hex.EncodeToString(hash.Sum(nil))
			if outDigest != "" && digest != outDigest {
				b.Errorf("delta output %s, was %s", digest, outDigest)
			}
			outDigest = digest
			return err
		}},
	}
	iterations := 0
	for b.Loop() {
		for i := range runs {
			r := &runs[(i+iterations)%len(runs)]
			runtime.GC()
			before := heapInUse()
			stop := sampleHeap()
			start := time.Now()
			err := r.run()
			r.took += time.Since(start)
			peak := stop()
			r.peak = max(r.peak, peak-min(before, peak))
			if err != nil {
				b.Fatalf("%s: %v", r.metric, err)
			}
		}
		iterations++
	}
	checkBenchCounts(b, n, counts)
	for _, r := range runs {
		b.ReportMetric(r.took.Seconds()/float64(iterations), r.metric+"-s")
		b.ReportMetric(float64(r.peak)/(1<<20), r.metric+"-heap-MiB")
	}
	b.ReportMetric(runs[2].took.Seconds()/runs[0].took.Seconds(), "ratio")
	b.ReportMetric(runs[2].took.Seconds()/runs[1].took.Seconds(), "ratio-sha256")
	b.ReportMetric(float64(counts.Passes), "passes")
	b.ReportMetric(float64(versions[0].Size+versions[1].Size)/(1<<20), "MiB-both")
}

// heapInUse is the heap in use now, as sampleHeap counts it.
func heapInUse() uint64 {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
	}
	metrics.Read(samples)
	return samples[0].Value.Uint64() + samples[1].Value.Uint64()
}

// sampleHeap samples the heap in use (objects, live or not yet swept, and
// free spans not returned) every 5 ms until stop, which returns the peak.
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
			if inUse := samples[0].Value.Uint64() + samples[1].Value.Uint64(); inUse > peak.Load() {
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
