package uploads

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/statuswriter"
	"github.com/crowdpack/crowdpack/controllers/uploads/parts"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

const (
	benchFileSize = 64 << 20
	benchPartSize = 5 << 20
	benchParallel = 4
)

// BenchmarkPartUpload compares sending a file's parts the way the
// reconciler does (ranged reads from MinIO pinned to a version, a SHA-256
// per part, a signed multipart request, a verified answer, progress written
// to status) with the necessary work alone: the same ranged GETs from the
// same MinIO through minio-go, a SHA-256 of each part and the same signed,
// verified UploadPart calls to the same sandbox, at the same concurrency,
// in a minimal loop. The two take turns within each iteration, in a
// rotating order, so that both see the same machine; ns/op is their sum.
// Reported: each one's MB/s and "ratio", crowdpack over the necessary work
// (the goal is 0.8 or more). Timings are reported, never asserted.
func BenchmarkPartUpload(b *testing.B) {
	h := newHarness(b, harnessOptions{partSize: benchPartSize, noManager: true})
	h.put("bench.csv", bytes.Repeat([]byte("0123456789abcdef0123456789abcdef\n"), benchFileSize/33+1)[:benchFileSize])
	src, err := source.NewS3(source.S3Config{Endpoint: storage.Endpoint, Bucket: h.bucket, Key: "bench.csv",
		Insecure: true, AccessKey: storage.AccessKey, SecretKey: storage.SecretKey})
	must(b, err)
	digested, err := source.Digest(h.ctx, src, nil)
	must(b, err)
	creds, err := identity.Credentials()
	must(b, err)
	wc, err := wechatpay.New(creds, wechatpay.Config{BaseURL: h.api.URL})
	must(b, err)
	u := h.object("bench", "bench.csv")
	h.create(u)

	initiate := func(name string) *wechatpay.InitiateUploadResponse {
		plan, err := wc.InitiateUpload(h.ctx, wechatpay.InitiateUploadRequest{
			Filename: name, Digest: digested.Digest,
			PackageType: wechatpay.PackageTypeExposure, DataType: wechatpay.DataTypePhone,
			Description: "a benchmark of part uploads", FileSize: benchFileSize,
		})
		must(b, err)
		return plan
	}
	runs := []struct {
		metric string
		// prepare does the untimed setup of one run and returns the timed work.
		prepare func(i int) func() error
		took    time.Duration
	}{
		{metric: "crowdpack-MB/s", prepare: func(i int) func() error {
			name := fmt.Sprintf("bench-%d.csv", i)
			p := benchPartUploader(b, h, u, wc, src, digested, name, initiate(name))
			return func() error { return p.Run(h.ctx, benchParallel) }
		}},
		{metric: "necessary-MB/s", prepare: func(i int) func() error {
			name := fmt.Sprintf("necessary-%d.csv", i)
			plan := initiate(name)
			return func() error {
				return uploadPartsPlainly(h.ctx, wc, h.bucket, "bench.csv", name, plan)
			}
		}},
	}
	iterations := 0
	for b.Loop() {
		for i := range runs {
			r := &runs[(i+iterations)%len(runs)]
			b.StopTimer()
			work := r.prepare(iterations)
			b.StartTimer()
			start := time.Now()
			err := work()
			r.took += time.Since(start)
			must(b, err)
		}
		iterations++
	}
	rate := func(took time.Duration) float64 { return benchFileSize * float64(iterations) / took.Seconds() / 1e6 }
	for _, r := range runs {
		b.ReportMetric(rate(r.took), r.metric)
	}
	b.ReportMetric(rate(runs[0].took)/rate(runs[1].took), "ratio")
}

// benchPartUploader is the reconciler's part uploader for a fresh upload,
// with the object's status claimed as a reconcile would.
func benchPartUploader(b *testing.B, h *harness, u *upv1.UserPackageUpload, wc wechatpay.API, src source.Source,
	digested source.Result, filename string, plan *wechatpay.InitiateUploadResponse) *parts.Uploader {
	u.Status.Uploads = []upv1.UploadStatus{{Index: 1, ID: plan.UploadID, Filename: filename, Generation: 1, Digest: digested.Digest,
		PartSize: plan.FilePartSize, PartCount: plan.FilePartCount, End: benchFileSize, Size: benchFileSize}}
	u.Status.Source = &upv1.SourceStatus{Size: benchFileSize, Digest: digestPrefix + digested.Digest, Generation: 1}
	w := statuswriter.New(kube.Client, kube.Client, u)
	must(b, w.Claim(h.ctx, u))
	return &parts.Uploader{
		WeChat:   wc,
		Source:   src,
		Version:  digested.Version,
		Upload:   *firstUpload(u),
		Memory:   semaphore.NewWeighted(64 << 20),
		NsMemory: semaphore.NewWeighted(32 << 20),
		Progress: parts.NewProgress(u, 0, w, parts.NewSet(plan.FilePartCount), func(int64) {}, setSummary),
		Backoff:  10 * time.Millisecond,
	}
}

// uploadPartsPlainly is the necessary work of a part upload and nothing
// else: benchParallel workers, each with one reused buffer, take parts in
// turn; each part is read with one ranged GET through minio-go, hashed with
// SHA-256 and sent with the client's signed, verified UploadPart.
func uploadPartsPlainly(ctx context.Context, wc *wechatpay.Client, bucket, key, filename string, plan *wechatpay.InitiateUploadResponse) error {
	store := minio.Core{Client: storage.Client}
	parts := make(chan int, plan.FilePartCount)
	for part := 1; part <= int(plan.FilePartCount); part++ {
		parts <- part
	}
	close(parts)
	g, ctx := errgroup.WithContext(ctx)
	for range benchParallel {
		buf := make([]byte, plan.FilePartSize)
		g.Go(func() error {
			for part := range parts {
				offset, size := wechatpay.PartBounds(benchFileSize, plan.FilePartSize, part)
				data := buf[:size]
				if err := getRange(ctx, store, bucket, key, offset, data); err != nil {
					return fmt.Errorf("part %d: %w", part, err)
				}
				sum := sha256.Sum256(data)
				if _, err := wc.UploadPart(ctx, wechatpay.Part{
					UploadID: plan.UploadID, Number: part, Filename: filename, Size: size,
					Digest: hex.EncodeToString(sum[:]),
					Open:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
				}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// getRange reads len(buf) bytes of key from offset into buf.
func getRange(ctx context.Context, store minio.Core, bucket, key string, offset int64, buf []byte) error {
	var opts minio.GetObjectOptions
	if err := opts.SetRange(offset, offset+int64(len(buf))-1); err != nil {
		return err
	}
	body, _, _, err := store.GetObject(ctx, bucket, key, opts)
	if err != nil {
		return err
	}
	defer body.Close()
	_, err = io.ReadFull(body, buf)
	return err
}
