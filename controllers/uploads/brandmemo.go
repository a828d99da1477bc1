package uploads

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/brandaccess"
)

// brandMemo remembers, for each credentials Secret read (a team's, or a
// WeChatPayBrand's in the brand-secret namespace), the brand its
// version holds: the brand ID only (public, in every request WeChat Pay
// receives), never a key. A reconcile that makes no call needs the brand
// alone, to check its uploads' keys (a new brand is a new upload); it takes
// it from here when the cache's metadata of the Secret show the version
// that was read, so that a restarted manager reconciling thousands of
// finished objects reads each Secret once, not once per object. Every call
// is still made with credentials read live.
type brandMemo struct {
	mu       sync.Mutex
	bySecret map[client.ObjectKey]secretBrand
}

// secretBrand is the brand of one version of a Secret.
type secretBrand struct {
	uid             types.UID
	resourceVersion string
	brandID         string
}

// remember notes the brand of the Secret version just read.
func (m *brandMemo) remember(secret *corev1.Secret, brandID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bySecret == nil {
		m.bySecret = map[client.ObjectKey]secretBrand{}
	}
	m.bySecret[client.ObjectKeyFromObject(secret)] = secretBrand{uid: secret.UID, resourceVersion: secret.ResourceVersion, brandID: brandID}
}

// lookup is the brand of the Secret version meta describes, if it was read.
func (m *brandMemo) lookup(meta *metav1.PartialObjectMetadata) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.bySecret[client.ObjectKeyFromObject(meta)]
	if !ok || b.uid != meta.UID || b.resourceVersion != meta.ResourceVersion {
		return "", false
	}
	return b.brandID, true
}

// knownBrand is the brand of the object's credentials when the version of
// their Secret that the cache holds is one already read.
func (r *Reconciler) knownBrand(ctx context.Context, u *upv1.UserPackageUpload) (string, bool) {
	key, ok := r.credentialsSecret(ctx, u)
	if !ok {
		return "", false
	}
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := r.Get(ctx, key, meta); err != nil {
		return "", false // read it live, which says what is wrong
	}
	return r.brands.lookup(meta)
}

// credentialsSecret names the Secret that holds the object's credentials:
// its credentialsRef, or the Secret of the WeChatPayBrand its brandRef
// names, once the brand allows the object's namespace. The brand and the
// namespace are checked from the cache on every reconcile, as for a call;
// ok is false when they do not allow it, and the live read says why.
func (r *Reconciler) credentialsSecret(ctx context.Context, u *upv1.UserPackageUpload) (key client.ObjectKey, ok bool) {
	switch {
	case u.Spec.BrandRef != nil:
		brand, err := brandaccess.Allowed(ctx, r.Client, u)
		if err != nil || r.BrandSecretNamespace == "" {
			return client.ObjectKey{}, false
		}
		return client.ObjectKey{Namespace: r.BrandSecretNamespace, Name: brand.Spec.CredentialsSecretRef.Name}, true
	case u.Spec.CredentialsRef != nil:
		return client.ObjectKey{Namespace: u.Namespace, Name: u.Spec.CredentialsRef.Name}, true
	}
	return client.ObjectKey{}, false
}
