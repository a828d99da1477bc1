// Package brands holds the WeChatPayBrand reconciler: it says in each
// brand's status whether its Secret holds usable credentials.
package brands

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/brandaccess"
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/controllers/conditions"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// Reconciler says in each WeChatPayBrand's status whether its
// Secret holds usable credentials, and whose: brand_id, certificate serial,
// public key ID. It reads the Secret live and writes no key material
// anywhere.
type Reconciler struct {
	client.Client
	// APIReader reads the brand Secrets from the API server, never a cache.
	APIReader client.Reader
	// SecretNamespace is where the brands' Secrets are: the operator's own
	// namespace or --brand-secret-namespace.
	SecretNamespace string
}

// +kubebuilder:rbac:groups=wechatpay.crowdpack.io,resources=wechatpaybrands,verbs=get;list;watch
// +kubebuilder:rbac:groups=wechatpay.crowdpack.io,resources=wechatpaybrands/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// SetupWithManager registers the reconciler: brands are checked when their
// spec changes and when a Secret of the brand-secret namespace they name
// changes (watched by metadata only, as for uploads).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&upv1.WeChatPayBrand{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.brandsUsingSecret)).
		Complete(r)
}

// brandsUsingSecret maps a Secret of the brand-secret namespace to the
// brands that name it.
func (r *Reconciler) brandsUsingSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	if secret.GetNamespace() != r.SecretNamespace {
		return nil
	}
	var requests []reconcile.Request
	for _, b := range brandaccess.Naming(ctx, r.Client, secret) {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKey{Name: b.Name}})
	}
	return requests
}

// Reconcile checks one brand's Secret and says what it found.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	b := &upv1.WeChatPayBrand{}
	if err := r.Get(ctx, req.NamespacedName, b); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := b.DeepCopy()
	creds, err := brandaccess.Credentials(ctx, r.APIReader, r.SecretNamespace, b)
	var stalled *classify.StallError
	var retrying *classify.RetryError
	switch {
	case err == nil:
		markBrandReady(b, creds)
	case errors.As(err, &stalled):
		markBrandStalled(b, stalled.Reason, stalled.Message)
	case errors.As(err, &retrying):
		setBrandCondition(b, upv1.ConditionReconciling, metav1.ConditionTrue, upv1.ReasonRetrying, retrying.Message)
		setBrandCondition(b, upv1.ConditionReady, metav1.ConditionFalse, retrying.Reason, retrying.Message)
	default:
		return ctrl.Result{}, err
	}
	if err := r.Status().Patch(ctx, b, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("write status of WeChatPayBrand %s: %w", b.Name, err)
	}
	if retrying != nil {
		return ctrl.Result{}, retrying // backoff
	}
	return ctrl.Result{}, nil
}

// markBrandReady records whose credentials the Secret holds: identifiers
// only, never key material.
func markBrandReady(b *upv1.WeChatPayBrand, creds *wechatpay.Credentials) {
	b.Status.BrandID = creds.BrandID
	b.Status.CertificateSerialNo = creds.CertificateSerialNo
	b.Status.PublicKeyID = creds.PublicKeyID
	setBrandCondition(b, upv1.ConditionReady, metav1.ConditionTrue, upv1.ReasonSucceeded,
		fmt.Sprintf("credentials of brand %s are complete and parse; allowed: %s", creds.BrandID, brandaccess.DescribeAllowed(b)))
	apimeta.RemoveStatusCondition(&b.Status.Conditions, upv1.ConditionReconciling)
	apimeta.RemoveStatusCondition(&b.Status.Conditions, upv1.ConditionStalled)
	b.Status.ObservedGeneration = b.Generation
}

// markBrandStalled says what the platform team must fix. The identifiers of
// credentials that no longer parse are dropped: they would mislead.
func markBrandStalled(b *upv1.WeChatPayBrand, reason, message string) {
	b.Status.BrandID, b.Status.CertificateSerialNo, b.Status.PublicKeyID = "", "", ""
	setBrandCondition(b, upv1.ConditionStalled, metav1.ConditionTrue, reason, message)
	setBrandCondition(b, upv1.ConditionReady, metav1.ConditionFalse, reason, message)
	apimeta.RemoveStatusCondition(&b.Status.Conditions, upv1.ConditionReconciling)
	b.Status.ObservedGeneration = b.Generation
}

func setBrandCondition(b *upv1.WeChatPayBrand, typ string, status metav1.ConditionStatus, reason, message string) {
	conditions.Set(&b.Status.Conditions, b.Generation, typ, status, reason, message)
}
