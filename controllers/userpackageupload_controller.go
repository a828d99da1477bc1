// Package controllers holds the UserPackageUpload reconciler: a short
// Reconcile that runs a chain of small steps and then summarises their
// outcome into kstatus conditions, in the style of Flux's source-controller.
package controllers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"golang.org/x/sync/semaphore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	crsource "sigs.k8s.io/controller-runtime/pkg/source"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/bound"
	"github.com/crowdpack/crowdpack/internal/metrics"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// UserPackageUploadReconciler takes the file a UserPackageUpload points at
// into WeChat Pay.
type UserPackageUploadReconciler struct {
	client.Client
	// APIReader reads from the API server, not the cache: Secrets (which are
	// never cached) and the latest version of an object before a retried write.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// NewWeChatPay returns a brand API client for one brand's credentials.
	NewWeChatPay func(*wechatpay.Credentials) (wechatpay.API, error)
	// StorageTransport is shared by every object-storage client, for
	// keep-alive; default source.NewTransport(SourceGuard). One given here
	// must come from source.NewTransport(SourceGuard), or dials go unchecked.
	StorageTransport http.RoundTripper
	// SourceGuard is the platform's policy for what a tenant's source may
	// make the manager do: the networks it connects to, plain HTTP, slow
	// reads, the file size; default source.DefaultGuard() (the flags' defaults).
	SourceGuard *source.Guard

	// PartConcurrency bounds the parts of one upload sent at once.
	PartConcurrency int
	// PartMemory bounds the bytes of parts held in memory at once, by all
	// uploads together; default 64 MiB, at least 20 MB (the largest part).
	PartMemory int64
	// MaxConcurrentReconciles bounds the objects worked on at once.
	MaxConcurrentReconciles int
	// RetryBaseDelay and RetryMaxDelay bound the backoff after a transient
	// error (doubling from the base).
	RetryBaseDelay, RetryMaxDelay time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time

	// BrandSecretNamespace is where the Secrets of WeChatPayBrands are read
	// from: the operator's own namespace, never the object's.
	BrandSecretNamespace string
	// AllowAmbientCredentials lends the operator's own environment and
	// workload identity to s3 sources that ask for it (provider aws without
	// a secretRef). Off: they stall AmbientCredentialsDenied.
	AllowAmbientCredentials bool

	acks       ackJournal
	partMemory *semaphore.Weighted
	readSlots  *namespaceSlots
}

// secretIndex indexes UserPackageUploads by the Secrets they refer to.
const secretIndex = ".spec.secretNames"

// staleCacheDelay is the wait before trying again when a write showed the
// cache behind the API server: it catches up in moments.
const staleCacheDelay = 200 * time.Millisecond

// +kubebuilder:rbac:groups=wechatpay.crowdpack.io,resources=userpackageuploads,verbs=get;list;watch
// +kubebuilder:rbac:groups=wechatpay.crowdpack.io,resources=userpackageuploads/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the reconciler. Objects are reconciled when
// their spec or annotations change and when a Secret they refer to changes;
// Secrets are watched by metadata only, stripped of annotations (see
// CacheByObject), so their data is never cached.
func (r *UserPackageUploadReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.SourceGuard == nil {
		r.SourceGuard = source.DefaultGuard()
	}
	if r.StorageTransport == nil {
		r.StorageTransport = source.NewTransport(r.SourceGuard)
	}
	if r.PartConcurrency < 1 {
		r.PartConcurrency = 4
	}
	if r.PartMemory <= 0 {
		r.PartMemory = 64 << 20
	}
	// The budget must hold the largest part, or that part would wait forever.
	r.partMemory = semaphore.NewWeighted(max(r.PartMemory, wechatpay.MaxPartSize))
	r.readSlots = newNamespaceSlots(fairShare(r.MaxConcurrentReconciles), fairShareOfMemory(r.PartMemory))
	slotFreed := make(chan event.TypedGenericEvent[*upv1.UserPackageUpload], 1024)
	r.readSlots.wake = func(namespace, name string) {
		u := &upv1.UserPackageUpload{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
		select {
		case slotFreed <- event.TypedGenericEvent[*upv1.UserPackageUpload]{Object: u}:
		default: // full: the waiter's own retry comes soon enough
		}
	}
	if r.RetryBaseDelay <= 0 {
		r.RetryBaseDelay = time.Second
	}
	if r.RetryMaxDelay <= 0 {
		r.RetryMaxDelay = 5 * time.Minute
	}
	err := mgr.GetFieldIndexer().IndexField(ctx, &upv1.UserPackageUpload{}, secretIndex, func(o client.Object) []string {
		return secretNames(o.(*upv1.UserPackageUpload))
	})
	if err != nil {
		return err
	}
	if err := indexBrands(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&upv1.UserPackageUpload{}, builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.objectsUsingSecretOrBrand)).
		// A brand that appears or changes, and a namespace whose labels
		// change, may let stalled objects go on (or stop them).
		Watches(&upv1.WeChatPayBrand{}, handler.EnqueueRequestsFromMapFunc(r.objectsUsingBrand)).
		WatchesMetadata(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.objectsInNamespace),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		// A freed read slot wakes the object whose turn it is.
		WatchesRawSource(crsource.Channel(slotFreed, &handler.TypedEnqueueRequestForObject[*upv1.UserPackageUpload]{})).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: max(1, r.MaxConcurrentReconciles),
			RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](r.RetryBaseDelay, r.RetryMaxDelay),
		}).
		Complete(r)
}

