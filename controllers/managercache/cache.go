// Package managercache says what the manager's cache holds of the objects
// the reconcilers watch: no managed fields, Secrets by name and version
// only, and with --watch-namespaces only those namespaces.
package managercache

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CacheOptions is what the manager's cache needs to know about the objects
// the reconciler watches. Managed fields are dropped from every object: the
// reconciler never reads them, a status update ignores them, and they are
// half of a UserPackageUpload's bytes, which every read copies and every
// update sends.
func CacheOptions() cache.Options {
	return cache.Options{ByObject: cacheByObject(), DefaultTransform: cache.TransformStripManagedFields()}
}

// cacheByObject keeps, of Secrets, only names and versions.
func cacheByObject() map[client.Object]cache.ByObject {
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
