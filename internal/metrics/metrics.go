// Package metrics holds crowdpack's Prometheus metrics. They are registered
// with controller-runtime's registry, so the manager serves them on its
// metrics endpoint (--metrics-bind-address) next to controller-runtime's own.
//
//	crowdpack_wechatpay_requests_total{endpoint,status,code}   counter
//	crowdpack_wechatpay_request_duration_seconds{endpoint}     histogram
//	crowdpack_source_read_bytes_total                          counter
//	crowdpack_digest_duration_seconds                          histogram
//	crowdpack_uploads{phase}                                   gauge
//	crowdpack_build_info{version,commit,goversion}             gauge (1)
//
// The WeChat Pay and object-storage clients are instrumented from the
// outside, by decorators (InstrumentWeChatPay, InstrumentSource): the
// clients themselves know nothing of Prometheus.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Endpoint label values: the four brand API calls.
const (
	EndpointInitiate   = "initiate"
	EndpointUploadPart = "upload_part"
	EndpointMerge      = "merge"
	EndpointExpand     = "expand"
)

// StatusError is the status label of a call that got no HTTP answer
// (network error, timeout, cancelled, refused before sending).
const StatusError = "error"

var (
	// WeChatPayRequests counts brand API calls by endpoint, HTTP status
	// ("error" when no answer came back) and WeChat Pay error code (empty
	// on success).
	WeChatPayRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crowdpack_wechatpay_requests_total",
		Help: "WeChat Pay brand API calls, by endpoint, HTTP status (\"error\" when no answer came back) and WeChat Pay error code.",
	}, []string{"endpoint", "status", "code"})

	// WeChatPayDuration is the latency of brand API calls, answered or not.
	WeChatPayDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "crowdpack_wechatpay_request_duration_seconds",
		Help:    "Duration of WeChat Pay brand API calls, by endpoint.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"endpoint"})

	// SourceBytesRead counts bytes read from object storage: each file is
	// read once for the digest and once more, part by part, for the upload.
	SourceBytesRead = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "crowdpack_source_read_bytes_total",
		Help: "Bytes read from object storage (digests and parts).",
	})

	// DigestDuration is the time taken to stream a whole file through
	// SHA-256 and the line checks; only successful digests are observed.
	DigestDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "crowdpack_digest_duration_seconds",
		Help:    "Duration of successful file digests (SHA-256 and line checks of the whole file).",
		Buckets: prometheus.ExponentialBuckets(0.01, 4, 9), // 10 ms .. ~11 min
	})
)

func init() {
	ctrlmetrics.Registry.MustRegister(WeChatPayRequests, WeChatPayDuration, SourceBytesRead, DigestDuration, Uploads, BuildInfo)
}

// ObserveDigest records one successful digest that started at start.
func ObserveDigest(start time.Time) {
	DigestDuration.Observe(time.Since(start).Seconds())
}
