package syncs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/scheme"
	"github.com/crowdpack/crowdpack/internal/source"
)

// fakeExport is a source whose current revision a test sets; it counts the
// requests a check makes.
type fakeExport struct {
	current source.Revision
	data    []byte
	checks  int
}

func (f *fakeExport) Revisions(context.Context, string, *upv1.SyncSource) (source.Revisions, error) {
	return f, nil
}

func (f *fakeExport) Current(context.Context, *source.Revision) (source.Revision, error) {
	f.checks++
	return f.current, nil
}

func (f *fakeExport) Source(source.Revision) (source.Source, error) { return f, nil }

func (f *fakeExport) Open(context.Context) (io.ReadCloser, source.Version, error) {
	return io.NopCloser(bytes.NewReader(f.data)), f.current.Version, nil
}

func (f *fakeExport) OpenRange(_ context.Context, _ source.Version, offset, length int64) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(f.data[offset : offset+length])), nil
}

// revisionOf is a dated export of a few phone numbers (MD5s, as the
// sync's dataType wants them).
func revisionOf(day int) (source.Revision, []byte) {
	var data bytes.Buffer
	for i := range 3 {
		fmt.Fprintf(&data, "%032x\n", day*100+i)
	}
	key := fmt.Sprintf("exports/vip/2026-12-%02d.csv", day)
	etag := fmt.Sprintf("e%d", day)
	return source.Revision{ID: key + "@" + etag, Key: key, Version: source.Version{ETag: etag, Size: int64(data.Len())}}, data.Bytes()
}

// idleWorld is a sync of one minute in step with its export, a clock, and
// the status writes and child creations the reconciler makes.
type idleWorld struct {
	r       *Reconciler
	export  *fakeExport
	clock   time.Time
	writes  int
	creates int
	key     types.NamespacedName
	// loseWrites is how many status writes to lose, as a manager killed
	// or an API server away loses them.
	loseWrites int
	// hideChildren lists no child, as a cache that has not seen them yet.
	hideChildren bool
}

func newIdleWorld(t *testing.T) *idleWorld {
	t.Helper()
	sync := syncForTest(upv1.SyncModeDelta, nil)
	sync.Spec.Interval = &metav1.Duration{Duration: time.Minute}
	w := &idleWorld{export: &fakeExport{}, clock: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC), key: keyOf(sync)}
	w.export.current, w.export.data = revisionOf(1)
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(sync).WithStatusSubresource(sync, &upv1.UserPackageUpload{}).Build()
	counted := interceptor.NewClient(c, interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			if w.loseWrites > 0 {
				w.loseWrites--
				return errors.New("the API server went away")
			}
			w.writes++
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			w.writes++
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if _, ok := list.(*upv1.UserPackageUploadList); ok && w.hideChildren {
				return nil
			}
			return c.List(ctx, list, opts...)
		},
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			w.creates++
			return c.Create(ctx, obj, opts...)
		},
	})
	w.r = &Reconciler{Client: counted, Sources: w.export, Now: func() time.Time { return w.clock }}
	return w
}

func (w *idleWorld) reconcile(t *testing.T) ctrl.Result {
	t.Helper()
	result, err := w.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: w.key})
	if err != nil {
		t.Fatalf("reconcile at %s: %v", w.clock.Format(time.TimeOnly), err)
	}
	return result
}

func (w *idleWorld) sync(t *testing.T) *upv1.UserPackageSync {
	t.Helper()
	s := &upv1.UserPackageSync{}
	must(t, w.r.Get(context.Background(), w.key, s))
	return s
}

// finishChild makes the newest run's child Ready, as the upload
// reconciler would, and reconciles the sync.
func (w *idleWorld) finishChild(t *testing.T) {
	t.Helper()
	w.readyChild(t, w.sync(t).Status.History[0].Child)
	w.reconcile(t)
}

// readyChild makes the child Ready, as the upload reconciler would.
func (w *idleWorld) readyChild(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	child := &upv1.UserPackageUpload{}
	must(t, w.r.Get(ctx, types.NamespacedName{Namespace: w.key.Namespace, Name: name}, child))
	child.Status.Conditions = []metav1.Condition{{Type: upv1.ConditionReady, Status: metav1.ConditionTrue, Reason: upv1.ReasonSucceeded,
		ObservedGeneration: child.Generation, LastTransitionTime: metav1.NewTime(w.clock)}}
	child.Status.Source = &upv1.SourceStatus{Digest: "sha256:" + fmt.Sprint(w.export.current.ETag), ETag: w.export.current.ETag, Size: w.export.current.Size}
	must(t, w.r.Status().Update(ctx, child))
}

// settle brings the world to an idle sync: the first revision synced by
// its child, as after the first round of a load test.
func (w *idleWorld) settle(t *testing.T) ctrl.Result {
	t.Helper()
	w.reconcile(t)
	w.finishChild(t)
	if h := w.sync(t).Status.History; len(h) != 1 || h[0].Result != upv1.SyncResultSynced {
		t.Fatalf("the first revision is not synced: %+v", h)
	}
	w.writes, w.creates, w.export.checks = 0, 0, 0
	return w.reconcile(t)
}