// objectsUsingSecret maps a Secret to the objects of its namespace that refer to it.
func (r *UserPackageUploadReconciler) objectsUsingSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	var list upv1.UserPackageUploadList
	if err := r.List(ctx, &list, client.InNamespace(secret.GetNamespace()),
		client.MatchingFields{secretIndex: secret.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "list objects using Secret", "secret", secret.GetName())
		return nil
	}
	requests := make([]reconcile.Request, 0, len(list.Items))
	for _, u := range list.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&u)})
	}
	return requests
}

// attempt is one reconcile of one object: what its steps share.
type attempt struct {
	status  *statusWriter
	source  source.Source
	wechat  wechatpay.API
	brandID string // the brand of wechat
	// preclaimed is true while initiate's pending mark, written with the
	// first word about a new object, awaits the call it announced.
	preclaimed bool
	// calledWeChatPay is true once a call changed something at WeChat Pay.
	calledWeChatPay bool
	// slotMemory and slotRelease are the namespace's read slot, once taken
	// (readSlot), and its share of the part memory.
	slotMemory  *semaphore.Weighted
	slotRelease func()
}

// step is one stage of taking a file into WeChat Pay. It returns nil when
// its stage is done, so that the next one may run; otherwise a *stallError,
// a *retryError or an error from the API server.
type step func(ctx context.Context, u *upv1.UserPackageUpload, a *attempt) error

