package uploads

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

// The bare-write floor of the load test: what the exactly-once protocol
// cannot avoid, made by a plain client with the manager's QPS and burst,
// against the same API server, etcd and MinIO in the same run. Per object:
// its creation (by the same creator as the operator's phase), the status
// writes the protocol needs — the first word with initiate's mark,
// initiate's answer, merge's mark, expand's mark, the last write with
// Ready — with bodies taken from an object the operator finished, and one
// Succeeded event. No Secret is read, no file digested, no call made.

// Main.go's defaults of --kube-api-qps and --kube-api-burst, unless
// CROWDPACK_LOAD_FLAGS sets them.
const managerQPS, managerBurst = 200, 400

// floorWriters are the objects written at once: the manager's default
// --max-concurrent-reconciles.
var floorWriters = Defaults.MaxConcurrentReconciles

// floorResult is what the floor's phase measured.
type floorResult struct {
	elapsed      time.Duration
	statusWrites int
	events       int
	objectBytes  int
	// CPU time the API server, etcd and this process (the creator and
	// the floor's client) spent.
	apiServerCPU, etcdCPU, selfCPU time.Duration
}

// runFloor creates n objects in a namespace of their own and makes each
// one's unavoidable writes, as soon as it exists, with floorWriters
// writers; it returns when the last event is written.
func runFloor(b *testing.B, h *harness, n int, ready *upv1.UserPackageUpload) floorResult {
	ns := h.ns + "-floor"
	h.makeTenant(ns)
	c := floorClient(b)
	steps := floorStatuses(ready)
	var (
		mu      sync.Mutex
		res     floorResult
		created = make(chan *upv1.UserPackageUpload, n)
		writers sync.WaitGroup
	)
	for range floorWriters {
		writers.Go(func() {
			for u := range created {
				if err := writeLikeTheOperator(h.ctx, c, u, steps); err != nil {
					b.Error(err)
					continue
				}
				mu.Lock()
				res.statusWrites += len(steps)
				res.events++
				mu.Unlock()
			}
		})
	}
	apiServer, etcd := childProcess(b, "kube-apiserver"), childProcess(b, "etcd")
	apiServerCPU, etcdCPU, selfCPU := processCPU(b, apiServer), processCPU(b, etcd), processCPU(b, os.Getpid())
	start := time.Now()
	createEach(b, n, func(i int) {
		u := h.object(fmt.Sprintf("load-%04d", i), fmt.Sprintf("load-%04d.csv", i))
		u.Namespace = ns
		u.Spec.Source.S3.Endpoint = ready.Spec.Source.S3.Endpoint
		u.Spec.UserPackageID = loadPackageID(i)
		if err := kube.Client.Create(h.ctx, u); err != nil {
			b.Error(err)
			return
		}
		created <- u
	})
	close(created)
	writers.Wait()
	res.elapsed = time.Since(start)
	res.apiServerCPU = processCPU(b, apiServer) - apiServerCPU
	res.etcdCPU = processCPU(b, etcd) - etcdCPU
	res.selfCPU = processCPU(b, os.Getpid()) - selfCPU
	last := &upv1.UserPackageUpload{}
	must(b, kube.Client.Get(h.ctx, client.ObjectKey{Namespace: ns, Name: "load-0000"}, last))
	data, err := json.Marshal(last)
	must(b, err)
	res.objectBytes = len(data)
	return res
}

// floorClient is a plain client of the API server as the manager's user
// sees it, with the manager's QPS and burst.
func floorClient(b *testing.B) client.Client {
	cfg := rest.CopyConfig(kube.Config)
	cfg.QPS, cfg.Burst = float32(flagOr("--kube-api-qps", managerQPS)), int(flagOr("--kube-api-burst", managerBurst))
	c, err := client.New(cfg, client.Options{Scheme: kube.Scheme})
	must(b, err)
	return c
}

// flagOr is the value CROWDPACK_LOAD_FLAGS gives the manager's flag name
// (as name=value or name value), or def.
func flagOr(name string, def float64) float64 {
	fields := strings.Fields(os.Getenv("CROWDPACK_LOAD_FLAGS"))
	for i, f := range fields {
		value, ok := strings.CutPrefix(f, name+"=")
		if !ok && f == name && i+1 < len(fields) {
			value, ok = fields[i+1], true
		}
		if v, err := strconv.ParseFloat(value, 64); ok && err == nil {
			return v
		}
	}
	return def
}

