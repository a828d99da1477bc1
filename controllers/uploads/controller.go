// Package uploads holds the UserPackageUpload reconciler: a short
// Reconcile that runs a chain of small steps and then summarises their
// outcome into kstatus conditions, in the style of Flux's source-controller.
package uploads

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
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/controllers/once"
	"github.com/crowdpack/crowdpack/controllers/packagelock"
	"github.com/crowdpack/crowdpack/controllers/readslots"
	"github.com/crowdpack/crowdpack/controllers/statuswriter"
	"github.com/crowdpack/crowdpack/controllers/uploads/parts"
	"github.com/crowdpack/crowdpack/internal/delta"
	"github.com/crowdpack/crowdpack/internal/metrics"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// Reconciler takes the file a UserPackageUpload points at
// into WeChat Pay.
type Reconciler struct {
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
	// uploads together; at least 20 MB (the largest part). Zero values of
	// these five take Defaults.
	PartMemory int64
	// DeltaPool lends the memory of the comparisons spec.file.excludeMembersOf
	// asks for, shared by every object of the manager; default a pool of
	// Defaults.DeltaMemory.
	DeltaPool *delta.Pool
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

	parts       partSettings
	readSlots   *readslots.Slots
	parkedMarks once.ParkedMarks
	answers     once.Answers
	packages    packagelock.Locks // expands of one crowd package take turns
	brands      brandMemo         // the brand of each credentials Secret version read
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
// CacheOptions), so their data is never cached.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	r.setDefaults()
	slotFreed := r.wakeOnFreedSlots()
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
			MaxConcurrentReconciles: r.MaxConcurrentReconciles,
			RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](r.RetryBaseDelay, r.RetryMaxDelay),
		}).
		Complete(r)
}

// setDefaults fills in what the reconciler was given no value for, and
// makes its shared state.
func (r *Reconciler) setDefaults() {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.SourceGuard == nil {
		r.SourceGuard = source.DefaultGuard()
	}
	if r.StorageTransport == nil {
		r.StorageTransport = source.NewTransport(r.SourceGuard)
	}
	if r.DeltaPool == nil {
		r.DeltaPool = delta.NewPool(Defaults.DeltaMemory)
	}
	r.MaxConcurrentReconciles = orDefault(r.MaxConcurrentReconciles, Defaults.MaxConcurrentReconciles)
	r.PartConcurrency = orDefault(r.PartConcurrency, Defaults.PartConcurrency)
	r.PartMemory = orDefault(r.PartMemory, Defaults.PartMemory)
	r.RetryBaseDelay = orDefault(r.RetryBaseDelay, Defaults.RetryBaseDelay)
	r.RetryMaxDelay = orDefault(r.RetryMaxDelay, Defaults.RetryMaxDelay)
	r.parts = partSettings{
		concurrency: r.PartConcurrency,
		backoff:     r.RetryBaseDelay,
		// The budget must hold the largest part, or that part would wait forever.
		memory: semaphore.NewWeighted(max(r.PartMemory, wechatpay.MaxPartSize)),
	}
	r.readSlots = readslots.New(readslots.FairShare(r.MaxConcurrentReconciles), readslots.FairShareOfMemory(r.PartMemory))
}

// orDefault is value, or def when value is not positive.
func orDefault[T int | int64 | time.Duration](value, def T) T {
	if value <= 0 {
		return def
	}
	return value
}

// wakeOnFreedSlots returns the channel on which a freed read slot names
// the waiting object whose turn it is.
func (r *Reconciler) wakeOnFreedSlots() chan event.TypedGenericEvent[*upv1.UserPackageUpload] {
	slotFreed := make(chan event.TypedGenericEvent[*upv1.UserPackageUpload], 1024)
	r.readSlots.Wake = func(namespace, name string) {
		u := &upv1.UserPackageUpload{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
		select {
		case slotFreed <- event.TypedGenericEvent[*upv1.UserPackageUpload]{Object: u}:
		default: // full: the waiter's own retry comes soon enough
		}
	}
	return slotFreed
}

// objectsUsingSecret maps a Secret to the objects of its namespace that refer to it.
func (r *Reconciler) objectsUsingSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	var list upv1.UserPackageUploadList
	// The names alone are read: no copy of thousands of objects per event.
	if err := r.List(ctx, &list, client.InNamespace(secret.GetNamespace()),
		client.MatchingFields{secretIndex: secret.GetName()}, client.UnsafeDisableDeepCopy); err != nil {
		log.FromContext(ctx).Error(err, "list objects using Secret", "secret", secret.GetName())
		return nil
	}
	requests := make([]reconcile.Request, 0, len(list.Items))
	for _, u := range list.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&u)})
	}
	return requests
}

// step is one stage of taking a file into WeChat Pay. It returns nil when
// its stage is done, so that the next one may run; otherwise a
// *classify.StallError, a *classify.RetryError or an error from the API
// server.
type step func(ctx context.Context, s *scope) error

