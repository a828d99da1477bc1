package uploads

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/metrics"
	"github.com/crowdpack/crowdpack/internal/sandbox"
)

// BenchmarkObjectCreatedToFirstInitiate times what a user waits for before
// WeChat Pay hears of a large file: from a UserPackageUpload created to its
// first initiate request reaching the sandbox. That is the manager's own
// path: the watch, the first status write, the Secrets, the digest of the
// file from MinIO with the line checks and the cut into uploads, and the
// signed initiate. Against it, in the same run, the necessary work alone: a
// plain GetObject of the same object through minio-go, copied in one
// goroutine into the hashes that initiate needs (see miniotest.Server.GetAndHash).
// Twice: "whole", the file as one upload (a maxLinesPerUpload of at least
// its lines), against GET + SHA-256; and "split", the default of 500,000
// lines per upload, against GET + the file's SHA-256 + a SHA-256 per
// upload. The four take turns within each iteration, in a rotating order,
// so that all see the same machine; ns/op is their sum.
//
// The file is CROWDPACK_DIGEST_E2E_MIB MiB of MD5 phone lines (default 256).
// The sandbox drops every initiate (the parts would only load the machine),
// and the object is deleted and the manager idle before the next run.
// Reported: each one's MB/s, "ratio" and "split-ratio" (the goal is 0.9 or
// more for both), and "cpu-ratio" and "split-cpu-ratio", the same for the
// CPU time of this process (the manager, the sandbox), the API server, etcd
// and MinIO, in ticks of 10 ms; and "outside-digest-ms", the time of a run
// to the first initiate that the reconciler's digest metric does not count.
// Timings are reported, never asserted.
func BenchmarkObjectCreatedToFirstInitiate(b *testing.B) {
	size := benchDigestFileSize(b)
	h := newHarness(b, harnessOptions{})
	_, err := storage.PutObject(h.ctx, h.bucket, "big.csv", newRepeatedPhoneLines(size), size)
	must(b, err)
	wantDigest := sha256OfReader(newRepeatedPhoneLines(size))
	pids := []int{os.Getpid(), childProcess(b, "kube-apiserver"), childProcess(b, "etcd"), childProcess(b, "minio")}
	arrivals := dropInitiates(h.sandbox)
	defer h.sandbox.SetHook(nil)

	iteration := 0
	var outsideDigest time.Duration // of the timed runs to the first initiate
	createdToInitiate := func(kind string, maxLines int32) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			u := h.object(fmt.Sprintf("%s-%d", kind, iteration), "big.csv")
			u.Spec.File.MaxLinesPerUpload = ptr.To(maxLines)
			digestBefore := digestTime(b)
			took, err := timeToFirstInitiate(h, u, arrivals)
			outsideDigest += took - (digestTime(b) - digestBefore)
			return took, err
		}
	}
	baseline := func(uploadSize int64) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			start := time.Now()
			digest, err := storage.GetAndHash(h.ctx, h.bucket, "big.csv", uploadSize)
			if err == nil && digest != wantDigest {
				err = fmt.Errorf("digest %s, want %s", digest, wantDigest)
			}
			return time.Since(start), err
		}
	}
	runs := []struct {
		metric    string
		run       func() (time.Duration, error)
		took, cpu time.Duration
	}{
		{metric: "baseline-MB/s", run: baseline(0)},
		{metric: "whole-MB/s", run: createdToInitiate("whole", math.MaxInt32)},
		{metric: "split-baseline-MB/s", run: baseline(recommendedMaxLines * md5LineLen)},
		{metric: "split-MB/s", run: createdToInitiate("split", recommendedMaxLines)},
	}
	// The manager's first object pays for what every later one finds ready
	// (informers, connections): a warm-up, untimed, as in a running operator.
	if _, err := createdToInitiate("warm-up", recommendedMaxLines)(); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	h.waitIdle()
	outsideDigest = 0
	for b.Loop() {
		for i := range runs {
			r := &runs[(i+iteration)%len(runs)]
			startCPU := systemCPU(b, pids)
			took, err := r.run()
			if err != nil {
				b.Fatalf("%s: %v", r.metric, err)
			}
			r.took += took
			r.cpu += systemCPU(b, pids) - startCPU
			b.StopTimer()
			h.waitIdle() // the manager's retries of a dropped initiate end before the next run
			b.StartTimer()
		}
		iteration++
	}
	rate := func(took time.Duration) float64 { return float64(size) * float64(iteration) / took.Seconds() / 1e6 }
	for _, r := range runs {
		b.ReportMetric(rate(r.took), r.metric)
	}
	b.ReportMetric(rate(runs[1].took)/rate(runs[0].took), "ratio")
	b.ReportMetric(rate(runs[3].took)/rate(runs[2].took), "split-ratio")
	// What the manager does besides the digest (the watch, status writes,
	// Secrets, initiate): the same whatever the size of the file.
	b.ReportMetric(float64(outsideDigest.Milliseconds())/float64(2*iteration), "outside-digest-ms")
	// The CPU time of the processes at work over the baseline's: a busy
	// machine moves it far less than the ratios of wall-clock time.
	b.ReportMetric(float64(runs[1].cpu)/float64(runs[0].cpu), "cpu-ratio")
	b.ReportMetric(float64(runs[3].cpu)/float64(runs[2].cpu), "split-cpu-ratio")
}