// writeLikeTheOperator makes one object's unavoidable writes: each status
// in turn as a whole update on the version the last one answered (the
// operator's claims and answers are conflict-checked updates too), then
// the Succeeded event.
func writeLikeTheOperator(ctx context.Context, c client.Client, u *upv1.UserPackageUpload, steps []upv1.UserPackageUploadStatus) error {
	for i, st := range steps {
		u.Status = *st.DeepCopy()
		if err := c.Status().Update(ctx, u); err != nil {
			return fmt.Errorf("floor: status write %d of %s: %w", i+1, u.Name, err)
		}
	}
	if err := c.Create(ctx, succeededEvent(u)); err != nil {
		return fmt.Errorf("floor: event about %s: %w", u.Name, err)
	}
	return nil
}

// floorStatuses are the statuses an object passes through on its way to
// Ready, built from one the operator finished (a file of one upload,
// merged and expanded): the first word with initiate's mark; initiate's
// answer; merge's mark with the acknowledged parts; expand's mark with
// merge's resource id; the last write, which is ready's own status.
func floorStatuses(ready *upv1.UserPackageUpload) []upv1.UserPackageUploadStatus {
	final := *ready.Status.DeepCopy()
	if len(final.Uploads) != 1 {
		panic(fmt.Sprintf("floor: the operator's object has %d uploads, want 1", len(final.Uploads)))
	}
	done := final.Uploads[0]
	since := metav1.NewTime(done.InitiatedAt.Add(-time.Second))
	progressing := func(st *upv1.UserPackageUploadStatus, message string) {
		setCond(st, ready.Generation, upv1.ConditionReconciling, metav1.ConditionTrue, upv1.ReasonProgressing, message)
		setCond(st, ready.Generation, upv1.ConditionReady, metav1.ConditionUnknown, upv1.ReasonProgressing, message)
	}

	firstWord := upv1.UserPackageUploadStatus{Uploads: []upv1.UploadStatus{{Index: 1, InitiatingSince: &since}}}
	progressing(&firstWord, "reading the file")

	answered := *final.DeepCopy()
	answered.ObservedGeneration, answered.Summary = 0, nil
	up := &answered.Uploads[0]
	up.PartsDone, up.BytesDone, up.MergedAt, up.ResourceID, up.Expanded, up.ExpandedAt = 0, 0, nil, "", nil, nil
	for _, c := range []string{upv1.ConditionPartsUploaded, upv1.ConditionMerged, upv1.ConditionExpanded} {
		apimeta.RemoveStatusCondition(&answered.Conditions, c)
	}
	progressing(&answered, "sending the parts")

	mergeMark := *answered.DeepCopy()
	up = &mergeMark.Uploads[0]
	up.PartsDone, up.BytesDone, up.Progress, up.MergingSince = done.PartsDone, done.BytesDone, done.Progress, &since
	progressing(&mergeMark, "merging the parts")

	expandMark := *mergeMark.DeepCopy()
	up = &expandMark.Uploads[0]
	up.MergingSince, up.MergedAt, up.ResourceID = nil, done.MergedAt, done.ResourceID
	up.Expanding = &upv1.PendingExpand{UserPackageID: ready.Spec.UserPackageID, Since: since}
	progressing(&expandMark, "expanding the crowd package")

	return []upv1.UserPackageUploadStatus{firstWord, answered, mergeMark, expandMark, final}
}

func setCond(st *upv1.UserPackageUploadStatus, generation int64, typ string, status metav1.ConditionStatus, reason, message string) {
	apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: generation,
	})
}

// succeededEvent is the event the manager's recorder writes when an
// upload is Ready.
func succeededEvent(u *upv1.UserPackageUpload) *eventsv1.Event {
	now := metav1.NowMicro()
	return &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", u.Name, now.UnixNano()), Namespace: u.Namespace},
		EventTime:           now,
		ReportingController: "crowdpack",
		ReportingInstance:   "crowdpack-floor",
		Action:              "Reconcile",
		Reason:              upv1.ReasonSucceeded,
		Type:                corev1.EventTypeNormal,
		Note:                readyCondition(u).Message,
		Regarding: corev1.ObjectReference{
			APIVersion: upv1.GroupVersion.String(), Kind: "UserPackageUpload",
			Namespace: u.Namespace, Name: u.Name, UID: u.UID, ResourceVersion: u.ResourceVersion,
		},
	}
}

// readyCondition is the object's Ready condition (an empty one if none).
func readyCondition(u *upv1.UserPackageUpload) metav1.Condition {
	if c := apimeta.FindStatusCondition(u.Status.Conditions, upv1.ConditionReady); c != nil {
		return *c
	}
	return metav1.Condition{}
}

// createEach calls create for 0..n-1 from 8 goroutines, as the load test's
// creator does for the operator.
func createEach(b *testing.B, n int, create func(i int)) {
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				create(i)
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}
