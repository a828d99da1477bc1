// Package brandaccess answers, for every reconciler, the questions a
// WeChatPayBrand raises: which namespaces it lets use it, which brands name
// a Secret, and whose credentials its Secret holds, read live from the
// brand-secret namespace. It writes nothing.
package brandaccess

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/controllers/secrets"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// Credentials reads and parses the Secret a WeChatPayBrand names, from
// the brand-secret namespace, live (never from a cache). Its stalls are
// worded from the brand's side; uploads prefix them with the brand's name.
func Credentials(ctx context.Context, reader client.Reader, namespace string, b *upv1.WeChatPayBrand) (*wechatpay.Credentials, error) {
	creds, _, err := credentialsAndSecret(ctx, reader, namespace, b)
	return creds, err
}

// credentialsAndSecret is Credentials, with the Secret they were read
// from.
func credentialsAndSecret(ctx context.Context, reader client.Reader, namespace string, b *upv1.WeChatPayBrand) (*wechatpay.Credentials, *corev1.Secret, error) {
	const field = "spec.credentialsSecretRef"
	name := b.Spec.CredentialsSecretRef.Name
	if namespace == "" {
		return nil, nil, classify.Stall(upv1.ReasonSecretNotFound,
			"the operator has no brand-secret namespace to read Secret %s named by %s from; run it with POD_NAMESPACE or --brand-secret-namespace", name, field)
	}
	secret := &corev1.Secret{}
	err := secrets.GetFromServer(ctx, reader, client.ObjectKey{Namespace: namespace, Name: name}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil, classify.Stall(upv1.ReasonSecretNotFound, "Secret %s/%s named by %s not found; create it", namespace, name, field)
	case err != nil:
		return nil, nil, classify.Retry(upv1.ReasonAPIServerUnavailable, 0, "read Secret %s/%s named by %s: %v; retrying", namespace, name, field, err)
	}
	creds, err := wechatpay.CredentialsFromSecretData(secret.Data)
	if err != nil {
		return nil, nil, classify.Stall(upv1.ReasonInvalidCredentials, "Secret %s/%s named by %s: %v; fix it", namespace, name, field, err)
	}
	return creds, secret, nil
}

// Allows reports whether the brand lets objects of a namespace with
// these labels use it. A Selector brand without a selector allows none.
func Allows(b *upv1.WeChatPayBrand, namespaceLabels map[string]string) (bool, error) {
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

// DescribeAllowed says which namespaces a brand allows, for messages.
func DescribeAllowed(b *upv1.WeChatPayBrand) string {
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

// Naming lists the brands whose credentials are in secret (a Secret
// of the brand-secret namespace).
func Naming(ctx context.Context, c client.Reader, secret client.Object) []*upv1.WeChatPayBrand {
	var brands upv1.WeChatPayBrandList // a few per cluster: no index needed
	if err := c.List(ctx, &brands); err != nil {
		log.FromContext(ctx).Error(err, "list brands using Secret", "secret", secret.GetName())
		return nil
	}
	var naming []*upv1.WeChatPayBrand
	for i, b := range brands.Items {
		if b.Spec.CredentialsSecretRef.Name == secret.GetName() {
			naming = append(naming, &brands.Items[i])
		}
	}
	return naming
}

// ForObject returns the credentials of the WeChatPayBrand u's
// spec.brandRef names, once the brand allows u's namespace (see Allowed),
// and the Secret of the brand-secret namespace they were read from, live.
func ForObject(ctx context.Context, cache, apiReader client.Reader, secretNamespace string, u *upv1.UserPackageUpload) (*wechatpay.Credentials, *corev1.Secret, error) {
	brand, err := Allowed(ctx, cache, u)
	if err != nil {
		return nil, nil, err
	}
	creds, secret, err := credentialsAndSecret(ctx, apiReader, secretNamespace, brand)
	if err != nil {
		return nil, nil, classify.Prefixed(err, fmt.Sprintf("WeChatPayBrand %s named by spec.brandRef: ", brand.Name))
	}
	return creds, secret, nil
}

// Allowed returns the WeChatPayBrand u's spec.brandRef names, once it
// allows u's namespace. The brand and the namespace's labels come from the
// cache (both are watched).
func Allowed(ctx context.Context, cache client.Reader, u *upv1.UserPackageUpload) (*upv1.WeChatPayBrand, error) {
	name := u.Spec.BrandRef.Name
	brand := &upv1.WeChatPayBrand{}
	err := cache.Get(ctx, client.ObjectKey{Name: name}, brand)
	switch {
	case apierrors.IsNotFound(err):
		return nil, classify.Stall(upv1.ReasonBrandNotFound,
			"WeChatPayBrand %s named by spec.brandRef not found; ask the platform team to create it (the object is re-triggered when it appears)", name)
	case err != nil:
		return nil, classify.Retry(upv1.ReasonAPIServerUnavailable, 0, "read WeChatPayBrand %s: %v; retrying", name, err)
	}
	ns := namespaceMetadata()
	if err := cache.Get(ctx, client.ObjectKey{Name: u.Namespace}, ns); err != nil {
		return nil, classify.Retry(upv1.ReasonAPIServerUnavailable, 0, "read Namespace %s: %v; retrying", u.Namespace, err)
	}
	ok, err := Allows(brand, ns.Labels)
	if err != nil {
		return nil, classify.Stall(upv1.ReasonBrandNotAllowed, "WeChatPayBrand %s has an invalid allowedNamespaces.selector (%v); ask the platform team to fix it", name, err)
	}
	if !ok {
		return nil, classify.Stall(upv1.ReasonBrandNotAllowed,
			"WeChatPayBrand %s does not allow namespace %s: it allows %s; ask the platform team to label the namespace or change the brand",
			name, u.Namespace, DescribeAllowed(brand))
	}
	return brand, nil
}

// namespaceMetadata is an empty Namespace of the metadata-only cache.
func namespaceMetadata() *metav1.PartialObjectMetadata {
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	return ns
}
