package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// brandIndex indexes UserPackageUploads by the WeChatPayBrand they name.
const brandIndex = ".spec.brandRef.name"

// brandCredentials reads and parses the Secret a WeChatPayBrand names, from
// the brand-secret namespace, live (never from a cache). Its stalls are
// worded from the brand's side; uploads prefix them with the brand's name.
func brandCredentials(ctx context.Context, reader client.Reader, namespace string, b *upv1.WeChatPayBrand) (*wechatpay.Credentials, error) {
	const field = "spec.credentialsSecretRef"
	name := b.Spec.CredentialsSecretRef.Name
	if namespace == "" {
		return nil, stall(upv1.ReasonSecretNotFound,
			"the operator has no brand-secret namespace to read Secret %s named by %s from; run it with POD_NAMESPACE or --brand-secret-namespace", name, field)
	}
	secret := &corev1.Secret{}
	err := getFromServer(ctx, reader, client.ObjectKey{Namespace: namespace, Name: name}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return nil, stall(upv1.ReasonSecretNotFound, "Secret %s/%s named by %s not found; create it", namespace, name, field)
	case err != nil:
		return nil, retry(upv1.ReasonAPIServerUnavailable, 0, "read Secret %s/%s named by %s: %v; retrying", namespace, name, field, err)
	}
	creds, err := wechatpay.CredentialsFromSecretData(secret.Data)
	if err != nil {
		return nil, stall(upv1.ReasonInvalidCredentials, "Secret %s/%s named by %s: %v; fix it", namespace, name, field, err)
	}
	return creds, nil
}

// brandAllows reports whether the brand lets objects of a namespace with
// these labels use it. A Selector brand without a selector allows none.
func brandAllows(b *upv1.WeChatPayBrand, namespaceLabels map[string]string) (bool, error) {
	allowed := b.Spec.AllowedNamespaces
	switch {
	case allowed.From == upv1.NamespacesFromAll:
		return true, nil
	case allowed.Selector == nil:
		return false, nil
	}
	selector, err := metav1.LabelSelectorAsSelector(allowed.Selector)
	if err != nil {
		return false, err
	}
	return selector.Matches(labels.Set(namespaceLabels)), nil
}

// describeAllowed says which namespaces a brand allows, for messages.
func describeAllowed(b *upv1.WeChatPayBrand) string {
	allowed := b.Spec.AllowedNamespaces
	switch {
	case allowed.From == upv1.NamespacesFromAll:
		return "all namespaces"
	case allowed.Selector == nil:
		return "no namespace (allowedNamespaces has no selector)"
	case len(allowed.Selector.MatchLabels) == 0 && len(allowed.Selector.MatchExpressions) == 0:
		return "all namespaces (an empty selector)"
	}
	return "namespaces labelled " + metav1.FormatLabelSelector(allowed.Selector)
}

// brandClient returns the brand API client of the WeChatPayBrand
// spec.brandRef names, once the brand allows the object's namespace, and
// the brand it is of. The brand and the namespace's labels come from the
// cache (both are watched); the Secret is read live from the brand-secret
// namespace.
func (r *UserPackageUploadReconciler) brandClient(ctx context.Context, u *upv1.UserPackageUpload) (wechatpay.API, string, error) {
	name := u.Spec.BrandRef.Name
	brand := &upv1.WeChatPayBrand{}
	err := r.Get(ctx, client.ObjectKey{Name: name}, brand)
	switch {
	case apierrors.IsNotFound(err):
		return nil, "", stall(upv1.ReasonBrandNotFound,
			"WeChatPayBrand %s named by spec.brandRef not found; ask the platform team to create it (the object is re-triggered when it appears)", name)
	case err != nil:
		return nil, "", retry(upv1.ReasonAPIServerUnavailable, 0, "read WeChatPayBrand %s: %v; retrying", name, err)
	}
	ns := namespaceMetadata()
	if err := r.Get(ctx, client.ObjectKey{Name: u.Namespace}, ns); err != nil {
		return nil, "", retry(upv1.ReasonAPIServerUnavailable, 0, "read Namespace %s: %v; retrying", u.Namespace, err)
	}
	ok, err := brandAllows(brand, ns.Labels)
	if err != nil {
		return nil, "", stall(upv1.ReasonBrandNotAllowed, "WeChatPayBrand %s has an invalid allowedNamespaces.selector (%v); ask the platform team to fix it", name, err)
	}
	if !ok {
		return nil, "", stall(upv1.ReasonBrandNotAllowed,
			"WeChatPayBrand %s does not allow namespace %s: it allows %s; ask the platform team to label the namespace or change the brand",
			name, u.Namespace, describeAllowed(brand))
	}
	creds, err := brandCredentials(ctx, r.APIReader, r.BrandSecretNamespace, brand)
	if err != nil {
		return nil, "", prefixed(err, fmt.Sprintf("WeChatPayBrand %s named by spec.brandRef: ", name))
	}
	c, err := r.NewWeChatPay(creds)
	if err != nil {
		return nil, "", stall(upv1.ReasonInvalidCredentials, "WeChatPayBrand %s named by spec.brandRef: %v; the platform team must fix its Secret", name, err)
	}
	return c, creds.BrandID, nil
}

