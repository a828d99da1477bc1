package uploads

import (
	"errors"
	"fmt"
	"github.com/crowdpack/crowdpack/controllers/uploads/filenames"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// cond is a condition as these tests compare it.
type cond struct {
	Type, Status, Reason string
}

func conds(u *upv1.UserPackageUpload) []cond {
	var out []cond
	for _, c := range u.Status.Conditions {
		out = append(out, cond{c.Type, string(c.Status), c.Reason})
	}
	return out
}

func withConditions(gen int64, cs ...cond) *upv1.UserPackageUpload {
	u := &upv1.UserPackageUpload{ObjectMeta: metav1.ObjectMeta{Generation: gen}}
	for _, c := range cs {
		u.Status.Conditions = append(u.Status.Conditions, metav1.Condition{
			Type: c.Type, Status: metav1.ConditionStatus(c.Status), Reason: c.Reason, ObservedGeneration: gen,
		})
	}
	return u
}

func TestStatusSetters(t *testing.T) {
	tests := []struct {
		name           string
		reason         string // why this case matters
		object         *upv1.UserPackageUpload
		set            func(u *upv1.UserPackageUpload)
		want           []cond
		wantObservedGn int64
	}{
		{
			name:   "progressing on a bare object says so before any I/O",
			reason: "nobody should see an object without conditions",
			object: withConditions(1),
			set:    func(u *upv1.UserPackageUpload) { markProgressing(u, "reading") },
			want: []cond{
				{upv1.ConditionReconciling, "True", upv1.ReasonProgressing},
				{upv1.ConditionReady, "Unknown", upv1.ReasonProgressing},
			},
		},
		{
			name:   "a stall replaces Reconciling and observes the generation",
			reason: "kstatus reports Failed only with Stalled=True and the generation observed",
			object: withConditions(3, cond{upv1.ConditionReconciling, "True", upv1.ReasonProgressing}),
			set:    func(u *upv1.UserPackageUpload) { markStalled(u, upv1.ReasonSecretNotFound, "no Secret") },
			want: []cond{
				{upv1.ConditionStalled, "True", upv1.ReasonSecretNotFound},
				{upv1.ConditionReady, "False", upv1.ReasonSecretNotFound},
			},
			wantObservedGn: 3,
		},
		{
			name:   "a retry clears an earlier stall and does not observe the generation",
			reason: "kubectl wait must keep waiting while a transient error is retried",
			object: withConditions(2, cond{upv1.ConditionStalled, "True", upv1.ReasonSecretNotFound}),
			set: func(u *upv1.UserPackageUpload) {
				markRetrying(u, upv1.ReasonWeChatPayUnavailable, "503; retrying")
			},
			want: []cond{
				{upv1.ConditionReconciling, "True", upv1.ReasonRetrying},
				{upv1.ConditionReady, "False", upv1.ReasonWeChatPayUnavailable},
			},
		},
		{
			name:   "ready removes Reconciling and Stalled and keeps domain conditions",
			reason: "Ready summarises; the domain conditions tell the story",
			object: withConditions(4,
				cond{upv1.ConditionReconciling, "True", upv1.ReasonProgressing},
				cond{upv1.ConditionInitiated, "True", upv1.ReasonInitiated}),
			set: func(u *upv1.UserPackageUpload) { markReady(u) },
			want: []cond{
				{upv1.ConditionInitiated, "True", upv1.ReasonInitiated},
				{upv1.ConditionReady, "True", upv1.ReasonSucceeded},
			},
			wantObservedGn: 4,
		},
		{
			name:   "suspending unfinished work says it is suspended",
			reason: "Argo CD and users must see why nothing happens",
			object: withConditions(1, cond{upv1.ConditionReconciling, "True", upv1.ReasonProgressing}),
			set:    markSuspended,
			want:   []cond{{upv1.ConditionReady, "False", upv1.ReasonSuspended}, {upv1.ConditionReconciling, "True", upv1.ReasonSuspended}},
		},
		{
			name:   "an object created suspended is never Current to kstatus",
			reason: "with no status.observedGeneration, only Reconciling=True keeps kstatus from calling it Current",
			object: withConditions(1),
			set:    markSuspended,
			want:   []cond{{upv1.ConditionReady, "False", upv1.ReasonSuspended}, {upv1.ConditionReconciling, "True", upv1.ReasonSuspended}},
		},
		{
			name:   "suspending a finished object shows it suspended",
			reason: "setting spec.suspend is a new generation, which is not reconciled",
			object: withConditions(2, cond{upv1.ConditionReady, "True", upv1.ReasonSucceeded}),
			set:    markSuspended,
			want:   []cond{{upv1.ConditionReady, "False", upv1.ReasonSuspended}, {upv1.ConditionReconciling, "True", upv1.ReasonSuspended}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.object
			u.Status.Uploads = []upv1.UploadStatus{{Index: 1, ID: "U1", PartCount: 2, PartSize: 10}}
			tt.set(u)
			if diff := cmp.Diff(tt.want, conds(u), cmpopts.SortSlices(func(a, b cond) bool { return a.Type < b.Type })); diff != "" {
				t.Errorf("%s: conditions (-want +got):\n%s", tt.reason, diff)
			}
			if u.Status.ObservedGeneration != tt.wantObservedGn {
				t.Errorf("%s: observedGeneration %d, want %d", tt.reason, u.Status.ObservedGeneration, tt.wantObservedGn)
			}
			for _, c := range u.Status.Conditions {
				if c.ObservedGeneration != u.Generation {
					t.Errorf("condition %s observed generation %d, want %d", c.Type, c.ObservedGeneration, u.Generation)
				}
			}
		})
	}
}

func TestReadyMessageSaysHowFarTheUploadWent(t *testing.T) {
	now := metav1.NewTime(time.Unix(0, 0))
	tests := []struct {
		name   string
		upload upv1.UploadStatus
		want   string
	}{
		{
			name:   "an initiated upload whose parts someone else sends",
			upload: upv1.UploadStatus{ID: "U1", PartCount: 3, PartSize: 5},
			want:   "upload U1 initiated: 3 parts of 5 bytes; the parts are sent by another system (spec.uploadParts: false)",
		},
		{
			name:   "a merged upload names its resource",
			upload: upv1.UploadStatus{ID: "U1", PartCount: 3, ResourceID: "R9", MergedAt: &now},
			want:   "3 parts merged into resource R9",
		},
		{
			name:   "a merge whose answer was lost says why the resource is unknown",
			upload: upv1.UploadStatus{ID: "U1", PartCount: 3, MergedAt: &now, MergeUnknownOutcomes: 1},
			want:   "3 parts merged; merge's answer was lost and WeChat Pay refused the retry as already done, so the resource id is unknown",
		},
		{
			name: "an expansion of another package does not count for the one in the spec",
			upload: upv1.UploadStatus{ID: "U1", PartCount: 3, MergedAt: &now, ResourceID: "R9", ExpandedAt: &now,
				Expanded: []upv1.ExpandedPackage{{UserPackageID: "01000100010000000009", At: now}}},
			want: "3 parts merged into resource R9",
		},
		{
			name: "an expanded upload says when the data takes effect",
			upload: upv1.UploadStatus{ID: "U1", PartCount: 3, MergedAt: &now, ResourceID: "R9", ExpandedAt: &now,
				Expanded: []upv1.ExpandedPackage{{UserPackageID: "01000100010000000007", At: now}}},
			want: "crowd package 01000100010000000007 expanded with upload U1; the data takes effect after WeChat Pay's sync (usually T+2)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &upv1.UserPackageUpload{}
			u.Spec.UserPackageID = "01000100010000000007"
			u.Status.Uploads = []upv1.UploadStatus{tt.upload}
			if got := readyMessage(u); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestUploadFilename(t *testing.T) {
	tests := []struct {
		name     string
		spec     upv1.UserPackageUploadSpec
		history  []string
		expected string
	}{
		{
			name:     "an explicit filename is used as it is, even if used before",
			spec:     upv1.UserPackageUploadSpec{File: upv1.FileSpec{Filename: "mine.csv"}, Source: upv1.Source{S3: &upv1.S3Source{Key: "a/b.csv"}}},
			history:  []string{"mine.csv"},
			expected: "mine.csv",
		},
		{
			name:     "the default is the base name of the key",
			spec:     upv1.UserPackageUploadSpec{Source: upv1.Source{S3: &upv1.S3Source{Key: "exports/2026/vip.csv"}}},
			expected: "vip.csv",
		},
		{
			name:     "the default of a URL ignores its query",
			spec:     upv1.UserPackageUploadSpec{Source: upv1.Source{HTTP: &upv1.HTTPSource{URL: "https://x.example/d/vip.csv?sig=abc#top"}}},
			expected: "vip.csv",
		},
		{
			name:     "a default name an earlier upload used gets the next free number",
			spec:     upv1.UserPackageUploadSpec{Source: upv1.Source{S3: &upv1.S3Source{Key: "vip.csv"}}},
			history:  []string{"vip-2.csv", "vip.csv"},
			expected: "vip-3.csv",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &upv1.UserPackageUpload{Spec: tt.spec}
			for _, f := range tt.history {
				u.Status.History = append(u.Status.History, upv1.AbandonedUpload{Filename: f})
			}
			if got := filenames.ForUpload(u); got != tt.expected {
				t.Errorf("got %q, want %q", got, tt.expected)
			}
		})
	}
}

func TestErrorsAreSortedIntoStallsAndRetries(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStall  bool
		wantReason string
		wantAfter  time.Duration
	}{
		{name: "a 500 is retried", err: &wechatpay.APIError{StatusCode: 500, Code: "SYSTEM_ERROR"}, wantReason: upv1.ReasonWeChatPayUnavailable},
		{name: "a 429 is retried after its Retry-After", err: &wechatpay.APIError{StatusCode: 429, RetryAfter: 7 * time.Second}, wantReason: upv1.ReasonWeChatPayRateLimited, wantAfter: 7 * time.Second},
		{name: "a 202 is retried", err: &wechatpay.APIError{StatusCode: http.StatusAccepted}, wantReason: upv1.ReasonWeChatPayUnavailable},
		{name: "a lost connection is retried", err: &wechatpay.TransportError{MayHaveReachedServer: true, Err: errors.New("EOF")}, wantReason: upv1.ReasonWeChatPayUnavailable},
		{name: "a 400 PARAM_ERROR stalls", err: &wechatpay.APIError{StatusCode: 400, Code: "PARAM_ERROR"}, wantStall: true, wantReason: upv1.ReasonWeChatPayRejected},
		{name: "a 401 SIGN_ERROR stalls on the credentials", err: &wechatpay.APIError{StatusCode: 401, Code: "SIGN_ERROR"}, wantStall: true, wantReason: upv1.ReasonWeChatPayAuthFailed},
		{name: "a 403 NO_AUTH stalls", err: &wechatpay.APIError{StatusCode: 403, Code: "NO_AUTH"}, wantStall: true, wantReason: upv1.ReasonWeChatPayRejected},
		{name: "an unverifiable answer stalls", err: &wechatpay.VerificationError{Reason: "bad signature"}, wantStall: true, wantReason: upv1.ReasonResponseUnverified},
		{name: "a missing object stalls", err: fmt.Errorf("get: %w", source.ErrNotFound), wantStall: true, wantReason: upv1.ReasonSourceNotFound},
		{name: "a forbidden object stalls", err: fmt.Errorf("get: %w", source.ErrAccessDenied), wantStall: true, wantReason: upv1.ReasonSourceAccessDenied},
		{name: "a changed object stalls", err: fmt.Errorf("range: %w", source.ErrChanged), wantStall: true, wantReason: upv1.ReasonSourceChanged},
		{name: "an unreachable store is retried", err: errors.New("dial tcp: connection refused"), wantReason: upv1.ReasonSourceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got error
			if isSourceCase(tt.err) {
				got = classify.Source(tt.err)
			} else {
				got = classify.WeChatPay(tt.err)
			}
			var s *classify.StallError
			var r *classify.RetryError
			switch {
			case errors.As(got, &s):
				if !tt.wantStall || s.Reason != tt.wantReason {
					t.Errorf("stalled with %s, want stall=%v %s", s.Reason, tt.wantStall, tt.wantReason)
				}
			case errors.As(got, &r):
				if tt.wantStall || r.Reason != tt.wantReason || r.After != tt.wantAfter {
					t.Errorf("retried with %s after %s, want stall=%v %s after %s", r.Reason, r.After, tt.wantStall, tt.wantReason, tt.wantAfter)
				}
			default:
				t.Fatalf("unclassified: %v", got)
			}
		})
	}
}

// isSourceCase tells the table's storage errors from its WeChat Pay ones.
func isSourceCase(err error) bool {
	var api *wechatpay.APIError
	var tr *wechatpay.TransportError
	var ve *wechatpay.VerificationError
	return !errors.As(err, &api) && !errors.As(err, &tr) && !errors.As(err, &ve) && !strings.Contains(err.Error(), "wechat")
}

func TestStableMessageLeavesOutWhatChangesFromRetryToRetry(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp",
		Source: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 43121},
		Addr:   &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9000},
		Err:    errors.New("connection reset by peer")}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{
			name: "WeChat Pay's request id is left out",
			err:  fmt.Errorf("initiate upload: %w", &wechatpay.APIError{StatusCode: 503, Code: "SERVICE_UNAVAILABLE", RequestID: "abc123"}),
			want: "initiate upload: wechat pay answered HTTP 503 SERVICE_UNAVAILABLE",
		},
		{
			name: "the number of the failing part is left out",
			err:  fmt.Errorf("upload part 17: %w", &wechatpay.APIError{StatusCode: 500, Code: "SYSTEM_ERROR"}),
			want: "upload part: wechat pay answered HTTP 500 SYSTEM_ERROR",
		},
		{
			name: "the local port of a broken connection is left out",
			err:  fmt.Errorf("get s3://b/k: %w", reset),
			want: "get s3://b/k: read tcp 127.0.0.1:9000: connection reset by peer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify.StableMessage(tt.err); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
