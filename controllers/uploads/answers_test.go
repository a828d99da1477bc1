package uploads

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/statuswriter"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// TestAnAnswerWhoseWriteFailedIsNotAskedForAgain: when the API server goes
// down right after a call was answered, longer than the write is retried,
// the next reconcile of the same process takes the answer from memory: no
// second initiate (whose filename WeChat Pay would refuse), no second merge
// (whose resource id a refusal as "already merged" cannot tell).
func TestAnAnswerWhoseWriteFailedIsNotAskedForAgain(t *testing.T) {
	defer func(b wait.Backoff) { statuswriter.Backoff = b }(statuswriter.Backoff)
	statuswriter.Backoff = wait.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 2}

	tests := []struct {
		name   string
		object *upv1.UserPackageUpload
		step   step
		// want tells what is wrong with the stored upload, if anything.
		want func(up *upv1.UploadStatus) bool
	}{
		{
			name:   "initiate's upload_id and plan",
			object: readUpload("vip_2026_11.csv", false),
			step:   reconcileInitiate,
			want: func(up *upv1.UploadStatus) bool {
				return up.ID == "U1" && up.PartCount == 3 && up.InitiatingSince == nil && up.UnknownOutcomes == 0
			},
		},
		{
			name:   "merge's resource id",
			object: mergeableUpload(false, 0),
			step:   reconcileMerge,
			want: func(up *upv1.UploadStatus) bool {
				return up.MergedAt != nil && up.ResourceID == "R1" && up.MergingSince == nil && up.MergeUnknownOutcomes == 0
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			var down atomic.Bool
			api := &fakeWeChatPay{t: t,
				initiate: func(wechatpay.InitiateUploadRequest) (*wechatpay.InitiateUploadResponse, error) {
					down.Store(true)
					return &wechatpay.InitiateUploadResponse{UploadID: "U1", FilePartSize: 10, FilePartCount: 3}, nil
				},
				merge: func(string) (*wechatpay.MergeResult, error) {
					down.Store(true)
					return &wechatpay.MergeResult{ResourceID: "R1"}, nil
				},
			}
			r, c := unitReconciler(t, api, tt.object)
			r.Client = interceptor.NewClient(c.(client.WithWatch), interceptor.Funcs{
				SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
					if down.Load() {
						return apierrors.NewServiceUnavailable("etcd is down")
					}
					return c.SubResource(sub).Update(ctx, obj, opts...)
				},
				SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
					if down.Load() {
						return apierrors.NewServiceUnavailable("etcd is down")
					}
					return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
				},
			})

			first := r.newScope(tt.object)
			stepErr := tt.step(ctx, first)
			if err := first.status.Finish(ctx, tt.object); stepErr == nil && err == nil {
				t.Fatal("the answer was written while the API server was down")
			}
			down.Store(false)
			again := storedUpload(t, c, tt.object)
			next := r.newScope(again)
			must(t, tt.step(ctx, next))
			must(t, next.status.Finish(ctx, again))

			if api.calls != 1 {
				t.Errorf("%d calls to WeChat Pay, want 1", api.calls)
			}
			if up := firstUpload(storedUpload(t, c, again)); !tt.want(up) {
				t.Errorf("stored upload %+v: want the first call's answer and no pending mark", *up)
			}
		})
	}
}
