package metrics

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

func TestANamespacesReadsAndBytesAreCountedByNamespace(t *testing.T) {
	src := InstrumentNamespaceSource("marketing", stringSource("0123456789"))
	if _, err := source.Digest(context.Background(), src, nil); err != nil {
		t.Fatal(err)
	}
	r, err := src.OpenRange(context.Background(), source.Version{Size: 10}, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); err != nil {
		t.Fatal(err)
	}
	if got := counterValue(t, SourceBytesReadByNamespace.WithLabelValues("marketing")); got != 15 {
		t.Errorf("bytes of marketing: %v, want 15", got)
	}
	if got := counterValue(t, SourceReads.WithLabelValues("marketing", "file")); got != 1 {
		t.Errorf("file reads of marketing: %v, want 1", got)
	}
	if got := counterValue(t, SourceReads.WithLabelValues("marketing", "range")); got != 1 {
		t.Errorf("range reads of marketing: %v, want 1", got)
	}
}

func TestARetryAfterIsObservedByEndpoint(t *testing.T) {
	recordCall(EndpointUploadPart, time.Now(), &wechatpay.APIError{StatusCode: 429, Code: wechatpay.CodeRateLimitExceeded, RetryAfter: 30 * time.Second})
	recordCall(EndpointUploadPart, time.Now(), &wechatpay.APIError{StatusCode: 500})
	if got := histogramCount(t, EndpointUploadPart); got != 1 {
		t.Errorf("retry-after observations of upload_part: %d, want 1 (a 500 without Retry-After is none)", got)
	}
}

func histogramCount(t *testing.T, endpoint string) uint64 {
	t.Helper()
	for _, m := range collect(t, RetryAfter) {
		if m.GetLabel()[0].GetValue() == endpoint {
			return m.GetHistogram().GetSampleCount()
		}
	}
	return 0
}

func TestUnknownOutcomesAreCountedByCall(t *testing.T) {
	ObserveUnknownOutcome("initiate upload")
	ObserveUnknownOutcome("merge")
	if got := counterValue(t, UnknownOutcomes.WithLabelValues("initiate")); got != 1 {
		t.Errorf("initiate: %v, want 1", got)
	}
	if got := counterValue(t, UnknownOutcomes.WithLabelValues("merge")); got != 1 {
		t.Errorf("merge: %v, want 1", got)
	}
	ObserveReadSlotWait("marketing")
	if got := counterValue(t, ReadSlotWaits.WithLabelValues("marketing")); got != 1 {
		t.Errorf("read slot waits: %v, want 1", got)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	return value(t, c)
}

func TestNamesListsEveryMetricWithItsHistogramSeries(t *testing.T) {
	names := map[string]bool{}
	for _, n := range Names() {
		names[n] = true
	}
	for _, want := range []string{"crowdpack_uploads", "crowdpack_build_info", "crowdpack_wechatpay_requests_total",
		"crowdpack_wechatpay_request_duration_seconds_bucket", "crowdpack_digest_duration_seconds_count",
		"crowdpack_unknown_outcomes_total", "crowdpack_wechatpay_retry_after_seconds_sum"} {
		if !names[want] {
			t.Errorf("Names() lacks %s", want)
		}
	}
	if names["crowdpack_wechatpay_request_duration_seconds"] {
		t.Error("Names() lists a histogram's bare name, which has no series")
	}
}