// prefixed puts prefix before the message of a stall or retry.
func prefixed(err error, prefix string) error {
	switch e := err.(type) {
	case *stallError:
		return &stallError{reason: e.reason, message: prefix + e.message, cause: e.cause}
	case *retryError:
		return &retryError{reason: e.reason, message: prefix + e.message, after: e.after, cause: e.cause}
	}
	return err
}

// namespaceMetadata is an empty Namespace of the metadata-only cache.
func namespaceMetadata() *metav1.PartialObjectMetadata {
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	return ns
}

// brandName is the WeChatPayBrand an object names, if any, for brandIndex.
func brandName(u *upv1.UserPackageUpload) []string {
	if u.Spec.BrandRef == nil {
		return nil
	}
	return []string{u.Spec.BrandRef.Name}
}

// objectsUsingBrand maps a WeChatPayBrand to the objects, in every watched
// namespace, that name it: a brand that appears, changes its allowed
// namespaces or its status (its Secret changed) re-triggers them.
func (r *UserPackageUploadReconciler) objectsUsingBrand(ctx context.Context, brand client.Object) []reconcile.Request {
	return r.listRequests(ctx, client.MatchingFields{brandIndex: brand.GetName()})
}

// objectsInNamespace maps a Namespace whose labels changed to its objects
// that name a brand: they may have become allowed, or no longer be.
func (r *UserPackageUploadReconciler) objectsInNamespace(ctx context.Context, ns client.Object) []reconcile.Request {
	var list upv1.UserPackageUploadList
	if err := r.List(ctx, &list, client.InNamespace(ns.GetName())); err != nil {
		// With --watch-namespaces every other namespace lands here: the
		// cache does not know it, and the operator has nothing there.
		log.FromContext(ctx).V(1).Info("no objects to re-trigger in namespace", "namespace", ns.GetName(), "reason", err.Error())
		return nil
	}
	var requests []reconcile.Request
	for _, u := range list.Items {
		if u.Spec.BrandRef != nil {
			requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&u)})
		}
	}
	return requests
}

// objectsUsingSecretOrBrand maps a Secret to the objects that refer to it:
// those of its namespace that name it, and, for a Secret of the
// brand-secret namespace, those that use a WeChatPayBrand naming it.
func (r *UserPackageUploadReconciler) objectsUsingSecretOrBrand(ctx context.Context, secret client.Object) []reconcile.Request {
	requests := r.objectsUsingSecret(ctx, secret)
	if secret.GetNamespace() != r.BrandSecretNamespace {
		return requests
	}
	for _, b := range brandsNaming(ctx, r.Client, secret) {
		requests = append(requests, r.objectsUsingBrand(ctx, b)...)
	}
	return requests
}

func (r *UserPackageUploadReconciler) listRequests(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	var list upv1.UserPackageUploadList
	if err := r.List(ctx, &list, opts...); err != nil {
		log.FromContext(ctx).Error(err, "list objects to re-trigger")
		return nil
	}
	requests := make([]reconcile.Request, 0, len(list.Items))
	for _, u := range list.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&u)})
	}
	return requests
}

// indexBrands registers the indexes the brand watches use.
func indexBrands(ctx context.Context, indexer interface {
	IndexField(context.Context, client.Object, string, client.IndexerFunc) error
}) error {
	if err := indexer.IndexField(ctx, &upv1.UserPackageUpload{}, brandIndex, func(o client.Object) []string {
		return brandName(o.(*upv1.UserPackageUpload))
	}); err != nil {
		return fmt.Errorf("index uploads by brand: %w", err)
	}
	return nil
}
