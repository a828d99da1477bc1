package syncs

import (
	"context"
	"errors"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	ctrl "sigs.k8s.io/controller-runtime"
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

// A child created by a reconcile whose status write was lost (the manager
// killed, the API server away) may finish before the sync looks again: it
// is recorded as the run it is. Deleted as a stranger, it would be created
// again and refused its filename by WeChat Pay, which merged it already.
func TestAChildWhoseRunWasNeverRecordedIsRecordedNotDeleted(t *testing.T) {
	for _, tt := range []struct {
		name    string
		restart bool
	}{
		{name: "the same manager looks again before its next check"},
		{name: "a restarted manager looks again and checks at once", restart: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newIdleWorld(t)
			w.loseWrites = 1
			if _, err := w.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: w.key}); err == nil {
				t.Fatal("the reconcile whose status write was lost reported no error")
			}
			child := onlyChild(t, w)
			w.readyChild(t, child.Name)
			if tt.restart {
				w.r = &Reconciler{Client: w.r.Client, Sources: w.r.Sources, Now: w.r.Now}
			}
			w.reconcile(t)

			onlyChild(t, w)
			sync := w.sync(t)
			if h := sync.Status.History; len(h) != 1 || h[0].Child != child.Name || h[0].Result != upv1.SyncResultSynced || h[0].Revision != w.export.current.ID {
				t.Errorf("history %+v, want one run of %s synced by %s", h, w.export.current.ID, child.Name)
			}
			if last := sync.Status.LastSyncedRevision; last == nil || last.Child != child.Name || last.Key != w.export.current.Key {
				t.Errorf("last synced revision %+v, want %s's", last, child.Name)
			}
			if w.creates != 1 {
				t.Errorf("%d children created, want 1: the child was deleted and created again", w.creates)
			}
		})
	}
}

func onlyChild(t *testing.T, w *idleWorld) upv1.UserPackageUpload {
	t.Helper()
	list := &upv1.UserPackageUploadList{}
	must(t, w.r.List(context.Background(), list))
	if len(list.Items) != 1 {
		t.Fatalf("%d children, want 1", len(list.Items))
	}
	return list.Items[0]
}

// Past spec.historyLimit a run leaves history with its child, and only
// once the child is gone: a child no run names is taken for one whose run
// was never recorded.
func TestPruneDropsARunOnlyOnceItsChildIsGone(t *testing.T) {
	for _, tt := range []struct {
		name        string
		oldChild    func(*upv1.UserPackageUpload)
		failDelete  bool
		olderIsBase bool
		wantRuns    int
		wantDeleted bool
	}{
		{name: "a finished child past the limit is deleted with its run", oldChild: ready, wantRuns: 1, wantDeleted: true},
		{name: "a failed delete keeps the run for the next reconcile", oldChild: ready, failDelete: true, wantRuns: 2},
		{name: "a child at work again keeps its run until it is done", oldChild: func(*upv1.UserPackageUpload) {}, wantRuns: 2},
		{name: "the base's child keeps its run until the base moves on", oldChild: ready, olderIsBase: true, wantRuns: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := scheme.New()
			sync := syncForTest(upv1.SyncModeDelta, nil)
			sync.Spec.HistoryLimit = 1
			newer, older := childFor(sync, upv1.Revision{ID: "b"}), childFor(sync, upv1.Revision{ID: "a"})
			ready(newer)
			tt.oldChild(older)
			sync.Status.History = []upv1.SyncRun{
				{Revision: "b", Child: newer.Name, Result: upv1.SyncResultSynced},
				{Revision: "a", Child: older.Name, Result: upv1.SyncResultSynced},
			}
			if tt.olderIsBase {
				sync.Status.LastSyncedRevision = &upv1.SyncedRevision{Revision: upv1.Revision{ID: "a"}, Child: older.Name}
			}
			c := fake.NewClientBuilder().WithScheme(s).WithObjects(newer, older)
			if tt.failDelete {
				c = c.WithInterceptorFuncs(interceptor.Funcs{Delete: func(context.Context, client.WithWatch, client.Object, ...client.DeleteOption) error {
					return errors.New("the API server went away")
				}})
			}
			r := &Reconciler{Client: c.Build()}
			children := map[string]*upv1.UserPackageUpload{newer.Name: newer, older.Name: older}

			err := r.prune(context.Background(), sync, children)
			if (err != nil) != tt.failDelete {
				t.Errorf("prune: %v", err)
			}
			if len(sync.Status.History) != tt.wantRuns {
				t.Errorf("%d runs kept, want %d", len(sync.Status.History), tt.wantRuns)
			}
			err = r.Get(context.Background(), client.ObjectKeyFromObject(older), &upv1.UserPackageUpload{})
			if deleted := apierrors.IsNotFound(err); deleted != tt.wantDeleted {
				t.Errorf("older child deleted: %t, want %t", deleted, tt.wantDeleted)
			}
		})
	}
}

func ready(child *upv1.UserPackageUpload) {
	child.Status.Conditions = []metav1.Condition{{Type: upv1.ConditionReady, Status: metav1.ConditionTrue, Reason: upv1.ReasonSucceeded}}
}

// A run's child finishing after a newer run synced leaves the newer
// revision the base of the next Delta.
func TestAnOlderChildFinishingLaterIsNotTheBase(t *testing.T) {
	sync := syncForTest(upv1.SyncModeDelta, nil)
	newer, older := childFor(sync, upv1.Revision{ID: "b"}), childFor(sync, upv1.Revision{ID: "a"})
	ready(newer)
	ready(older)
	sync.Status.History = []upv1.SyncRun{
		{Revision: "b", Child: newer.Name, Result: upv1.SyncResultInFlight},
		{Revision: "a", Child: older.Name, Result: upv1.SyncResultInFlight},
	}
	followChildren(sync, map[string]*upv1.UserPackageUpload{newer.Name: newer, older.Name: older})
	if last := sync.Status.LastSyncedRevision; last == nil || last.Revision.ID != "b" {
		t.Errorf("base %+v, want revision b", last)
	}
	for _, run := range sync.Status.History {
		if run.Result != upv1.SyncResultSynced {
			t.Errorf("run of %s is %s, want Synced", run.Revision, run.Result)
		}
	}
}
