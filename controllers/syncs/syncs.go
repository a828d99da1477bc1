// Package syncs is the UserPackageSync reconciler: it follows an export in
// object storage and turns each new revision into one child
// UserPackageUpload that expands the sync's crowd package, in Delta mode
// with only the members the last synced revision lacked. The child does
// every call to WeChat Pay, with every guarantee an upload has; the sync
// itself never calls WeChat Pay.
package syncs

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/controllers/conditions"
	"github.com/crowdpack/crowdpack/internal/bound"
	"github.com/crowdpack/crowdpack/internal/source"
)

// Reconciler reconciles UserPackageSyncs.
type Reconciler struct {
	client.Client
	// APIReader reads past the cache; default the Client.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Sources opens the sync's bucket with its namespace's credentials.
	Sources RevisionFinder
	// Now is the clock; default time.Now.
	Now func() time.Time

	checked checkTimes
}

// RevisionFinder finds the revisions of a sync's export, with the
// credentials of its namespace; *sources.Opener is the manager's.
type RevisionFinder interface {
	Revisions(ctx context.Context, ns string, spec *upv1.SyncSource) (source.Revisions, error)
}

// +kubebuilder:rbac:groups=wechatpay.crowdpack.io,resources=userpackagesyncs,verbs=get;list;watch
// +kubebuilder:rbac:groups=wechatpay.crowdpack.io,resources=userpackagesyncs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=wechatpay.crowdpack.io,resources=userpackageuploads,verbs=get;list;watch;create;delete

// SetupWithManager registers the reconciler: a sync is reconciled when it
// changes and when one of its children does.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&upv1.UserPackageSync{}).
		Owns(&upv1.UserPackageUpload{}).
		Named("userpackagesync").
		Complete(r)
}

// Reconcile brings the sync's runs up to date with its children, checks
// the source when nothing is in flight, starts a child for a new revision,
// and writes what it found to status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	sync := &upv1.UserPackageSync{}
	if err := r.Get(ctx, req.NamespacedName, sync); err != nil {
		if apierrors.IsNotFound(err) {
			r.checked.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := sync.DeepCopy()
	result, err := r.reconcile(ctx, sync)
	result, err = r.conclude(sync, result, err)
	if writeErr := r.writeStatus(ctx, before, sync); writeErr != nil {
		return ctrl.Result{}, errors.Join(err, writeErr)
	}
	return result, err
}

// writeStatus sends what the reconcile changed in status, and nothing when
// the API server would store the same: a check that finds the revision it
// found before costs no write.
func (r *Reconciler) writeStatus(ctx context.Context, before, sync *upv1.UserPackageSync) error {
	data, err := client.MergeFrom(before).Data(sync)
	if err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	if string(data) == "{}" {
		return nil
	}
	err = r.Status().Patch(ctx, sync, client.RawPatch(types.MergePatchType, data))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}

func (r *Reconciler) reconcile(ctx context.Context, sync *upv1.UserPackageSync) (ctrl.Result, error) {
	children, err := r.children(ctx, sync)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.findUncachedChildren(ctx, sync, children); err != nil {
		return ctrl.Result{}, err
	}
	recordUnrecordedChildren(sync, children)
	followChildren(sync, children)
	if err := r.prune(ctx, sync, children); err != nil {
		return ctrl.Result{}, err
	}
	if sync.Spec.Suspend {
		return ctrl.Result{}, errSuspended
	}
	if run := inFlight(sync); run != nil {
		return ctrl.Result{}, classify.Retry(upv1.ReasonProgressing, 0, "revision %s is being synced by %s", run.Key, run.Child)
	}
	return r.check(ctx, sync)
}

// errSuspended ends a reconcile of a suspended sync.
var errSuspended = errors.New("suspended")

// conclude turns the reconcile's outcome into the kstatus conditions and
// what controller-runtime should do next.
func (r *Reconciler) conclude(sync *upv1.UserPackageSync, result ctrl.Result, err error) (ctrl.Result, error) {
	var stalled *classify.StallError
	var retrying *classify.RetryError
	switch {
	case err == nil:
		r.setReady(sync, metav1.ConditionTrue, upv1.ReasonSucceeded, upToDateMessage(sync))
	case errors.Is(err, errSuspended):
		r.setReady(sync, metav1.ConditionFalse, upv1.ReasonSuspended, "suspended: the source is not checked and no child is created")
		r.checked.forget(keyOf(sync)) // resumed, it checks at once
		return ctrl.Result{}, nil
	case errors.As(err, &stalled):
		r.setStalled(sync, stalled.Reason, stalled.Message)
		return result, nil
	case errors.As(err, &retrying):
		r.setReady(sync, metav1.ConditionFalse, retrying.Reason, retrying.Message)
		setCondition(sync, upv1.ConditionReconciling, metav1.ConditionTrue, retrying.Reason, retrying.Message)
		if retrying.After > 0 || retrying.Reason == upv1.ReasonProgressing {
			return ctrl.Result{RequeueAfter: retrying.After}, nil
		}
		return ctrl.Result{}, err
	default:
		r.setReady(sync, metav1.ConditionFalse, upv1.ReasonRetrying, err.Error())
		return ctrl.Result{}, err
	}
	return result, nil
}

func (r *Reconciler) setReady(sync *upv1.UserPackageSync, status metav1.ConditionStatus, reason, message string) {
	setCondition(sync, upv1.ConditionReady, status, reason, message)
	setCondition(sync, upv1.ConditionStalled, metav1.ConditionFalse, reason, message)
	reconciling := metav1.ConditionFalse
	if reason == upv1.ReasonProgressing || reason == upv1.ReasonRetrying {
		reconciling = metav1.ConditionTrue
	}
	setCondition(sync, upv1.ConditionReconciling, reconciling, reason, message)
	sync.Status.ObservedGeneration = sync.Generation
}

func (r *Reconciler) setStalled(sync *upv1.UserPackageSync, reason, message string) {
	wasStalled := conditionIs(sync, upv1.ConditionStalled, reason)
	setCondition(sync, upv1.ConditionReady, metav1.ConditionFalse, reason, message)
	setCondition(sync, upv1.ConditionStalled, metav1.ConditionTrue, reason, message)
	setCondition(sync, upv1.ConditionReconciling, metav1.ConditionFalse, reason, message)
	sync.Status.ObservedGeneration = sync.Generation
	if !wasStalled {
		r.event(sync, corev1.EventTypeWarning, reason, message)
	}
}

func setCondition(sync *upv1.UserPackageSync, typ string, status metav1.ConditionStatus, reason, message string) {
	conditions.Set(&sync.Status.Conditions, sync.Generation, typ, status, reason, message)
}

// conditionIs reports whether condition typ is true for reason.
func conditionIs(sync *upv1.UserPackageSync, typ, reason string) bool {
	for _, c := range sync.Status.Conditions {
		if c.Type == typ {
			return c.Status == metav1.ConditionTrue && c.Reason == reason
		}
	}
	return false
}

// event records an event about the sync, only when something happened.
func (r *Reconciler) event(sync *upv1.UserPackageSync, eventType, reason, message string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(sync, nil, eventType, reason, "Sync", "%s", bound.Text(message, bound.EventNote))
	}
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func upToDateMessage(sync *upv1.UserPackageSync) string {
	last := sync.Status.LastSyncedRevision
	if last == nil {
		return "no revision synced yet"
	}
	return fmt.Sprintf("in step with revision %s (%d members), synced %s", last.Key, last.Members, last.At.UTC().Format(time.RFC3339))
}
