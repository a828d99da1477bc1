// Package secrets reads the Secrets a reconciler refers to, live from the
// API server and never from a cache: Secrets are not cached cluster-wide,
// and what a Secret lacks is said as a stall that names the spec field.
package secrets

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
)

// Keys of the storage Secrets a UserPackageUpload refers to.
const (
	KeyAccessKey    = "accesskey"
	KeySecretKey    = "secretkey"
	KeySessionToken = "sessiontoken"
	KeyCACert       = "ca.crt"
	KeyToken        = "token"
	KeyUsername     = "username"
	KeyPassword     = "password"
)

// GetFromServer reads obj from the API server's watch cache (resource
// version "0"), never the manager's: live — the API server's cache follows
// etcd within moments and feeds the manager's informers, so it is never
// behind the change that triggered a reconcile — without a quorum read of
// etcd on every reconcile.
func GetFromServer(ctx context.Context, reader client.Reader, key client.ObjectKey, obj client.Object) error {
	return reader.Get(ctx, key, obj, &client.GetOptions{Raw: &metav1.GetOptions{ResourceVersion: "0"}})
}

// Read reads the Secret key names from the API server. field names the
// spec field that refers to it, for the stall a missing one gives.
func Read(ctx context.Context, reader client.Reader, key client.ObjectKey, field string) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	err := GetFromServer(ctx, reader, key, secret)
	switch {
	case apierrors.IsNotFound(err):
		return nil, classify.Stall(upv1.ReasonSecretNotFound, "Secret %s/%s named by %s not found; create it", key.Namespace, key.Name, field)
	case err != nil:
		return nil, classify.Retry(upv1.ReasonAPIServerUnavailable, 0, "read Secret %s named by %s: %v; retrying", key.Name, field, err)
	}
	return secret, nil
}

// Value is one key of a Secret; a missing required key stalls.
func Value(s *corev1.Secret, key, field string, required bool) ([]byte, error) {
	v, ok := s.Data[key]
	if !ok && required {
		return nil, classify.Stall(upv1.ReasonInvalidCredentials, "Secret %s named by %s has no key %q; add it", s.Name, field, key)
	}
	return v, nil
}
