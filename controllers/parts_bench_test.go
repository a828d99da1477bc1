package controllers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	v1 "github.com/crowdpack/crowdpack/api/v1alpha1"
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
// to status) with plain loopback PUTs of the same bytes from memory, at the
// same concurrency. The ratio of the two MB/s is crowdpack's overhead.
func BenchmarkPartUpload(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef\n"), benchFileSize/33+1)[:benchFileSize]

	b.Run("crowdpack", func(b *testing.B) {
		h := newHarness(b, harnessOptions{partSize: benchPartSize, noManager: true})
		h.put("bench.csv", data)
		src, err := source.NewS3(source.S3Config{Endpoint: storage.Endpoint, Bucket: h.bucket, Key: "bench.csv",
			Insecure: true, AccessKey: storage.AccessKey, SecretKey: storage.SecretKey})
		must(b, err)
		result, err := source.Digest(h.ctx, src, nil)
		must(b, err)
		creds, err := identity.Credentials()
		must(b, err)
		wc, err := wechatpay.New(creds, wechatpay.Config{BaseURL: h.api.URL})
		must(b, err)
		u := h.object("bench", "bench.csv")
		h.create(u)

		b.SetBytes(benchFileSize)
		b.ResetTimer()
		for i := range b.N {
			b.StopTimer()
			plan, err := wc.InitiateUpload(h.ctx, wechatpay.InitiateUploadRequest{
				Filename: fmt.Sprintf("bench-%d.csv", i), Digest: result.Digest,
				PackageType: wechatpay.PackageTypeExposure, DataType: wechatpay.DataTypePhone,
				Description: "a benchmark of part uploads", FileSize: benchFileSize,
			})
			must(b, err)
			u.Status.Upload = &v1.UploadStatus{ID: plan.UploadID, Filename: fmt.Sprintf("bench-%d.csv", i), Generation: 1, Digest: result.Digest,
				PartSize: plan.FilePartSize, PartCount: plan.FilePartCount}
			u.Status.Source = &v1.SourceStatus{Size: benchFileSize, Digest: digestPrefix + result.Digest, Generation: 1}
			w := newStatusWriter(kube.Client, kube.Client, u)
			must(b, w.claim(h.ctx, u))
			p := &partUploader{
				wechat:   wc,
				source:   src,
				version:  result.Version,
				upload:   *u.Status.Upload,
				memory:   semaphore.NewWeighted(64 << 20),
				nsMemory: semaphore.NewWeighted(32 << 20),
				progress: &progress{u: u, status: w, acked: newPartSet(plan.FilePartCount), record: func(int64) {}},
				backoff:  10 * time.Millisecond,
			}
			b.StartTimer()
			must(b, p.run(h.ctx, benchParallel))
		}
	})

	b.Run("plain loopback PUTs", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
		}))
		defer srv.Close()
		b.SetBytes(benchFileSize)
		b.ResetTimer()
		for range b.N {
			g, ctx := errgroup.WithContext(context.Background())
			g.SetLimit(benchParallel)
			for off := 0; off < benchFileSize; off += benchPartSize {
				part := data[off:min(off+benchPartSize, benchFileSize)]
				g.Go(func() error {
					req, err := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL, bytes.NewReader(part))
					if err != nil {
						return err
					}
					resp, err := srv.Client().Do(req)
					if err != nil {
						return err
					}
					return resp.Body.Close()
				})
			}
			must(b, g.Wait())
		}
	})
}
