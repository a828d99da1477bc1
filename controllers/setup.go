// Package controllers wires the reconcilers into a manager. Each reconciler
// is a package of its own (uploads, brands); the mechanisms they share are
// packages that import no reconciler (docs/development-packages.md).
package controllers

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/crowdpack/crowdpack/controllers/brands"
	"github.com/crowdpack/crowdpack/controllers/managercache"
	"github.com/crowdpack/crowdpack/controllers/syncs"
	"github.com/crowdpack/crowdpack/controllers/uploads"
)

// Defaults are the upload reconciler's settings when none are given: the
// manager's flags default to them.
var Defaults = uploads.Defaults

// CacheOptions is what the manager's cache holds: the reconcilers' objects,
// Secrets by metadata only, and with watchNamespaces (a comma-separated
// list, empty for all) only those namespaces and the brand-secret one.
func CacheOptions(watchNamespaces, brandSecretNamespace string) cache.Options {
	return managercache.WatchNamespaces(managercache.CacheOptions(),
		managercache.ParseNamespaces(watchNamespaces), brandSecretNamespace)
}

// Setup adds the upload reconciler r, the brand reconciler and the sync
// reconciler to mgr,
// through which both read and write.
func Setup(ctx context.Context, mgr ctrl.Manager, r *uploads.Reconciler, brandSecretNamespace string) error {
	r.Client, r.APIReader, r.Recorder = mgr.GetClient(), mgr.GetAPIReader(), mgr.GetEventRecorder("crowdpack")
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("set up controller: %w", err)
	}
	b := &brands.Reconciler{
		Client:          mgr.GetClient(),
		APIReader:       mgr.GetAPIReader(),
		SecretNamespace: brandSecretNamespace,
	}
	if err := b.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up brand controller: %w", err)
	}
	s := &syncs.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: r.Recorder, Sources: r.SourceOpener(), Now: r.Now}
	if err := s.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up sync controller: %w", err)
	}
	return nil
}
