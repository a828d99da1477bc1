package managercache

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// WatchNamespaces restricts a manager's cache to the namespaces of
// --watch-namespaces: UserPackageUploads and Secrets there, and Secrets (by
// metadata) of the brand-secret namespace, whose changes re-trigger brands.
// An empty list leaves the cache cluster-wide. Cluster-scoped objects
// (WeChatPayBrands, Namespaces) are cached cluster-wide either way.
func WatchNamespaces(opts cache.Options, namespaces []string, brandSecretNamespace string) cache.Options {
	if len(namespaces) == 0 {
		return opts
	}
	opts.DefaultNamespaces = map[string]cache.Config{}
	secretNamespaces := map[string]cache.Config{}
	for _, ns := range namespaces {
		opts.DefaultNamespaces[ns] = cache.Config{}
		secretNamespaces[ns] = cache.Config{}
	}
	if brandSecretNamespace != "" {
		secretNamespaces[brandSecretNamespace] = cache.Config{}
	}
	for obj, by := range opts.ByObject {
		if isSecret(obj) {
			by.Namespaces = secretNamespaces
			opts.ByObject[obj] = by
		}
	}
	return opts
}

// ParseNamespaces splits a comma-separated flag value.
func ParseNamespaces(list string) []string {
	var out []string
	for _, ns := range strings.Split(list, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			out = append(out, ns)
		}
	}
	return out
}

// isSecret reports whether a cache key is the Secret metadata type.
func isSecret(obj client.Object) bool {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	return ok && m.GroupVersionKind() == corev1.SchemeGroupVersion.WithKind("Secret")
}
