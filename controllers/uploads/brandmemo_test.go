package uploads

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