// Reconcile brings one UserPackageUpload a stage further and says so in its status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	u := &upv1.UserPackageUpload{}
	if err := r.Get(ctx, req.NamespacedName, u); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !u.DeletionTimestamp.IsZero() {
		r.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	// The crowdpack_uploads gauge counts objects by the phase this reconcile leaves them in.
	defer metrics.ObserveUpload(u)
	s := r.newScope(u)
	migrateUpload(u) // written by the previous release: a one-chunk set, which the next write carries
	defer s.releaseSlot()
	if u.Spec.Suspend {
		markSuspended(u)
		return ctrl.Result{}, s.status.Patch(ctx, u)
	}
	if isNewGeneration(u) || isWaitingForSlot(u) {
		after, waiting, err := s.sayFirstWord(ctx)
		if err != nil {
			return claimFailed(err)
		}
		if waiting {
			return ctrl.Result{RequeueAfter: after}, nil
		}
	}
	return s.run(ctx, reconcileSource, reconcileUploads)
}

// forget drops what the manager holds in memory for an object that is gone.
func (r *Reconciler) forget(key client.ObjectKey) {
	metrics.ForgetUpload(key.Namespace, key.Name)
	r.parts.journal.Forget(key)
	r.parkedMarks.Forget(key)
	r.answers.Forget(key)
	r.readSlots.Forget(key.Namespace, key.Name)
}

// run runs the steps in turn until one does not finish, and says in the
// object's status how far they went.
func (s *scope) run(ctx context.Context, steps ...step) (ctrl.Result, error) {
	u := s.obj
	readyBefore := apimeta.FindStatusCondition(u.Status.Conditions, upv1.ConditionReady)
	if readyBefore != nil {
		readyBefore = readyBefore.DeepCopy()
	}
	var err error
	for _, step := range steps {
		if err = step(ctx, s); err != nil {
			break
		}
	}
	if s.ledger.Withdraw() {
		dropInitiateMark(u) // initiate was not called after all
	}
	var claim *statuswriter.ClaimError
	if errors.As(err, &claim) {
		// The intent that could not be recorded was taken back; outcomes
		// already in hand are written all the same. The next reconcile
		// starts again from what the API server holds.
		if saveErr := s.saveOutcomes(ctx); saveErr != nil {
			return ctrl.Result{}, errors.Join(err, saveErr)
		}
		return claimFailed(err)
	}
	if after, ok := readslots.Waiting(err); ok {
		return ctrl.Result{RequeueAfter: after}, s.status.Patch(ctx, u)
	}
	return s.finish(ctx, readyBefore, err)
}

// finish sums the steps' outcome up in the conditions, announces what
// changed and writes the status.
func (s *scope) finish(ctx context.Context, readyBefore *metav1.Condition, err error) (ctrl.Result, error) {
	u := s.obj
	result, err := summarize(u, err)
	setSummary(u)
	s.announce(readyBefore)
	if finishErr := s.status.Finish(ctx, u); finishErr != nil {
		return ctrl.Result{}, errors.Join(err, finishErr)
	}
	if len(u.Status.Uploads) > 0 && countUploads(u, func(_ *upv1.UserPackageUpload, up *upv1.UploadStatus) bool { return parts.Done(up) }) == len(u.Status.Uploads) {
		s.parts.journal.Forget(client.ObjectKeyFromObject(u)) // every acknowledgement is in status
	}
	return result, err
}

// claimFailed ends a reconcile whose conflict-checked write failed: after
// a conflict (a stale cache), soon, once the cache caught up.
func claimFailed(err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: staleCacheDelay}, nil
	}
	return ctrl.Result{}, err
}

// saveOutcomes writes the outcomes the object holds in memory, if any.
func (s *scope) saveOutcomes(ctx context.Context) error {
	if !s.status.Unsaved() {
		return nil
	}
	return s.status.Finish(ctx, s.obj)
}

// summarize turns the outcome of the steps into the kstatus conditions and
// into what controller-runtime should do next.
func summarize(u *upv1.UserPackageUpload, err error) (ctrl.Result, error) {
	var stalled *classify.StallError
	var retrying *classify.RetryError
	switch {
	case err == nil:
		markReady(u)
		u.Status.LastHandledReconcileAt = requestedAt(u)
		return ctrl.Result{}, nil
	case errors.As(err, &stalled):
		markStalled(u, stalled.Reason, stalled.Message)
		u.Status.LastHandledReconcileAt = requestedAt(u)
		return ctrl.Result{}, nil
	case errors.As(err, &retrying) && retrying.After > 0:
		markRetrying(u, retrying.Reason, retrying.Message)
		return ctrl.Result{RequeueAfter: retrying.After}, nil
	case errors.As(err, &retrying):
		markRetrying(u, retrying.Reason, retrying.Message)
		return ctrl.Result{}, err
	default:
		return ctrl.Result{}, err
	}
}

// announce records a Warning event when the Ready condition turned to a
// stall or a retry, and one Normal event when a reconcile that made calls
// to WeChat Pay ends Ready: what the calls achieved, in a word. Routine
// reconciles say nothing.
func (s *scope) announce(before *metav1.Condition) {
	now := apimeta.FindStatusCondition(s.obj.Status.Conditions, upv1.ConditionReady)
	switch {
	case now == nil:
	case now.Status == metav1.ConditionTrue && s.calledWeChatPay:
		s.event(corev1.EventTypeNormal, upv1.ReasonSucceeded, now.Message)
	case now.Status != metav1.ConditionFalse || now.Reason == upv1.ReasonSuspended ||
		(before != nil && before.Status == now.Status && before.Reason == now.Reason && before.Message == now.Message):
	default:
		s.event(corev1.EventTypeWarning, now.Reason, now.Message)
	}
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
