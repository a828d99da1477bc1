package syncs

import (
	"context"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/scheme"
)

// A run's child the cache has not seen yet (created a moment ago, or
// while the watch was re-established) is asked of the API server before
// the run is failed as ChildDeleted.
func TestARunsChildMissingFromTheCacheIsLookedUpBeforeItCountsAsDeleted(t *testing.T) {
	rev := upv1.Revision{ID: "exports/vip/2026-12-02.csv@e2", Key: "exports/vip/2026-12-02.csv"}
	for _, tt := range []struct {
		name       string
		onServer   bool
		wantResult upv1.SyncResult
	}{
		{name: "a child the API server has stays in flight", onServer: true, wantResult: upv1.SyncResultInFlight},
		{name: "a child the API server does not have either was deleted", wantResult: upv1.SyncResultFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := scheme.New()
			sync := syncForTest(upv1.SyncModeDelta, base)
			child := childFor(sync, rev)
			must(t, controllerutil.SetControllerReference(sync, child, s))
			sync.Status.History = []upv1.SyncRun{{Revision: rev.ID, Key: rev.Key, Child: child.Name, Result: upv1.SyncResultInFlight}}
			server := fake.NewClientBuilder().WithScheme(s)
			if tt.onServer {
				server = server.WithObjects(child)
			}
			r := &Reconciler{Client: fake.NewClientBuilder().WithScheme(s).Build(), APIReader: server.Build()}

			children, err := r.children(context.Background(), sync)
			must(t, err)
			must(t, r.findUncachedChildren(context.Background(), sync, children))
			followChildren(sync, children)
			if got := sync.Status.History[0].Result; got != tt.wantResult {
				t.Errorf("the run is %s, want %s", got, tt.wantResult)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