func TestAnIdleSyncChecksOncePerIntervalAndWritesNothing(t *testing.T) {
	tests := []struct {
		name string
		// act happens after the world settled; wait is the requeue the
		// settling reconcile asked for.
		act         func(t *testing.T, w *idleWorld, wait time.Duration)
		wantChecks  int
		wantWrites  int
		wantCreates int
	}{
		{
			name: "an unchanged source checked at each of ten slots causes no write",
			act: func(t *testing.T, w *idleWorld, wait time.Duration) {
				for range 10 {
					w.clock = w.clock.Add(wait)
					wait = w.reconcile(t).RequeueAfter
					if wait <= 0 || wait > time.Minute {
						t.Fatalf("an idle check asked to come back in %s, want within the interval", wait)
					}
				}
			},
			wantChecks: 10,
		},
		{
			name: "reconciles before the slot (a child's event, a resync) neither check nor write",
			act: func(t *testing.T, w *idleWorld, wait time.Duration) {
				w.clock = w.clock.Add(wait - time.Second)
				w.reconcile(t)
				w.reconcile(t)
			},
		},
		{
			name: "a new revision at the slot is seen, written and gets its child",
			act: func(t *testing.T, w *idleWorld, wait time.Duration) {
				w.export.current, w.export.data = revisionOf(2)
				w.clock = w.clock.Add(wait)
				w.reconcile(t)
			},
			wantChecks: 1, wantWrites: 1, wantCreates: 1,
		},
		{
			name: "a requested reconcile checks at once and writes only that it was handled",
			act: func(t *testing.T, w *idleWorld, _ time.Duration) {
				s := w.sync(t)
				s.Annotations = map[string]string{RequestedAt: "now"}
				must(t, w.r.Update(context.Background(), s))
				w.reconcile(t)
				if got := w.sync(t).Status.LastHandledReconcileAt; got != "now" {
					t.Errorf("lastHandledReconcileAt = %q, want the request", got)
				}
			},
			wantChecks: 1, wantWrites: 1,
		},
		{
			name: "a restarted manager checks at once, then at the slot, and writes nothing",
			act: func(t *testing.T, w *idleWorld, _ time.Duration) {
				w.r.checked = checkTimes{}
				wait := w.reconcile(t).RequeueAfter
				w.clock = w.clock.Add(wait)
				w.reconcile(t)
			},
			wantChecks: 2,
		},
		{
			name: "a resumed sync checks at once",
			act: func(t *testing.T, w *idleWorld, _ time.Duration) {
				setSuspend(t, w, true)
				w.reconcile(t)
				setSuspend(t, w, false)
				w.reconcile(t)
			},
			wantChecks: 1, wantWrites: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newIdleWorld(t)
			wait := w.settle(t).RequeueAfter
			if wait <= 0 || wait > time.Minute {
				t.Fatalf("an idle sync asked to come back in %s, want within its 1m interval", wait)
			}
			if w.export.checks != 0 || w.writes != 0 {
				t.Fatalf("settling: %d checks, %d writes after the child finished", w.export.checks, w.writes)
			}
			tt.act(t, w, wait)
			if w.export.checks != tt.wantChecks || w.writes != tt.wantWrites || w.creates != tt.wantCreates {
				t.Errorf("%d checks, %d status writes, %d children created; want %d, %d, %d",
					w.export.checks, w.writes, w.creates, tt.wantChecks, tt.wantWrites, tt.wantCreates)
			}
		})
	}
}

// A reconcile from a cache that has not seen the last status write yet
// finds the revision's child as its run: recorded from the child when the
// cache has it, created again (and found) when it has not. Either way the
// child is not announced a second time (two events would become a series,
// which the event recorder writes again minutes later, to an idle sync).
func TestAChildSeenAgainFromAStaleCacheIsNotAnnouncedAgain(t *testing.T) {
	for _, tt := range []struct {
		name            string
		childUncached   bool
		wantCreateTries int
	}{
		{name: "a child in the cache is recorded from itself", wantCreateTries: 1},
		{name: "a child not in the cache yet is created again, and found", childUncached: true, wantCreateTries: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newIdleWorld(t)
			events := &countingRecorder{}
			w.r.Recorder = events
			fresh := w.sync(t)
			w.reconcile(t)
			if w.creates != 1 || events.count != 1 {
				t.Fatalf("the first revision: %d creates, %d events; want 1, 1", w.creates, events.count)
			}
			stale := w.sync(t)
			stale.Status = fresh.Status // what a stale cache would hold
			must(t, w.r.Status().Update(context.Background(), stale))
			w.r.checked = checkTimes{}
			w.hideChildren = tt.childUncached
			w.reconcile(t)
			if w.creates != tt.wantCreateTries || events.count != 1 {
				t.Errorf("from a stale cache: %d creates, %d events; want %d and no second event", w.creates, events.count, tt.wantCreateTries)
			}
			if h := w.sync(t).Status.History; len(h) != 1 || h[0].Result != upv1.SyncResultInFlight {
				t.Errorf("history %+v, want the one run in flight", h)
			}
		})
	}
}

type countingRecorder struct{ count int }

func (r *countingRecorder) Eventf(runtime.Object, runtime.Object, string, string, string, string, ...any) {
	r.count++
}

func setSuspend(t *testing.T, w *idleWorld, suspend bool) {
	t.Helper()
	s := w.sync(t)
	s.Spec.Suspend = suspend
	s.Generation++ // the fake client does not count generations
	must(t, w.r.Update(context.Background(), s))
}

// Syncs created in the same second check at their own seconds of the
// interval: their requeues after the first check differ.
func TestSyncsCreatedTogetherCheckAtDifferentSeconds(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	seconds := map[int]bool{}
	for i := range 20 {
		sync := syncForTest(upv1.SyncModeDelta, nil)
		sync.UID = types.UID(fmt.Sprintf("uid-%d", i))
		sync.Spec.Interval = &metav1.Duration{Duration: time.Minute}
		seconds[int(nextCheck(sync, now).Sub(now)/time.Second)] = true
	}
	if len(seconds) < 10 {
		t.Errorf("20 syncs created together check in %d distinct seconds of the minute, want them spread", len(seconds))
	}
}
