package uploads

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/controllers/statuswriter"
	"github.com/crowdpack/crowdpack/internal/scheme"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// fakeWeChatPay is a wechatpay.API with one func per call; a nil func fails
// the test if called.
type fakeWeChatPay struct {
	t        *testing.T
	initiate func(wechatpay.InitiateUploadRequest) (*wechatpay.InitiateUploadResponse, error)
	merge    func(uploadID string) (*wechatpay.MergeResult, error)
	expand   func(userPackageID, uploadID string) (*wechatpay.ExpandResult, error)
	part     func(wechatpay.Part) (*wechatpay.PartResult, error)
	calls    int
}

func (f *fakeWeChatPay) InitiateUpload(_ context.Context, r wechatpay.InitiateUploadRequest) (*wechatpay.InitiateUploadResponse, error) {
	f.calls++
	if f.initiate == nil {
		f.t.Fatal("unexpected initiate")
	}
	return f.initiate(r)
}

func (f *fakeWeChatPay) UploadPart(_ context.Context, p wechatpay.Part) (*wechatpay.PartResult, error) {
	f.calls++
	if f.part == nil {
		f.t.Fatal("unexpected part upload")
	}
	return f.part(p)
}

func (f *fakeWeChatPay) MergeParts(_ context.Context, uploadID string) (*wechatpay.MergeResult, error) {
	f.calls++
	if f.merge == nil {
		f.t.Fatal("unexpected merge")
	}
	return f.merge(uploadID)
}

func (f *fakeWeChatPay) ExpandPackage(_ context.Context, userPackageID, uploadID string) (*wechatpay.ExpandResult, error) {
	f.calls++
	if f.expand == nil {
		f.t.Fatal("unexpected expand")
	}
	return f.expand(userPackageID, uploadID)
}

// unitScope is the reconcile of u by a reconciler on controller-runtime's
// fake client, for the step branches where the API server adds nothing.
func unitScope(t *testing.T, api wechatpay.API, u *upv1.UserPackageUpload) (*scope, client.Client) {
	t.Helper()
	r, c := unitReconciler(t, api, u)
	return r.newScope(u), c
}

// unitReconciler is a reconciler on controller-runtime's fake client,
// which holds u (read back into u) and its brand Secret.
func unitReconciler(t *testing.T, api wechatpay.API, u *upv1.UserPackageUpload) (*Reconciler, client.Client) {
	t.Helper()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: u.Namespace, Name: u.Spec.CredentialsRef.Name}, Data: identity.SecretData()}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(u, secret).WithStatusSubresource(u).Build()
	must(t, c.Get(context.Background(), client.ObjectKeyFromObject(u), u))
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	r := &Reconciler{
		Client: c, APIReader: c,
		NewWeChatPay: func(*wechatpay.Credentials) (wechatpay.API, error) { return api, nil },
		Now:          func() time.Time { return now },
	}
	r.setDefaults()
	return r, c
}

func mergeableUpload(merging bool, unknown int32) *upv1.UserPackageUpload {
	u := &upv1.UserPackageUpload{
		ObjectMeta: metav1.ObjectMeta{Namespace: "unit", Name: "vip", Generation: 1},
		Spec: upv1.UserPackageUploadSpec{
			CredentialsRef: &upv1.SecretReference{Name: "wechatpay-brand"},
			UserPackageID:  packageA,
		},
	}
	u.Status.Source = &upv1.SourceStatus{Size: 10, Digest: "sha256:ab"}
	u.Status.Uploads = []upv1.UploadStatus{{Index: 1, ID: "U1", PartSize: 10, PartCount: 1, PartsDone: 1, MergeUnknownOutcomes: unknown, End: 10, Size: 10}}
	if merging {
		firstUpload(u).MergingSince = &metav1.Time{Time: time.Date(2026, 11, 30, 11, 0, 0, 0, time.UTC)}
	}
	return u
}

func refusal(code, message string) error {
	return fmt.Errorf("merge: %w", &wechatpay.APIError{StatusCode: 400, Code: code, Message: message})
}

