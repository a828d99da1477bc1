package uploads

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// BenchmarkWritesPerUpload counts what one upload costs the API server in
// writes — status updates and patches, and events — for a 1-part and a
// 25-part file taken through initiate, the parts and merge. The load an
// operator puts on etcd is what cluster owners watch first.
func BenchmarkWritesPerUpload(b *testing.B) {
	const objects = 10
	for _, parts := range []int{1, 25} {
		b.Run(fmt.Sprintf("%d-parts", parts), func(b *testing.B) {
			data := phoneFile(0, 250) // 8,250 bytes
			partSize := int64(len(data)+parts-1) / int64(parts)
			var writes atomic.Int64
			wrap := func(c client.Client) client.Client { return &countingClient{Client: c, writes: &writes} }
			for range b.N {
				h := newHarness(b, harnessOptions{partSize: partSize, wrapClient: wrap})
				h.put("vip.csv", data)
				writes.Store(0)
				for i := range objects {
					u := h.object(fmt.Sprintf("vip-%d", i), "vip.csv")
					u.Spec.File.Filename = fmt.Sprintf("vip_%d.csv", i)
					h.create(u)
				}
				waitAllReady(b, h, objects, time.Minute)
				time.Sleep(500 * time.Millisecond) // events are sent asynchronously
				events := len(h.eventsOfNamespace())
				b.ReportMetric(float64(writes.Load())/objects, "status-writes/upload")
				b.ReportMetric(float64(events)/objects, "events/upload")
				b.ReportMetric(float64(writes.Load()+int64(events))/objects, "writes/upload")
				h.stopManager()
			}
		})
	}
}

// countingClient counts the status writes the reconciler makes.
type countingClient struct {
	client.Client
	writes *atomic.Int64
}

func (c *countingClient) Status() client.SubResourceWriter {
	return &countingStatusWriter{SubResourceWriter: c.Client.Status(), writes: c.writes}
}

type countingStatusWriter struct {
	client.SubResourceWriter
	writes *atomic.Int64
}

func (w *countingStatusWriter) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	w.writes.Add(1)
	return w.SubResourceWriter.Update(ctx, obj, opts...)
}

func (w *countingStatusWriter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	w.writes.Add(1)
	return w.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}
