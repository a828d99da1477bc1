package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

// Phases of a UserPackageUpload, derived from its conditions by Phase. They
// exist for metrics and dashboards only: the API itself has no phase field
// (kstatus conditions are the contract).
const (
	// PhasePending: created, no reconcile has written status yet.
	PhasePending = "Pending"
	// PhaseReading: the file is being read and digested, or initiate has not
	// been answered yet (including while retrying it).
	PhaseReading = "Reading"
	// PhaseInitiated: WeChat Pay opened an upload session; no part sent yet.
	PhaseInitiated = "Initiated"
	// PhaseUploading: parts are being sent (or all are, and merge is pending).
	PhaseUploading = "Uploading"
	// PhaseMerged: the parts are merged; the expand asked for is pending.
	PhaseMerged = "Merged"
	// PhaseExpanded: the crowd package was expanded; Ready is pending.
	PhaseExpanded = "Expanded"
	// PhaseReady: Ready=True for the current generation.
	PhaseReady = "Ready"
	// PhaseStalled: Stalled=True; a human must change the spec, a Secret or the file.
	PhaseStalled = "Stalled"
	// PhaseSuspended: spec.suspend is true and the object is not Ready.
	PhaseSuspended = "Suspended"
)

// Phases lists every phase, in the order of an upload's life; the uploads
// gauge always has one series per phase (zero included), so alerts on a
// phase never see "no data".
var Phases = []string{PhasePending, PhaseReading, PhaseInitiated, PhaseUploading,
	PhaseMerged, PhaseExpanded, PhaseReady, PhaseStalled, PhaseSuspended}

// Phase derives an object's phase from its conditions (only conditions of
// its current generation count).
func Phase(u *upv1.UserPackageUpload) string {
	is := func(typ string) bool {
		c := apimeta.FindStatusCondition(u.Status.Conditions, typ)
		return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == u.Generation
	}
	switch {
	case apimeta.FindStatusCondition(u.Status.Conditions, upv1.ConditionReady) == nil:
		return PhasePending
	case is(upv1.ConditionReady):
		return PhaseReady
	case is(upv1.ConditionStalled):
		return PhaseStalled
	case u.Spec.Suspend:
		return PhaseSuspended
	case is(upv1.ConditionExpanded):
		return PhaseExpanded
	case is(upv1.ConditionMerged):
		return PhaseMerged
	case is(upv1.ConditionPartsUploaded),
		partsSent(u) && (is(upv1.ConditionInitiated) || len(u.Status.Uploads) > 1):
		// A file in several uploads is Initiated only once every upload is.
		return PhaseUploading
	case is(upv1.ConditionInitiated):
		return PhaseInitiated
	default:
		return PhaseReading
	}
}

// partsSent reports whether WeChat Pay acknowledged a part of any upload.
func partsSent(u *upv1.UserPackageUpload) bool {
	for _, up := range u.Status.Uploads {
		if up.PartsDone > 0 {
			return true
		}
	}
	return false
}

// Uploads is the crowdpack_uploads{phase} gauge: how many objects are in
// each phase. The reconciler reports each object's phase at the end of
// every reconcile (ObserveUpload) and forgets deleted objects
// (ForgetUpload); the counts are computed from that at scrape time.
//
// Only a manager that reconciles reports objects, so with leader election
// the leader alone has non-zero values and sum() over replicas does not
// double count. An object is counted from its first reconcile after the
// manager starts (every object is reconciled once at start).
var Uploads = &uploadsCollector{
	phases: map[string]string{},
	desc: prometheus.NewDesc("crowdpack_uploads",
		"UserPackageUploads by phase (derived from their conditions), as of their last reconcile.",
		[]string{"phase"}, nil),
}

type uploadsCollector struct {
	mu     sync.Mutex
	phases map[string]string // namespace/name → phase
	desc   *prometheus.Desc
}

// ObserveUpload records the object's phase as of now.
func ObserveUpload(u *upv1.UserPackageUpload) {
	Uploads.mu.Lock()
	defer Uploads.mu.Unlock()
	Uploads.phases[u.Namespace+"/"+u.Name] = Phase(u)
}

// ForgetUpload drops a deleted object.
func ForgetUpload(namespace, name string) {
	Uploads.mu.Lock()
	defer Uploads.mu.Unlock()
	delete(Uploads.phases, namespace+"/"+name)
}

func (c *uploadsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *uploadsCollector) Collect(ch chan<- prometheus.Metric) {
	counts := make(map[string]int, len(Phases))
	c.mu.Lock()
	for _, p := range c.phases {
		counts[p]++
	}
	c.mu.Unlock()
	for _, p := range Phases {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[p]), p)
	}
}
