package uploads

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/brandaccess"
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// brandIndex indexes UserPackageUploads by the WeChatPayBrand they name.
const brandIndex = ".spec.brandRef.name"

// brandClient returns the brand API client of the WeChatPayBrand
// spec.brandRef names, once the brand allows the object's namespace, and
// the brand it is of (see brandaccess.ForObject).
func (r *Reconciler) brandClient(ctx context.Context, u *upv1.UserPackageUpload) (wechatpay.API, string, error) {
	creds, secret, err := brandaccess.ForObject(ctx, r.Client, r.APIReader, r.BrandSecretNamespace, u)
	if err != nil {
		return nil, "", err
	}
	c, err := r.NewWeChatPay(creds)
	if err != nil {
		return nil, "", classify.Stall(upv1.ReasonInvalidCredentials,
			"WeChatPayBrand %s named by spec.brandRef: %v; the platform team must fix its Secret", u.Spec.BrandRef.Name, err)
	}
	r.brands.remember(secret, creds.BrandID)
	return c, creds.BrandID, nil
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
func (r *Reconciler) objectsUsingBrand(ctx context.Context, brand client.Object) []reconcile.Request {
	return r.listRequests(ctx, client.MatchingFields{brandIndex: brand.GetName()})
}

// objectsInNamespace maps a Namespace whose labels changed to its objects
// that name a brand: they may have become allowed, or no longer be.
func (r *Reconciler) objectsInNamespace(ctx context.Context, ns client.Object) []reconcile.Request {
	var list upv1.UserPackageUploadList
	if err := r.List(ctx, &list, client.InNamespace(ns.GetName()), client.UnsafeDisableDeepCopy); err != nil {
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
func (r *Reconciler) objectsUsingSecretOrBrand(ctx context.Context, secret client.Object) []reconcile.Request {
	requests := r.objectsUsingSecret(ctx, secret)
	if secret.GetNamespace() != r.BrandSecretNamespace {
		return requests
	}
	for _, b := range brandaccess.Naming(ctx, r.Client, secret) {
		requests = append(requests, r.objectsUsingBrand(ctx, b)...)
	}
	return requests
}

func (r *Reconciler) listRequests(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	var list upv1.UserPackageUploadList
	// The names alone are read: no copy of thousands of objects per event.
	if err := r.List(ctx, &list, append(opts, client.UnsafeDisableDeepCopy)...); err != nil {
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