// Reconcile brings one UserPackageUpload a stage further and says so in its status.
func (r *UserPackageUploadReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	u := &upv1.UserPackageUpload{}
	if err := r.Get(ctx, req.NamespacedName, u); err != nil {
		if apierrors.IsNotFound(err) {
			metrics.ForgetUpload(req.Namespace, req.Name)
			r.acks.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !u.DeletionTimestamp.IsZero() {
		metrics.ForgetUpload(req.Namespace, req.Name)
		r.acks.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	// The crowdpack_uploads gauge counts objects by the phase this reconcile leaves them in.
	defer metrics.ObserveUpload(u)
	a := &attempt{status: newStatusWriter(r.Client, r.APIReader, u)}
	defer a.releaseSlot()
	readyBefore := apimeta.FindStatusCondition(u.Status.Conditions, upv1.ConditionReady)
	if readyBefore != nil {
		readyBefore = readyBefore.DeepCopy()
	}

	if u.Spec.Suspend {
		markSuspended(u)
		return ctrl.Result{}, a.status.patch(ctx, u)
	}
	// Say something about a new generation before any slow I/O.
	if isNewGeneration(u) {
		if after, waiting := r.waitForTurn(u, a); waiting {
			markProgressing(u, "waiting for a read slot: other uploads of this namespace are being read")
			return ctrl.Result{RequeueAfter: after}, a.status.patch(ctx, u)
		}
		if err := r.sayProgressing(ctx, u, a); err != nil {
			return r.claimFailed(err)
		}
	}

	err := r.runSteps(ctx, u, a, r.reconcileSource, r.reconcileInitiate, r.reconcileParts, r.reconcileMerge, r.reconcileExpand)
	if a.preclaimed {
		dropInitiateMark(u) // initiate was not called after all
	}
	var claim *claimError
	if errors.As(err, &claim) {
		// The intent that could not be recorded was taken back; outcomes
		// already in hand are written all the same. The next reconcile
		// starts again from what the API server holds.
		if saveErr := r.saveOutcomes(ctx, u, a); saveErr != nil {
			return ctrl.Result{}, errors.Join(err, saveErr)
		}
		return r.claimFailed(err)
	}
	if after, ok := waitingForSlot(err); ok {
		return ctrl.Result{RequeueAfter: after}, a.status.patch(ctx, u)
	}
	result, err := r.summarize(u, err)
	r.announce(u, readyBefore, a.calledWeChatPay)
	if finishErr := a.status.finish(ctx, u); finishErr != nil {
		return ctrl.Result{}, errors.Join(err, finishErr)
	}
	if up := u.Status.Upload; up != nil && up.PartCount > 0 && up.PartsDone == up.PartCount {
		r.acks.forget(req.NamespacedName) // every acknowledgement is in status
	}
	return result, err
}

// waitForTurn takes the namespace's read slot before the first word about
// a generation whose file must be read, so that an object that must wait
// says so once and announces initiate only when it can go on.
func (r *UserPackageUploadReconciler) waitForTurn(u *upv1.UserPackageUpload, a *attempt) (after time.Duration, waiting bool) {
	if !needsRead(u) {
		return 0, false
	}
	_, err := a.readSlot(r, u)
	return waitingForSlot(err)
}

// sayProgressing writes, first thing for a new generation, that work is
// under way. An object that never initiated an upload is about to: that
// write is then also initiate's pending mark, conflict-checked, which
// spares the call a write of its own (see callOnce).
func (r *UserPackageUploadReconciler) sayProgressing(ctx context.Context, u *upv1.UserPackageUpload, a *attempt) error {
	markProgressing(u, progressingMessage(u))
	if u.Status.Upload != nil {
		return a.status.patch(ctx, u)
	}
	u.Status.Upload = &upv1.UploadStatus{InitiatingSince: r.now()}
	if err := a.status.claim(ctx, u); err != nil {
		return err
	}
	a.preclaimed = true
	return nil
}

// claimFailed ends a reconcile whose conflict-checked write failed: after
// a conflict (a stale cache), soon, once the cache caught up.
func (r *UserPackageUploadReconciler) claimFailed(err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: staleCacheDelay}, nil
	}
	return ctrl.Result{}, err
}

// saveOutcomes writes the outcomes the object holds in memory, if any.
func (r *UserPackageUploadReconciler) saveOutcomes(ctx context.Context, u *upv1.UserPackageUpload, a *attempt) error {
	if !a.status.unsaved {
		return nil
	}
	return a.status.finish(ctx, u)
}

func (r *UserPackageUploadReconciler) runSteps(ctx context.Context, u *upv1.UserPackageUpload, a *attempt, steps ...step) error {
	for _, s := range steps {
		if err := s(ctx, u, a); err != nil {
			return err
		}
	}
	return nil
}

// summarize turns the outcome of the steps into the kstatus conditions and
// into what controller-runtime should do next.
func (r *UserPackageUploadReconciler) summarize(u *upv1.UserPackageUpload, err error) (ctrl.Result, error) {
	var stalled *stallError
	var retrying *retryError
	switch {
	case err == nil:
		markReady(u)
		u.Status.LastHandledReconcileAt = requestedAt(u)
		return ctrl.Result{}, nil
	case errors.As(err, &stalled):
		markStalled(u, stalled.reason, stalled.message)
		u.Status.LastHandledReconcileAt = requestedAt(u)
		return ctrl.Result{}, nil
	case errors.As(err, &retrying) && retrying.after > 0:
		markRetrying(u, retrying.reason, retrying.message)
		return ctrl.Result{RequeueAfter: retrying.after}, nil
	case errors.As(err, &retrying):
		markRetrying(u, retrying.reason, retrying.message)
		return ctrl.Result{}, err
	default:
		return ctrl.Result{}, err
	}
}

// announce records a Warning event when the Ready condition turned to a
// stall or a retry, and one Normal event when a reconcile that made calls
// to WeChat Pay ends Ready: what the calls achieved, in a word. Routine
// reconciles say nothing.
func (r *UserPackageUploadReconciler) announce(u *upv1.UserPackageUpload, before *metav1.Condition, called bool) {
	now := apimeta.FindStatusCondition(u.Status.Conditions, upv1.ConditionReady)
	switch {
	case now == nil:
	case now.Status == metav1.ConditionTrue && called:
		r.event(u, corev1.EventTypeNormal, upv1.ReasonSucceeded, now.Message)
	case now.Status != metav1.ConditionFalse || now.Reason == upv1.ReasonSuspended ||
		(before != nil && before.Status == now.Status && before.Reason == now.Reason && before.Message == now.Message):
	default:
		r.event(u, corev1.EventTypeWarning, now.Reason, now.Message)
	}
}

func (r *UserPackageUploadReconciler) event(u *upv1.UserPackageUpload, eventType, reason, message string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(u, nil, eventType, reason, "Reconcile", "%s", bound.Text(message, bound.EventNote))
	}
}

// now is the reconciler's clock, as status stores times.
func (r *UserPackageUploadReconciler) now() *metav1.Time {
	t := metav1.NewTime(r.Now())
	return &t
}

// requestedAt is the reconcile.fluxcd.io/requestedAt annotation, if any.
func requestedAt(u *upv1.UserPackageUpload) string {
	return u.GetAnnotations()[upv1.ReconcileRequestAnnotation]
}

// reconcileRequested reports whether a reconcile was asked for since the
// last one was handled.
func reconcileRequested(u *upv1.UserPackageUpload) bool {
	at := requestedAt(u)
	return at != "" && at != u.Status.LastHandledReconcileAt
}

// clientFor returns (once per attempt) the brand API client.
func (a *attempt) clientFor(ctx context.Context, r *UserPackageUploadReconciler, u *upv1.UserPackageUpload) (wechatpay.API, error) {
	if a.wechat == nil {
		c, brandID, err := r.weChatPay(ctx, u)
		if err != nil {
			return nil, err
		}
		a.wechat, a.brandID = c, brandID
	}
	return a.wechat, nil
}

// sourceFor returns (once per attempt) the object storage of the spec.
func (a *attempt) sourceFor(ctx context.Context, r *UserPackageUploadReconciler, u *upv1.UserPackageUpload) (source.Source, error) {
	if a.source == nil {
		s, err := r.openSource(ctx, u)
		if err != nil {
			return nil, err
		}
		a.source = metrics.InstrumentSource(s)
	}
	return a.source, nil
}
