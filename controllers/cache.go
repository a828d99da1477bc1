package controllers

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CacheByObject is what the manager's cache needs to know about the objects
// the reconciler watches: of Secrets, only names and versions are kept.
func CacheByObject() map[client.Object]cache.ByObject {
	secrets := &metav1.PartialObjectMetadata{}
	secrets.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return map[client.Object]cache.ByObject{secrets: {Transform: stripSecretMetadata}}
}

// stripSecretMetadata drops a Secret's annotations and managed fields
// before they are cached: `kubectl apply` keeps the whole Secret, data
// included, in its last-applied-configuration annotation.
func stripSecretMetadata(obj any) (any, error) {
	if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
		m.Annotations = nil
		m.ManagedFields = nil
	}
	return obj, nil
}
