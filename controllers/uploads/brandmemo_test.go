package uploads

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/scheme"
)

// TestABrandIsKnownOnlyForTheSecretVersionThatWasRead: a reconcile takes
// the brand from the memo only when the cache shows the very version of
// the Secret it was read from; an edited or re-created Secret is read again.
func TestABrandIsKnownOnlyForTheSecretVersionThatWasRead(t *testing.T) {
	read := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "wechatpay-brand", UID: "u1", ResourceVersion: "7"}}
	tests := []struct {
		reason    string
		meta      metav1.ObjectMeta
		wantBrand string
		wantKnown bool
	}{
		{"the version read", metav1.ObjectMeta{Namespace: "team-a", Name: "wechatpay-brand", UID: "u1", ResourceVersion: "7"}, "1900000109", true},
		{"the Secret was edited since", metav1.ObjectMeta{Namespace: "team-a", Name: "wechatpay-brand", UID: "u1", ResourceVersion: "8"}, "", false},
		{"the Secret was deleted and created again", metav1.ObjectMeta{Namespace: "team-a", Name: "wechatpay-brand", UID: types.UID("u2"), ResourceVersion: "7"}, "", false},
		{"a Secret of the same name in another namespace", metav1.ObjectMeta{Namespace: "team-b", Name: "wechatpay-brand", UID: "u1", ResourceVersion: "7"}, "", false},
		{"another Secret", metav1.ObjectMeta{Namespace: "team-a", Name: "other", UID: "u1", ResourceVersion: "7"}, "", false},
	}
	var m brandMemo
	m.remember(read, "1900000109")
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			brand, known := m.lookup(&metav1.PartialObjectMetadata{ObjectMeta: tt.meta})
			if brand != tt.wantBrand || known != tt.wantKnown {
				t.Errorf("lookup = %q, %v; want %q, %v", brand, known, tt.wantBrand, tt.wantKnown)
			}
		})
	}
}

// A reconcile that makes no call knows the brand of a WeChatPayBrand's
// objects as of a team's own credentials: from the version of the Secret
// read last, once the brand still allows the object's namespace, which is
// checked on every reconcile.
func TestABrandRefsBrandIsKnownWhileTheBrandAllowsTheNamespace(t *testing.T) {
	const secretNamespace = "crowdpack-system"
	brandSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secretNamespace, Name: "brand-keys", UID: "u1", ResourceVersion: "7"}}
	allowing := func(label string) *upv1.WeChatPayBrand {
		return &upv1.WeChatPayBrand{ObjectMeta: metav1.ObjectMeta{Name: "acme"}, Spec: upv1.WeChatPayBrandSpec{
			CredentialsSecretRef: upv1.SecretReference{Name: "brand-keys"},
			AllowedNamespaces: upv1.AllowedNamespaces{From: upv1.NamespacesFromSelector,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"crowdpack.io/brand-acme": label}}},
		}}
	}
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"crowdpack.io/brand-acme": "yes"}}}
	tests := []struct {
		reason    string
		brand     *upv1.WeChatPayBrand
		wantKnown bool
	}{
		{"the brand allows the namespace", allowing("yes"), true},
		{"the brand no longer allows the namespace", allowing("no"), false},
		{"the brand names another Secret since", func() *upv1.WeChatPayBrand {
			b := allowing("yes")
			b.Spec.CredentialsSecretRef.Name = "new-keys"
			return b
		}(), false},
		{"the brand is gone", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			objects := []client.Object{namespace, brandSecret.DeepCopy(),
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secretNamespace, Name: "new-keys", UID: "u2", ResourceVersion: "9"}}}
			if tt.brand != nil {
				objects = append(objects, tt.brand)
			}
			r := &Reconciler{Client: fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objects...).Build(), BrandSecretNamespace: secretNamespace}
			r.brands.remember(brandSecret, "1900000109")
			u := &upv1.UserPackageUpload{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "vip"},
				Spec: upv1.UserPackageUploadSpec{BrandRef: &upv1.BrandReference{Name: "acme"}}}

			brand, known := r.knownBrand(context.Background(), u)
			if known != tt.wantKnown || (known && brand != "1900000109") {
				t.Errorf("knownBrand = %q, %v; want known %v", brand, known, tt.wantKnown)
			}
		})
	}
}
