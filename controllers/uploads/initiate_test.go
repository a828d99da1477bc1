package uploads

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/controllers/uploads/filenames"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// readUpload is an object whose file was read and which has no session
// yet; initiating says whether an earlier initiate's outcome is unknown.
func readUpload(filename string, initiating bool) *upv1.UserPackageUpload {
	u := &upv1.UserPackageUpload{
		ObjectMeta: metav1.ObjectMeta{Namespace: "unit", Name: "vip", Generation: 1},
		Spec: upv1.UserPackageUploadSpec{
			Source: upv1.Source{S3: &upv1.S3Source{Endpoint: "s3.example.com", Bucket: "crowd", Key: "exports/vip.csv"}},
			File: upv1.FileSpec{Filename: filename, PackageType: upv1.PackageTypeExposure, DataType: upv1.DataTypePhone,
				Description: "customers who bought twice in 90 days"},
			CredentialsRef: &upv1.SecretReference{Name: "wechatpay-brand"},
		},
	}
	u.Status.Source = &upv1.SourceStatus{Size: 25, Digest: "sha256:" + fmt.Sprintf("%064x", 1)}
	// The one chunk the source step recorded.
	u.Status.Uploads = []upv1.UploadStatus{{Index: 1, Generation: 1, Digest: u.Status.Source.Digest, End: 25, Size: 25}}
	if initiating {
		up := &u.Status.Uploads[0]
		up.Key, up.Filename = uploadKey(u, up, brandID), filenames.ForUpload(u)
		up.InitiatingSince = &metav1.Time{Time: time.Date(2026, 11, 30, 11, 0, 0, 0, time.UTC)}
	}
	return u
}

func filenameTaken(name string) error {
	return fmt.Errorf("initiate upload: %w", &wechatpay.APIError{StatusCode: 400, Code: wechatpay.CodeInvalidRequest,
		Message: "filename " + name + " was already used by an upload of this brand"})
}

// TestInitiateResolvesEveryOutcome drives the initiate step through each
// answer WeChat Pay can give, with a fake brand API and a fake API server.
func TestInitiateResolvesEveryOutcome(t *testing.T) {
	plan := &wechatpay.InitiateUploadResponse{ReturnMessage: "success", UploadID: "U1", FilePartSize: 10, FilePartCount: 3}
	tests := []struct {
		name       string
		filename   string // spec.file.filename; empty: defaulted to vip.csv
		initiating bool   // an earlier initiate's outcome is unknown
		answer     error
		// wantReason is the stall or retry reason; empty: initiated.
		wantReason string
		wantAfter  time.Duration
		want       initiateOutcome
	}{
		{
			name: "a success records the session and its plan",
			want: initiateOutcome{ID: "U1", PartCount: 3, Filename: "vip.csv"},
		},
		{
			name:       "a lost answer keeps the mark for the next attempt",
			answer:     &wechatpay.TransportError{MayHaveReachedServer: true, Err: errors.New("EOF")},
			wantReason: upv1.ReasonWeChatPayUnavailable,
			want:       initiateOutcome{Mark: true, Filename: "vip.csv"},
		},
		{
			name: "a default filename refused right after a lost answer moves on to the next free one", initiating: true,
			answer:     filenameTaken("vip.csv"),
			wantReason: upv1.ReasonOutcomeUnknown, wantAfter: renameDelay,
			want: initiateOutcome{Unknown: 1, Filename: "vip-2.csv", Abandoned: []string{"vip.csv"}},
		},
		{
			name: "an explicit filename refused right after a lost answer stalls for a human", filename: "vip_2026_11.csv", initiating: true,
			answer:     filenameTaken("vip_2026_11.csv"),
			wantReason: upv1.ReasonFilenameTaken,
			want:       initiateOutcome{Unknown: 1, Filename: "vip_2026_11.csv"},
		},
		{
			name:       "a filename refused without a lost answer stalls",
			answer:     filenameTaken("vip.csv"),
			wantReason: upv1.ReasonFilenameTaken,
			want:       initiateOutcome{Filename: "vip.csv"},
		},
		{
			name:       "a 429 is retried after its Retry-After and clears the mark",
			answer:     &wechatpay.APIError{StatusCode: 429, Code: wechatpay.CodeRateLimitExceeded, RetryAfter: 7 * time.Second},
			wantReason: upv1.ReasonWeChatPayRateLimited, wantAfter: 7 * time.Second,
			want: initiateOutcome{Filename: "vip.csv"},
		},
		{
			name:       "an answer that fails verification stalls and keeps the mark",
			answer:     fmt.Errorf("initiate upload: %w", wechatpay.ErrVerification),
			wantReason: upv1.ReasonResponseUnverified,
			want:       initiateOutcome{Mark: true, Filename: "vip.csv"},
		},
		{
			name:       "a part plan that does not fit the file stalls and keeps the mark",
			answer:     errors.New("initiate upload: answer's part plan of 2 parts of 10 bytes does not fit the file's 25 bytes"),
			wantReason: upv1.ReasonWeChatPayRejected,
			want:       initiateOutcome{Mark: true, Filename: "vip.csv"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeWeChatPay{t: t, initiate: func(wechatpay.InitiateUploadRequest) (*wechatpay.InitiateUploadResponse, error) {
				if tt.answer != nil {
					return nil, tt.answer
				}
				return plan, nil
			}}
			u := readUpload(tt.filename, tt.initiating)
			stored, err := runStep(t, api, u, reconcileInitiate)

			if got := reasonOf(err); got != tt.wantReason {
				t.Errorf("reason %q (%v), want %q", got, err, tt.wantReason)
			}
			var rt *classify.RetryError
			if errors.As(err, &rt) && rt.After != tt.wantAfter {
				t.Errorf("retry after %v, want %v", rt.After, tt.wantAfter)
			}
			if diff := cmp.Diff(tt.want, outcomeOf(stored)); diff != "" {
				t.Errorf("stored initiate outcome (-want +got):\n%s", diff)
			}
			if api.calls != 1 {
				t.Errorf("%d initiate calls, want 1", api.calls)
			}
		})
	}
}

type initiateOutcome struct {
	Mark      bool
	Unknown   int32
	ID        string
	PartCount int64
	Filename  string
	Abandoned []string
}

func outcomeOf(u *upv1.UserPackageUpload) initiateOutcome {
	up := firstUpload(u)
	o := initiateOutcome{Mark: up.InitiatingSince != nil, Unknown: up.UnknownOutcomes, ID: up.ID, PartCount: up.PartCount, Filename: up.Filename}
	for _, h := range u.Status.History {
		o.Abandoned = append(o.Abandoned, h.Filename)
	}
	return o
}
