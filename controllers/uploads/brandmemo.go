package uploads

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

// brandMemo remembers, for each credentials Secret read, the brand its
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

// knownBrand is the brand of the object's credentials Secret when the
// version the cache holds is one already read. Objects of a WeChatPayBrand
// are not remembered: their brand and namespace are checked on every
// reconcile, with the brand's Secret.
func (r *Reconciler) knownBrand(ctx context.Context, u *upv1.UserPackageUpload) (string, bool) {
	if u.Spec.BrandRef != nil || u.Spec.CredentialsRef == nil {
		return "", false
	}
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := r.Get(ctx, client.ObjectKey{Namespace: u.Namespace, Name: u.Spec.CredentialsRef.Name}, meta); err != nil {
		return "", false // read it live, which says what is wrong
	}
	return r.brands.lookup(meta)
}
