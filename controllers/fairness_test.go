package controllers

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

func TestNamespaceSlots(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	t.Run("a namespace gets no more than its share and other namespaces are not affected", func(t *testing.T) {
		s := newNamespaceSlots(2, 1<<20)
		_, r1, ok1 := s.tryAcquire("a", "x", now)
		_, _, ok2 := s.tryAcquire("a", "y", now)
		_, _, ok3 := s.tryAcquire("a", "z", now)
		_, _, okOther := s.tryAcquire("b", "x", now)
		if !ok1 || !ok2 || ok3 || !okOther {
			t.Fatalf("acquired %v %v %v in a, %v in b; want true true false, true", ok1, ok2, ok3, okOther)
		}
		r1()
		r1() // a second release is a no-op
		if _, _, ok := s.tryAcquire("a", "z", now); !ok {
			t.Error("the freed slot did not go to the waiting object")
		}
		if _, _, ok := s.tryAcquire("a", "w", now); ok {
			t.Error("a third slot was given after a double release")
		}
	})
	t.Run("a freed slot goes to the object that waited longest", func(t *testing.T) {
		s := newNamespaceSlots(1, 1<<20)
		_, release, _ := s.tryAcquire("a", "reader", now)
		s.tryAcquire("a", "first", now)
		s.tryAcquire("a", "second", now)
		release()
		if _, _, ok := s.tryAcquire("a", "reader", now); ok {
			t.Error("the object that just read overtook the waiting ones")
		}
		if _, _, ok := s.tryAcquire("a", "second", now); ok {
			t.Error("the second waiter overtook the first")
		}
		if _, _, ok := s.tryAcquire("a", "first", now); !ok {
			t.Error("the first waiter did not get the slot")
		}
	})
	t.Run("a waiter that stopped asking is forgotten", func(t *testing.T) {
		s := newNamespaceSlots(1, 1<<20)
		_, release, _ := s.tryAcquire("a", "reader", now)
		s.tryAcquire("a", "gone", now)
		release()
		if _, _, ok := s.tryAcquire("a", "next", now.Add(waiterTimeout)); !ok {
			t.Error("a deleted object's place in the queue blocks the namespace")
		}
	})
	t.Run("slots freed one after the other wake one waiter each", func(t *testing.T) {
		s := newNamespaceSlots(2, 1<<20)
		var woken []string
		s.wake = func(_, name string) { woken = append(woken, name) }
		_, r1, _ := s.tryAcquire("a", "reader-1", now)
		_, r2, _ := s.tryAcquire("a", "reader-2", now)
		for _, name := range []string{"first", "second", "third"} {
			s.tryAcquire("a", name, now)
		}
		r1()
		r2() // before the first waiter took its slot
		if want := []string{"first", "second"}; !slices.Equal(woken, want) {
			t.Errorf("woken %v, want %v", woken, want)
		}
	})
	t.Run("a deleted waiter gives up its place at once", func(t *testing.T) {
		s := newNamespaceSlots(1, 1<<20)
		_, release, _ := s.tryAcquire("a", "reader", now)
		s.tryAcquire("a", "deleted", now)
		s.tryAcquire("a", "next", now)
		s.forget("a", "deleted")
		release()
		if _, _, ok := s.tryAcquire("a", "next", now); !ok {
			t.Error("a deleted object's place in the queue blocks the next waiter")
		}
	})
	t.Run("the fair share is half the workers, at least one", func(t *testing.T) {
		for workers, want := range map[int]int{0: 1, 1: 1, 2: 1, 3: 1, 16: 8} {
			if got := fairShare(workers); got != want {
				t.Errorf("fairShare(%d) = %d, want %d", workers, got, want)
			}
		}
	})
}

