package uploads

import (
	"context"
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

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
		meanwhile     func(t *testing.T, r *Reconciler, c client.Client, stored, before *upv1.UserPackageUpload) *Reconciler
		wantWrite     bool
		wantPreclaim  bool
		wantReadyText string
	}{
		{
			name: "nobody wrote the object: the turn writes nothing and the mark announces the call",
			meanwhile: func(_ *testing.T, r *Reconciler, _ client.Client, _, _ *upv1.UserPackageUpload) *Reconciler {
				return r
			},
			wantPreclaim:  true,
			wantReadyText: "reading the file from object storage",
		},
		{
			name: "a reconcile through a cache that lags behind the waiting word leaves the mark for the turn",
			meanwhile: func(t *testing.T, r *Reconciler, _ client.Client, _, before *upv1.UserPackageUpload) *Reconciler {
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
			meanwhile: func(t *testing.T, r *Reconciler, c client.Client, u, _ *upv1.UserPackageUpload) *Reconciler {
				u.Labels = map[string]string{"edited": "meanwhile"}
				must(t, c.Update(context.Background(), u))
				return r
			},
			wantPreclaim:  true,
			wantReadyText: "reading the file from object storage",
		},
		{
			name: "a spec edit leaves the mark this manager's: the turn says its word about the new generation",
			meanwhile: func(t *testing.T, r *Reconciler, c client.Client, u, _ *upv1.UserPackageUpload) *Reconciler {
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
			meanwhile: func(t *testing.T, r *Reconciler, c client.Client, u, _ *upv1.UserPackageUpload) *Reconciler {
				u.Status.Uploads[0].InitiatingSince = &metav1.Time{Time: u.Status.Uploads[0].InitiatingSince.Add(-time.Hour)}
				must(t, c.Status().Update(context.Background(), u))
				return r
			},
			wantWrite:     true,
			wantReadyText: "reading the file from object storage",
		},
		{
			name: "the manager restarted: the mark is not taken for a call that was not made",
			meanwhile: func(t *testing.T, _ *Reconciler, c client.Client, _, _ *upv1.UserPackageUpload) *Reconciler {
				restarted := &Reconciler{Client: c, APIReader: c}
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
			if s.ledger.Announced() != tt.wantPreclaim {
				t.Errorf("preclaimed = %v, want %v", s.ledger.Announced(), tt.wantPreclaim)
			}
			if ready := findCondition(turn, upv1.ConditionReady); ready.Message != tt.wantReadyText {
				t.Errorf("Ready says %q, want %q", ready.Message, tt.wantReadyText)
			}
		})
	}
}

// fillReadSlots takes every read slot of namespace ns, for other objects;
// the function returned gives them back.
func fillReadSlots(r *Reconciler, ns string) (releaseAll func()) {
	var releases []func()
	for i := range r.readSlots.PerNamespace() {
		_, release, _ := r.readSlots.Take(ns, fmt.Sprintf("reader-%d", i), time.Now())
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
