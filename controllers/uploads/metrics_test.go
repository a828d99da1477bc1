package uploads

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/crowdpack/crowdpack/internal/metrics"
)

// TestMetricsAreServedOnTheManagersEndpoint runs a multi-part upload to
// Ready with a manager serving /metrics, and reads crowdpack's series over
// HTTP as Prometheus would. Metrics are process-global and other tests of
// the package run in the same process, so counters are compared before and
// after this test's upload.
func TestMetricsAreServedOnTheManagersEndpoint(t *testing.T) {
	addr := freeAddr(t)
	h := newHarness(t, harnessOptions{partSize: 64 << 10, metricsAddr: addr})
	url := "http://" + addr + "/metrics"
	before := scrape(t, url)

	data := phoneFile(0, 10_000) // 330,000 bytes: 6 parts of 64 KiB
	h.put("metrics.csv", data)
	h.create(h.object("metrics", "metrics.csv"))
	u := h.waitReady("metrics")
	parts := float64(firstUpload(u).PartCount)
	if parts < 2 {
		t.Fatalf("want a multi-part upload, got %v parts", parts)
	}
	// The gauge is set when the reconcile that wrote Ready returns, a moment
	// after the status the test has just read.
	ready := map[string]string{"phase": metrics.PhaseReady}
	readyBefore := before.value("crowdpack_uploads", ready)
	after := scrapeUntil(t, url, 20*time.Second, func(f families) bool {
		return f.value("crowdpack_uploads", ready) > readyBefore
	})

	delta := func(name string, labels map[string]string) float64 {
		return after.value(name, labels) - before.value(name, labels)
	}
	ok200 := func(endpoint string) map[string]string {
		return map[string]string{"endpoint": endpoint, "status": "200", "code": ""}
	}
	for _, c := range []struct {
		what      string
		got, want float64
	}{
		{"successful initiate calls", delta("crowdpack_wechatpay_requests_total", ok200(metrics.EndpointInitiate)), 1},
		{"successful upload_part calls", delta("crowdpack_wechatpay_requests_total", ok200(metrics.EndpointUploadPart)), parts},
		{"successful merge calls", delta("crowdpack_wechatpay_requests_total", ok200(metrics.EndpointMerge)), 1},
		{"timed initiate calls", delta("crowdpack_wechatpay_request_duration_seconds_count", map[string]string{"endpoint": metrics.EndpointInitiate}), 1},
		{"timed upload_part calls", delta("crowdpack_wechatpay_request_duration_seconds_count", map[string]string{"endpoint": metrics.EndpointUploadPart}), parts},
		{"digests", delta("crowdpack_digest_duration_seconds_count", nil), 1},
		{"objects Ready", delta("crowdpack_uploads", ready), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v more, want %v", c.what, c.got, c.want)
		}
	}
	// Read once for the digest, and once more part by part.
	if got, want := delta("crowdpack_source_read_bytes_total", nil), float64(2*len(data)); got < want {
		t.Errorf("source bytes read grew by %v, want at least %v (2 × %d)", got, want, len(data))
	}
	if got := delta("crowdpack_digest_duration_seconds_sum", nil); got <= 0 {
		t.Errorf("digest duration sum grew by %v, want > 0", got)
	}
	for _, p := range metrics.Phases {
		if !after.has("crowdpack_uploads", map[string]string{"phase": p}) {
			t.Errorf("no crowdpack_uploads series for phase %s", p)
		}
	}

	// A deleted object is no longer counted.
	must(t, kube.Client.Delete(h.ctx, u))
	f := scrapeUntil(t, url, 20*time.Second, func(f families) bool {
		return f.value("crowdpack_uploads", ready) == readyBefore
	})
	if got := f.value("crowdpack_uploads", ready); got != readyBefore {
		t.Fatalf("the deleted object is still counted: crowdpack_uploads{phase=\"Ready\"} is %v, want %v", got, readyBefore)
	}
}

// scrapeUntil scrapes url until done holds or timeout has passed, and
// returns the last scrape.
func scrapeUntil(t testing.TB, url string, timeout time.Duration, done func(families) bool) families {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		f := scrape(t, url)
		if done(f) || time.Now().After(deadline) {
			return f
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// freeAddr returns a 127.0.0.1 address nothing listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := l.Addr().String()
	must(t, l.Close())
	return addr
}

// families is one scrape, parsed.
type families map[string]*dto.MetricFamily

// scrape reads url (waiting up to 10 s for the endpoint to come up).
func scrape(t testing.TB, url string) families {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, readErr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if readErr == nil && resp.StatusCode == http.StatusOK {
				parser := expfmt.NewTextParser(model.UTF8Validation)
				fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
				must(t, err)
				return fams
			}
			err = fmt.Errorf("HTTP %d, %v", resp.StatusCode, readErr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("scrape %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// find returns the sample of name (a family, or a histogram's _count or
// _sum) whose labels include labels, and whether there is one.
func (f families) find(name string, labels map[string]string) (float64, bool) {
	base, part := name, ""
	for _, suffix := range []string{"_count", "_sum"} {
		if _, ok := f[name]; !ok && len(name) > len(suffix) && name[len(name)-len(suffix):] == suffix {
			base, part = name[:len(name)-len(suffix)], suffix
		}
	}
	fam, ok := f[base]
	if !ok {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case part == "_count":
			return float64(m.GetHistogram().GetSampleCount()), true
		case part == "_sum":
			return m.GetHistogram().GetSampleSum(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// value is the sample's value, 0 when absent (a counter not yet incremented).
func (f families) value(name string, labels map[string]string) float64 {
	v, _ := f.find(name, labels)
	return v
}

func (f families) has(name string, labels map[string]string) bool {
	_, ok := f.find(name, labels)
	return ok
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