// TestMergeResolvesEveryOutcome drives the merge step through each answer
// WeChat Pay can give, with a fake brand API and a fake API server.
func TestMergeResolvesEveryOutcome(t *testing.T) {
	tests := []struct {
		name    string
		merging bool // an earlier merge's outcome is unknown
		answer  error
		// wantReason is the stall or retry reason; empty: merged.
		wantReason string
		// wantMark tells that the pending mark survives, for the next attempt.
		wantMark        bool
		wantUnknown     int32
		wantMerged      bool
		wantResource    string
		wantUnknownNote bool
	}{
		{name: "a success records the resource and clears the mark", wantMerged: true, wantResource: "R1"},
		{
			name: "a refusal as already merged after a lost answer counts as merged", merging: true,
			answer:     refusal(wechatpay.CodeInvalidRequest, "upload U1 is already merged"),
			wantMerged: true, wantUnknown: 1,
		},
		{
			name:       "a refusal without a prior unknown outcome stalls",
			answer:     refusal(wechatpay.CodeInvalidRequest, "upload U1 is already merged"),
			wantReason: upv1.ReasonWeChatPayRejected,
		},
		{
			name: "a refusal for another rule after a lost answer stalls", merging: true,
			answer:     refusal(wechatpay.CodeParamError, "upload_id malformed"),
			wantReason: upv1.ReasonWeChatPayRejected, wantUnknown: 1,
		},
		{
			name:       "a lost answer keeps the mark for the next attempt",
			answer:     &wechatpay.TransportError{MayHaveReachedServer: true, Err: errors.New("EOF")},
			wantReason: upv1.ReasonWeChatPayUnavailable, wantMark: true,
		},
		{
			name:       "a call that never left clears the mark",
			answer:     &wechatpay.TransportError{Err: errors.New("connection refused")},
			wantReason: upv1.ReasonWeChatPayUnavailable,
		},
		{
			name:       "a 429 is retried after its Retry-After and clears the mark",
			answer:     &wechatpay.APIError{StatusCode: 429, Code: wechatpay.CodeRateLimitExceeded, RetryAfter: 7 * time.Second},
			wantReason: upv1.ReasonWeChatPayRateLimited,
		},
		{
			name:       "an answer that fails verification stalls and keeps the mark",
			answer:     fmt.Errorf("merge: %w", wechatpay.ErrVerification),
			wantReason: upv1.ReasonResponseUnverified, wantMark: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeWeChatPay{t: t, merge: func(string) (*wechatpay.MergeResult, error) {
				if tt.answer != nil {
					return nil, tt.answer
				}
				return &wechatpay.MergeResult{ResourceID: "R1"}, nil
			}}
			u := mergeableUpload(tt.merging, 0)
			stored, err := runStep(t, api, u, reconcileMerge)

			if got := reasonOf(err); got != tt.wantReason {
				t.Errorf("reason %q (%v), want %q", got, err, tt.wantReason)
			}
			up := firstUpload(stored)
			got := mergeOutcome{Mark: up.MergingSince != nil, Unknown: up.MergeUnknownOutcomes, Merged: up.MergedAt != nil, Resource: up.ResourceID}
			want := mergeOutcome{Mark: tt.wantMark, Unknown: tt.wantUnknown, Merged: tt.wantMerged, Resource: tt.wantResource}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("stored merge outcome (-want +got):\n%s", diff)
			}
			if api.calls != 1 {
				t.Errorf("%d merge calls, want 1", api.calls)
			}
		})
	}
}

// runStep runs one step on u as Reconcile would (its last write
// included), and returns the step's error and the object as stored.
func runStep(t *testing.T, api wechatpay.API, u *upv1.UserPackageUpload,
	step step, prepare ...func(*scope)) (*upv1.UserPackageUpload, error) {
	t.Helper()
	s, c := unitScope(t, api, u)
	for _, p := range prepare {
		p(s)
	}
	err := step(context.Background(), s)
	must(t, s.status.Finish(context.Background(), u))
	stored := &upv1.UserPackageUpload{}
	must(t, c.Get(context.Background(), client.ObjectKeyFromObject(u), stored))
	return stored, err
}

type mergeOutcome struct {
	Mark     bool
	Unknown  int32
	Merged   bool
	Resource string
}

// reasonOf is the reason of a stall or retry, empty for nil.
func reasonOf(err error) string {
	var s *classify.StallError
	var r *classify.RetryError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &s):
		return s.Reason
	case errors.As(err, &r):
		return r.Reason
	default:
		return "unclassified: " + err.Error()
	}
}

// TestAnExpandedPackageIsNeverExpandedAgain: a package the upload already
// expanded is not called again, whatever spec.userPackageID went through.
func TestAnExpandedPackageIsNeverExpandedAgain(t *testing.T) {
	api := &fakeWeChatPay{t: t, expand: func(pkg, id string) (*wechatpay.ExpandResult, error) {
		return &wechatpay.ExpandResult{}, nil
	}}
	u := mergeableUpload(false, 0)
	at := metav1.Now()
	firstUpload(u).MergedAt = &at
	firstUpload(u).Expanded = []upv1.ExpandedPackage{{UserPackageID: packageA, At: at}}
	s, _ := unitScope(t, api, u)

	must(t, reconcileExpand(context.Background(), s))
	if api.calls != 0 {
		t.Fatalf("%d expand calls for a package already expanded", api.calls)
	}
	u.Spec.UserPackageID = packageB
	must(t, reconcileExpand(context.Background(), s))
	if api.calls != 1 || !isExpanded(firstUpload(u), packageB) || !isExpanded(firstUpload(u), packageA) {
		t.Errorf("%d calls; expanded %+v, want both packages after one call", api.calls, firstUpload(u).Expanded)
	}
}

// TestOutcomesInHandSurviveAClaimThatConflicts: merge's outcome rides on
// the next write, expand's claim; when that claim conflicts (someone edited
// the object), the outcome is still written and expand's intent is not.
func TestOutcomesInHandSurviveAClaimThatConflicts(t *testing.T) {
	api := &fakeWeChatPay{t: t, merge: func(string) (*wechatpay.MergeResult, error) {
		return &wechatpay.MergeResult{ResourceID: "R1"}, nil
	}}
	u := mergeableUpload(false, 0)
	s, c := unitScope(t, api, u)
	ctx := context.Background()

	must(t, reconcileMerge(ctx, s))
	edited := &upv1.UserPackageUpload{}
	must(t, c.Get(ctx, client.ObjectKeyFromObject(u), edited))
	edited.Labels = map[string]string{"edited": "meanwhile"}
	must(t, c.Update(ctx, edited))

	var claim *statuswriter.ClaimError
	if err := reconcileExpand(ctx, s); !errors.As(err, &claim) {
		t.Fatalf("expand over a stale object returned %v, want a failed claim", err)
	}
	must(t, s.saveOutcomes(ctx))

	stored := &upv1.UserPackageUpload{}
	must(t, c.Get(ctx, client.ObjectKeyFromObject(u), stored))
	if up := firstUpload(stored); up.MergedAt == nil || up.ResourceID != "R1" || up.MergingSince != nil || up.Expanding != nil {
		t.Errorf("stored upload %+v: want merged into R1, no pending mark", *up)
	}
}
