package statuswriter

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/scheme"
)

// TestAReconcileSendsAnUpdateAfterItsOwnWrite: once a reconcile wrote the
// object, its next status goes as a whole update, which costs the API
// server less than a patch; a write by someone else meanwhile makes it
// conflict, and a merge patch then carries the change over theirs.
func TestAReconcileSendsAnUpdateAfterItsOwnWrite(t *testing.T) {
	tests := []struct {
		name        string
		meanwhile   func(t *testing.T, c client.Client, u *upv1.UserPackageUpload)
		wantUpdates int // the claim's included
		wantPatches int
	}{
		{
			name:        "nobody wrote the object since: an update",
			meanwhile:   func(*testing.T, client.Client, *upv1.UserPackageUpload) {},
			wantUpdates: 2,
		},
		{
			name: "someone wrote it since: the update conflicts and a patch carries the change",
			meanwhile: func(t *testing.T, c client.Client, u *upv1.UserPackageUpload) {
				edited := u.DeepCopy()
				edited.Labels = map[string]string{"edited": "meanwhile"}
				must(t, c.Update(context.Background(), edited))
			},
			wantUpdates: 2,
			wantPatches: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			u := mergeableUpload()
			c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(u).WithStatusSubresource(u).Build()
			must(t, c.Get(ctx, client.ObjectKeyFromObject(u), u))
			var updates, patches int
			counted := interceptor.NewClient(c, interceptor.Funcs{
				SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
					updates++
					return c.SubResource(sub).Update(ctx, obj, opts...)
				},
				SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
					patches++
					return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
				},
			})
			w := New(counted, c, u)

			firstUpload(u).MergingSince = &metav1.Time{Time: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
			must(t, w.Claim(ctx, u))
			tt.meanwhile(t, c, u)
			firstUpload(u).MergingSince, firstUpload(u).ResourceID = nil, "R1"
			must(t, w.Patch(ctx, u))

			if updates != tt.wantUpdates || patches != tt.wantPatches {
				t.Errorf("%d updates and %d patches, want %d and %d", updates, patches, tt.wantUpdates, tt.wantPatches)
			}
			stored := storedUpload(t, c, u)
			if up := firstUpload(stored); up.ResourceID != "R1" || up.MergingSince != nil {
				t.Errorf("stored upload %+v, want R1 and no pending mark", *up)
			}
			if edited := stored.Labels["edited"] == "meanwhile"; edited != (tt.wantPatches > 0) {
				t.Errorf("the edit made meanwhile is stored: %v, want %v", edited, tt.wantPatches > 0)
			}
		})
	}
}

// mergeableUpload is an object whose one upload has every part acknowledged.
func mergeableUpload() *upv1.UserPackageUpload {
	u := &upv1.UserPackageUpload{ObjectMeta: metav1.ObjectMeta{Namespace: "unit", Name: "vip", Generation: 1}}
	u.Status.Uploads = []upv1.UploadStatus{{Index: 1, ID: "U1", PartSize: 10, PartCount: 1, PartsDone: 1, End: 10, Size: 10}}
	return u
}

func firstUpload(u *upv1.UserPackageUpload) *upv1.UploadStatus { return &u.Status.Uploads[0] }

func storedUpload(t *testing.T, c client.Client, u *upv1.UserPackageUpload) *upv1.UserPackageUpload {
	t.Helper()
	stored := &upv1.UserPackageUpload{}
	must(t, c.Get(context.Background(), client.ObjectKeyFromObject(u), stored))
	return stored
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