// digestTime is the time the reconcilers spent in digests so far, from
// their own metric.
func digestTime(b *testing.B) time.Duration {
	var m dto.Metric
	must(b, metrics.DigestDuration.Write(&m))
	return time.Duration(m.GetHistogram().GetSampleSum() * float64(time.Second))
}

// systemCPU is the CPU time this process (the manager, the sandbox), the
// API server, etcd and MinIO have used.
func systemCPU(b *testing.B, pids []int) time.Duration {
	var cpu time.Duration
	for _, pid := range pids {
		cpu += processCPU(b, pid)
	}
	return cpu
}

// md5LineLen is an MD5 phone line with its newline.
const md5LineLen = 33

// benchDigestFileSize is CROWDPACK_DIGEST_E2E_MIB MiB (default 256), in
// whole lines.
func benchDigestFileSize(b *testing.B) int64 {
	mib := int64(256)
	if v := os.Getenv("CROWDPACK_DIGEST_E2E_MIB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			b.Fatalf("CROWDPACK_DIGEST_E2E_MIB=%q: want a number of MiB", v)
		}
		mib = n
	}
	return (mib << 20) / md5LineLen * md5LineLen
}

// dropInitiates makes the sandbox drop every initiate as it arrives, and
// returns where the arrival time of the first one after each arming is
// sent: a run stores true in armed just before it creates its object.
func dropInitiates(sb *sandbox.Server) *initiateArrivals {
	a := &initiateArrivals{at: make(chan time.Time, 1)}
	sb.SetHook(func(e sandbox.Endpoint, _ sandbox.Record, phase sandbox.Phase) bool {
		if e != sandbox.EndpointInitiate || phase != sandbox.PhaseArrived {
			return false
		}
		if a.armed.CompareAndSwap(true, false) {
			a.at <- time.Now()
		}
		return true
	})
	return a
}

// initiateArrivals tells when the first initiate after arming arrived.
type initiateArrivals struct {
	armed atomic.Bool
	at    chan time.Time
}

// timeToFirstInitiate creates u and returns how long its first initiate
// took to reach the sandbox; then it deletes u.
func timeToFirstInitiate(h *harness, u *upv1.UserPackageUpload, arrivals *initiateArrivals) (time.Duration, error) {
	arrivals.armed.Store(true)
	start := time.Now()
	if err := kube.Client.Create(h.ctx, u); err != nil {
		return 0, fmt.Errorf("create %s: %w", u.Name, err)
	}
	defer func() { _ = kube.Client.Delete(h.ctx, u) }()
	select {
	case at := <-arrivals.at:
		return at.Sub(start), nil
	case <-time.After(5 * time.Minute):
		arrivals.armed.Store(false)
		got := &upv1.UserPackageUpload{}
		_ = kube.Client.Get(h.ctx, client.ObjectKeyFromObject(u), got)
		return 0, fmt.Errorf("no initiate for %s in 5 minutes; status:\n%s", u.Name, describe(got))
	}
}

// repeatedPhoneLines reads size bytes of MD5 phone lines, cycling through a
// block of 4,096 distinct ones, so that a file of any size costs no memory.
type repeatedPhoneLines struct {
	block     []byte
	offset    int
	remaining int64
}

func newRepeatedPhoneLines(size int64) *repeatedPhoneLines {
	var block []byte
	for i := range 4096 {
		sum := md5.Sum(fmt.Appendf(nil, "1390000%04d", i))
		block = append(hex.AppendEncode(block, sum[:]), '\n')
	}
	return &repeatedPhoneLines{block: block, remaining: size}
}

func (r *repeatedPhoneLines) Read(p []byte) (int, error) {
	if r.remaining == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.remaining)]
	n := 0
	for n < len(p) {
		copied := copy(p[n:], r.block[r.offset:])
		n += copied
		r.offset = (r.offset + copied) % len(r.block)
	}
	r.remaining -= int64(n)
	return n, nil
}

func sha256OfReader(r io.Reader) string {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		panic(err) // a repeatedPhoneLines never fails
	}
	return hex.EncodeToString(h.Sum(nil))
}
