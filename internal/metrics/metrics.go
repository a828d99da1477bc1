// Package metrics holds crowdpack's Prometheus metrics. They are registered
// with controller-runtime's registry, so the manager serves them on its
// metrics endpoint (--metrics-bind-address) next to controller-runtime's own.
//
//	crowdpack_wechatpay_requests_total{endpoint,status,code}   counter
//	crowdpack_wechatpay_request_duration_seconds{endpoint}     histogram
//	crowdpack_source_read_bytes_total                          counter
//	crowdpack_source_reads_total{upload_namespace,read}        counter
//	crowdpack_source_read_bytes_by_namespace_total{upload_namespace} counter
//	crowdpack_read_slot_waits_total{upload_namespace}          counter
//	crowdpack_wechatpay_retry_after_seconds{endpoint}          histogram
//	crowdpack_unknown_outcomes_total{call}                     counter
//	crowdpack_digest_duration_seconds                          histogram
//	crowdpack_uploads{phase}                                   gauge
//	crowdpack_build_info{version,commit,goversion}             gauge (1)
//
// The WeChat Pay and object-storage clients are instrumented from the
// outside, by decorators (InstrumentWeChatPay, InstrumentSource): the
// clients themselves know nothing of Prometheus.
package metrics

import (
	"strings"
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

// The namespace of an upload is labelled upload_namespace, not namespace:
// Prometheus gives the scraped manager's own namespace that name, and a
// clashing label of the metric would be renamed exported_namespace.
var (
	// SourceReads counts the reads opened on object storage by the
	// namespace of the upload: read="file" for a whole-file digest read,
	// read="range" for a part's ranged read.
	SourceReads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crowdpack_source_reads_total",
		Help: "Reads opened on object storage, by the upload's namespace and read (file: a digest of the whole file; range: a part).",
	}, []string{"upload_namespace", "read"})

	// SourceBytesReadByNamespace is crowdpack_source_read_bytes_total by
	// the namespace of the upload the bytes were read for.
	SourceBytesReadByNamespace = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crowdpack_source_read_bytes_by_namespace_total",
		Help: "Bytes read from object storage (digests and parts), by the upload's namespace.",
	}, []string{"upload_namespace"})

	// ReadSlotWaits counts the times an object found no free read slot
	// (--max-concurrent-reconciles, at most half of them per namespace) and
	// was put back to wait for one.
	ReadSlotWaits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crowdpack_read_slot_waits_total",
		Help: "Times an upload had to wait for a read slot, by its namespace.",
	}, []string{"upload_namespace"})

	// RetryAfter observes the delays WeChat Pay asked for with Retry-After
	// (on 429s and 5xx), which the operator honours before the next call.
	RetryAfter = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "crowdpack_wechatpay_retry_after_seconds",
		Help:    "Delays WeChat Pay asked for with Retry-After, by endpoint.",
		Buckets: []float64{1, 2, 5, 10, 30, 60, 120, 300, 600},
	}, []string{"endpoint"})

	// UnknownOutcomes counts calls made again because the answer to an
	// earlier one was lost (call: initiate, merge, expand).
	UnknownOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crowdpack_unknown_outcomes_total",
		Help: "WeChat Pay calls whose answer was lost and that were made again, by call (initiate, merge, expand).",
	}, []string{"call"})

	// SyncChecks counts the times a UserPackageSync looked at its source.
	SyncChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crowdpack_sync_checks_total",
		Help: "Checks of a UserPackageSync's source for a new revision, by the sync's namespace.",
	}, []string{"sync_namespace"})

	// SyncRevisions counts the revisions syncs finished with, by result.
	SyncRevisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crowdpack_sync_revisions_total",
		Help: "Revisions UserPackageSyncs finished with, by namespace and result (Synced, Unchanged, HeldBack, Failed).",
	}, []string{"sync_namespace", "result"})

	// SyncMembersAdded counts the members syncs sent to their crowd packages.
	SyncMembersAdded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crowdpack_sync_members_added_total",
		Help: "Members UserPackageSyncs added to their crowd packages (sent in Delta mode, or whole), by namespace.",
	}, []string{"sync_namespace"})
)

// collectors are crowdpack's own metrics, as the manager serves them.
var collectors = []prometheus.Collector{WeChatPayRequests, WeChatPayDuration, SourceBytesRead, DigestDuration, Uploads, BuildInfo,
	SourceReads, SourceBytesReadByNamespace, ReadSlotWaits, RetryAfter, UnknownOutcomes,
	SyncChecks, SyncRevisions, SyncMembersAdded}

func init() {
	ctrlmetrics.Registry.MustRegister(collectors...)
}

// Names lists the series names of crowdpack's own metrics, those of a
// histogram's _bucket, _sum and _count included, whether or not they have a
// series yet: what dashboards and alerts may query.
func Names() []string {
	var names []string
	for _, c := range collectors {
		ch := make(chan *prometheus.Desc, 8)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			name := descName(d)
			switch c.(type) {
			case prometheus.Histogram, *prometheus.HistogramVec:
				names = append(names, name+"_bucket", name+"_sum", name+"_count")
			default:
				names = append(names, name)
			}
		}
	}
	return names
}

// descName is the fqName of d, which the client library shows only in
// d.String(): Desc{fqName: "name", ...}.
func descName(d *prometheus.Desc) string {
	_, rest, _ := strings.Cut(d.String(), `fqName: "`)
	name, _, _ := strings.Cut(rest, `"`)
	return name
}

// ObserveUnknownOutcome counts a call made again after a lost answer; call
// is the controllers' name of it ("initiate upload", "merge", "expand"),
// whose first word is the label.
func ObserveUnknownOutcome(call string) {
	name, _, _ := strings.Cut(call, " ")
	UnknownOutcomes.WithLabelValues(name).Inc()
}

// ObserveReadSlotWait counts an upload of namespace put back to wait for a
// read slot.
func ObserveReadSlotWait(namespace string) {
	ReadSlotWaits.WithLabelValues(namespace).Inc()
}

// ObserveDigest records one successful digest that started at start.
func ObserveDigest(start time.Time) {
	DigestDuration.Observe(time.Since(start).Seconds())
}

// ObserveSyncRun counts a sync's run that ended with result, and the
// members it added.
func ObserveSyncRun(namespace, result string, added int64) {
	SyncRevisions.WithLabelValues(namespace, result).Inc()
	if added > 0 {
		SyncMembersAdded.WithLabelValues(namespace).Add(float64(added))
	}
}