// TestAWaitingObjectsTurnCostsNoWrite follows the first word of a new
// object whose namespace has its share of reads in flight: the word that
// it waits is also initiate's pending mark, and its turn goes on from that
// mark without a write, unless someone rewrote the mark or the manager
// restarted; then the mark counts as a call whose outcome is unknown.
func TestAWaitingObjectsTurnCostsNoWrite(t *testing.T) {
	tests := []struct {
		name string
		// meanwhile happens between the waiting word and the turn; it may
		// return another reconciler, as a restarted manager.
		meanwhile     func(t *testing.T, r *UserPackageUploadReconciler, c client.Client, stored, before *upv1.UserPackageUpload) *UserPackageUploadReconciler
		wantWrite     bool
		wantPreclaim  bool
		wantReadyText string
	}{
		{
			name: "nobody wrote the object: the turn writes nothing and the mark announces the call",
			meanwhile: func(_ *testing.T, r *UserPackageUploadReconciler, _ client.Client, _, _ *upv1.UserPackageUpload) *UserPackageUploadReconciler {
				return r
			},
			wantPreclaim:  true,
			wantReadyText: "reading the file from object storage",
		},
		{
			name: "a reconcile through a cache that lags behind the waiting word leaves the mark for the turn",
			meanwhile: func(t *testing.T, r *UserPackageUploadReconciler, _ client.Client, _, before *upv1.UserPackageUpload) *UserPackageUploadReconciler {
				s := r.newScope(before.DeepCopy())
				defer s.releaseSlot()
				if _, _, err := s.sayFirstWord(context.Background()); !apierrors.IsConflict(err) {
					t.Fatalf("a word over the version before the waiting word: %v, want a conflict", err)
				}
				return r
			},
			wantPreclaim:  true,
			wantReadyText: "reading the file from object storage",
		},
		{
			name: "a label edit, as GitOps makes all day, leaves the mark this manager's: the turn writes nothing",
			meanwhile: func(t *testing.T, r *UserPackageUploadReconciler, c client.Client, u, _ *upv1.UserPackageUpload) *UserPackageUploadReconciler {
				u.Labels = map[string]string{"edited": "meanwhile"}
				must(t, c.Update(context.Background(), u))
				return r
			},
			wantPreclaim:  true,
			wantReadyText: "reading the file from object storage",
		},
		{
			name: "a spec edit leaves the mark this manager's: the turn says its word about the new generation",
			meanwhile: func(t *testing.T, r *UserPackageUploadReconciler, c client.Client, u, _ *upv1.UserPackageUpload) *UserPackageUploadReconciler {
				u.Spec.File.Description = "edited meanwhile"
				u.Generation++ // the fake API server does not count generations
				must(t, c.Update(context.Background(), u))
				return r
			},
			wantWrite:     true,
			wantPreclaim:  true,
			wantReadyText: "reading the file from object storage",
		},
		{
			name: "someone rewrote the mark in status: the turn says its word again and the mark is not taken for this manager's",
			meanwhile: func(t *testing.T, r *UserPackageUploadReconciler, c client.Client, u, _ *upv1.UserPackageUpload) *UserPackageUploadReconciler {
				u.Status.Uploads[0].InitiatingSince = &metav1.Time{Time: u.Status.Uploads[0].InitiatingSince.Add(-time.Hour)}
				must(t, c.Status().Update(context.Background(), u))
				return r
			},
			wantWrite:     true,
			wantReadyText: "reading the file from object storage",
		},
		{
			name: "the manager restarted: the mark is not taken for a call that was not made",
			meanwhile: func(t *testing.T, _ *UserPackageUploadReconciler, c client.Client, _, _ *upv1.UserPackageUpload) *UserPackageUploadReconciler {
				restarted := &UserPackageUploadReconciler{Client: c, APIReader: c}
				restarted.setDefaults()
				return restarted
			},
			wantWrite:     true,
			wantReadyText: "reading the file from object storage",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			u := &upv1.UserPackageUpload{
				ObjectMeta: metav1.ObjectMeta{Namespace: "unit", Name: "vip", Generation: 1},
				Spec:       upv1.UserPackageUploadSpec{CredentialsRef: &upv1.SecretReference{Name: "wechatpay-brand"}},
			}
			r, c := unitReconciler(t, &fakeWeChatPay{t: t}, u)
			releaseAll := fillReadSlots(r, u.Namespace)
			before := u.DeepCopy()

			s := r.newScope(u)
			if _, waiting, err := s.sayFirstWord(ctx); err != nil || !waiting {
				t.Fatalf("first word: waiting %v, %v; want waiting", waiting, err)
			}
			s.releaseSlot()
			stored := storedUpload(t, c, u)
			if !isWaitingForSlot(stored) || firstUpload(stored) == nil || firstUpload(stored).InitiatingSince == nil {
				t.Fatalf("the waiting word wrote %+v, want the waiting condition and initiate's mark", stored.Status)
			}

			r = tt.meanwhile(t, r, c, stored, before)
			releaseAll()
			turn := storedUpload(t, c, u)
			version := turn.ResourceVersion
			s = r.newScope(turn)
			defer s.releaseSlot()
			if _, waiting, err := s.sayFirstWord(ctx); err != nil || waiting {
				t.Fatalf("turn: waiting %v, %v; want to go on", waiting, err)
			}
			if wrote := storedUpload(t, c, u).ResourceVersion != version; wrote != tt.wantWrite {
				t.Errorf("the turn wrote the object: %v, want %v", wrote, tt.wantWrite)
			}
			if s.preclaimed != tt.wantPreclaim {
				t.Errorf("preclaimed = %v, want %v", s.preclaimed, tt.wantPreclaim)
			}
			if ready := findCondition(turn, upv1.ConditionReady); ready.Message != tt.wantReadyText {
				t.Errorf("Ready says %q, want %q", ready.Message, tt.wantReadyText)
			}
		})
	}
}

// fillReadSlots takes every read slot of namespace ns, for other objects;
// the function returned gives them back.
func fillReadSlots(r *UserPackageUploadReconciler, ns string) (releaseAll func()) {
	var releases []func()
	for i := range r.readSlots.perNamespace {
		_, release, _ := r.readSlots.tryAcquire(ns, fmt.Sprintf("reader-%d", i), time.Now())
		releases = append(releases, release)
	}
	return func() {
		for _, release := range releases {
			release()
		}
	}
}

func storedUpload(t *testing.T, c client.Client, u *upv1.UserPackageUpload) *upv1.UserPackageUpload {
	t.Helper()
	stored := &upv1.UserPackageUpload{}
	must(t, c.Get(context.Background(), client.ObjectKeyFromObject(u), stored))
	return stored
}
