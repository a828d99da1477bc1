package uploads

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/uploads/parts"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// fakeSource serves data as one version of an object; openErr, when set,
// is what Open answers, and opens counts the reads.
type fakeSource struct {
	data    []byte
	openErr error
	opens   int
}

func (f *fakeSource) version() source.Version {
	return source.Version{Size: int64(len(f.data)), ETag: "v1"}
}

func (f *fakeSource) Open(context.Context) (io.ReadCloser, source.Version, error) {
	f.opens++
	if f.openErr != nil {
		return nil, source.Version{}, f.openErr
	}
	return io.NopCloser(bytes.NewReader(f.data)), f.version(), nil
}

func (f *fakeSource) OpenRange(_ context.Context, v source.Version, offset, length int64) (io.ReadCloser, error) {
	f.opens++
	if v != f.version() {
		return nil, source.ErrChanged
	}
	return io.NopCloser(bytes.NewReader(f.data[offset : offset+length])), nil
}

// withSource makes the scope read src instead of opening the spec's storage.
func withSource(s *scope, src source.Source) *scope {
	s.dialSource = func(context.Context) (source.Source, error) { return src, nil }
	return s
}

const twoPhones = "0123456789abcdef0123456789abcdef\nfedcba9876543210fedcba9876543210\n"

type sourceOutcome struct {
	Reads    int
	Verified metav1.ConditionStatus
	Digest   string
	Lines    int64
	Invalid  int64
}

// TestSourceStepReadsOnlyWhatItMust drives the source step through its
// branches with a fake storage and a fake API server.
func TestSourceStepReadsOnlyWhatItMust(t *testing.T) {
	sum := sha256.Sum256([]byte(twoPhones))
	digest := digestPrefix + hex.EncodeToString(sum[:])
	tests := []struct {
		name       string
		data       string
		openErr    error
		strict     bool
		readBefore bool // the file was read for this very spec
		wantReason string
		want       sourceOutcome
	}{
		{
			name: "a new file is read once and verified",
			data: twoPhones,
			want: sourceOutcome{Reads: 1, Verified: metav1.ConditionTrue, Digest: digest, Lines: 2},
		},
		{
			name: "a file read for this spec is not read again", data: twoPhones, readBefore: true,
			want: sourceOutcome{Digest: "sha256:recorded", Lines: 2},
		},
		{
			name: "a missing object stalls and says which", openErr: source.ErrNotFound,
			wantReason: upv1.ReasonSourceNotFound,
			want:       sourceOutcome{Reads: 1, Verified: metav1.ConditionFalse},
		},
		{
			name: "a storage that does not answer is retried", openErr: errors.New("dial tcp: connection refused"),
			wantReason: upv1.ReasonSourceUnavailable,
			want:       sourceOutcome{Reads: 1, Verified: metav1.ConditionFalse},
		},
		{
			name: "a Strict upload with an invalid line stalls before any call", data: twoPhones + "13800138000\n", strict: true,
			wantReason: upv1.ReasonInvalidLines,
			want:       sourceOutcome{Reads: 1, Verified: metav1.ConditionTrue, Lines: 3, Invalid: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := readUpload("", false)
			u.Status.Source = nil
			if tt.strict {
				u.Spec.Validation = upv1.ValidationStrict
			}
			if tt.readBefore {
				u.Status.Source = &upv1.SourceStatus{Size: int64(len(tt.data)), Digest: "sha256:recorded", Generation: 1, Fingerprint: sourceFingerprint(u)}
				u.Status.Content = &upv1.ContentStatus{Lines: 2}
			}
			src := &fakeSource{data: []byte(tt.data), openErr: tt.openErr}
			s, _ := unitScope(t, &fakeWeChatPay{t: t}, u)
			err := reconcileSource(context.Background(), withSource(s, src))
			if got := reasonOf(err); got != tt.wantReason {
				t.Errorf("reason %q (%v), want %q", got, err, tt.wantReason)
			}
			got := sourceOutcome{Reads: src.opens}
			if c := findCondition(u, upv1.ConditionSourceVerified); c != nil {
				got.Verified = c.Status
			}
			if u.Status.Source != nil && u.Status.Content != nil {
				got.Digest, got.Lines, got.Invalid = u.Status.Source.Digest, u.Status.Content.Lines, u.Status.Content.InvalidLines
			}
			if tt.want.Digest == "" && got.Verified == metav1.ConditionTrue {
				got.Digest = "" // the digest of an invalid file is not the point of the case
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
		})
	}
}

type partsOutcome struct {
	Calls     int
	PartsDone int64
	Uploaded  metav1.ConditionStatus
}

// TestPartsStepSendsOnlyWhatIsMissing drives the parts step through its
// branches with a fake storage, a fake brand API and a fake API server.
func TestPartsStepSendsOnlyWhatIsMissing(t *testing.T) {
	data := []byte(twoPhones + twoPhones) // 132 bytes: 3 parts of 50
	rateLimited := &wechatpay.APIError{StatusCode: 429, Code: "RATELIMIT_EXCEEDED", RetryAfter: time.Minute}
	tests := []struct {
		name       string
		partSize   int64
		partCount  int64
		acked      string // status.upload.partsAcked
		answer     error
		wantReason string
		want       partsOutcome
	}{
		{
			name: "missing parts are sent once each and counted", partSize: 50, partCount: 3,
			want: partsOutcome{Calls: 3, PartsDone: 3, Uploaded: metav1.ConditionTrue},
		},
		{
			name: "acknowledged parts are not sent again", partSize: 50, partCount: 3, acked: newPartSetOf(3, 1, 3).Encode(),
			want: partsOutcome{Calls: 1, PartsDone: 3, Uploaded: metav1.ConditionTrue},
		},
		{
			name: "a plan that cannot describe the file stalls before any call", partSize: 50, partCount: 2,
			wantReason: upv1.ReasonInvalidPlan,
			want:       partsOutcome{Uploaded: metav1.ConditionFalse},
		},
		{
			name: "a set of acknowledged parts that does not fit the plan stalls", partSize: 50, partCount: 3, acked: "not base64!",
			wantReason: upv1.ReasonInvalidSpec,
			want:       partsOutcome{Uploaded: metav1.ConditionFalse},
		},
		{
			name: "a 429 with a long Retry-After ends the reconcile, to come back after it", partSize: 50, partCount: 3, answer: rateLimited,
			wantReason: upv1.ReasonWeChatPayRateLimited,
			want:       partsOutcome{Calls: 1, Uploaded: metav1.ConditionFalse},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{data: data}
			u := readUpload("", false)
			v := src.version()
			u.Status.Source = &upv1.SourceStatus{Size: v.Size, ETag: v.ETag, Digest: "sha256:ab", Generation: 1}
			u.Status.Uploads = []upv1.UploadStatus{{Index: 1, ID: "U1", Filename: "vip.csv", PartSize: tt.partSize, PartCount: tt.partCount, PartsAcked: tt.acked,
				End: v.Size, Size: v.Size}}
			api := &fakeWeChatPay{t: t, part: func(p wechatpay.Part) (*wechatpay.PartResult, error) {
				if tt.answer != nil {
					return nil, tt.answer
				}
				return checkPart(p, data, tt.partSize)
			}}
			oneAtATime := func(s *scope) { s.parts.concurrency = 1 } // the calls a failure stops are then certain
			stored, err := runStep(t, api, u, reconcileParts, func(s *scope) { withSource(s, src) }, oneAtATime)
			if got := reasonOf(err); got != tt.wantReason {
				t.Errorf("reason %q (%v), want %q", got, err, tt.wantReason)
			}
			got := partsOutcome{Calls: api.calls, PartsDone: firstUpload(stored).PartsDone}
			if c := findCondition(u, upv1.ConditionPartsUploaded); c != nil {
				got.Uploaded = c.Status
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
		})
	}
}

// checkPart fails a part whose bytes or digest are not the file's.
func checkPart(p wechatpay.Part, data []byte, partSize int64) (*wechatpay.PartResult, error) {
	body, err := p.Open()
	if err != nil {
		return nil, err
	}
	got, _ := io.ReadAll(body)
	offset := int64(p.Number-1) * partSize
	want := data[offset:min(offset+partSize, int64(len(data)))]
	sum := sha256.Sum256(want)
	if !bytes.Equal(got, want) || p.Digest != hex.EncodeToString(sum[:]) {
		return nil, &wechatpay.APIError{StatusCode: 400, Code: "INVALID_REQUEST", Message: "part differs"}
	}
	return &wechatpay.PartResult{}, nil
}

func newPartSetOf(total int64, acked ...int64) *parts.Set {
	s := parts.NewSet(total)
	for _, p := range acked {
		s.Add(p)
	}
	return s
}

// TestAHashedChunkIsCheckedAgainstItsDigestBeforeItsLastPart streams a
// chunk of raw numbers through the parts step: its last part goes only
// when the re-read chunk hashes to the digest recorded.
func TestAHashedChunkIsCheckedAgainstItsDigestBeforeItsLastPart(t *testing.T) {
	raw := []byte("13800138000\n+86 138-0013-8001\n8613800138002\n0086 138 0013 8003\n")
	hashed := bytes.NewBuffer(md5Lines("13800138000", "13800138001", "13800138002", "13800138003")) // 132 bytes: 3 parts of 50
	tests := []struct {
		name       string
		digest     string
		wantReason string
		want       partsOutcome
	}{
		{"a chunk that hashes to its digest is sent whole", sha256Hex(hashed.Bytes()), "",
			partsOutcome{Calls: 3, PartsDone: 3, Uploaded: metav1.ConditionTrue}},
		{"a chunk that no longer does stalls before its last part", sha256Hex([]byte("other")), upv1.ReasonSourceChanged,
			partsOutcome{Calls: 2, PartsDone: 2, Uploaded: metav1.ConditionFalse}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{data: raw}
			u := readUpload("", false)
			u.Spec.File.Hashing = upv1.HashingMD5
			v := src.version()
			u.Status.Source = &upv1.SourceStatus{Size: v.Size, ETag: v.ETag, Digest: "sha256:ab", Generation: 1}
			u.Status.Uploads = []upv1.UploadStatus{{Index: 1, ID: "U1", Filename: "vip.csv", PartSize: 50, PartCount: 3,
				FirstLine: 1, LastLine: 4, End: v.Size, Lines: 4, Size: int64(hashed.Len()), Digest: digestPrefix + tt.digest}}
			api := &fakeWeChatPay{t: t, part: func(p wechatpay.Part) (*wechatpay.PartResult, error) { return checkPart(p, hashed.Bytes(), 50) }}
			oneAtATime := func(s *scope) { s.parts.concurrency = 1 }
			stored, err := runStep(t, api, u, reconcileParts, func(s *scope) { withSource(s, src) }, oneAtATime)
			if got := reasonOf(err); got != tt.wantReason {
				t.Errorf("reason %q (%v), want %q", got, err, tt.wantReason)
			}
			got := partsOutcome{Calls: api.calls, PartsDone: firstUpload(stored).PartsDone, Uploaded: findCondition(u, upv1.ConditionPartsUploaded).Status}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
		})
	}
}

// TestInitiatesAnswerIsInStatusBeforeAnyPartIsSent: a part sent for an
// upload_id that status does not hold would, after a crash, leave a session
// the operator cannot find and a filename WeChat Pay will not take again.
func TestInitiatesAnswerIsInStatusBeforeAnyPartIsSent(t *testing.T) {
	data := []byte(phoneFile(0, 2)) // two lines, two parts of one line
	src := &fakeSource{data: data}
	u := readUpload("", false)
	v := src.version()
	u.Status.Source = &upv1.SourceStatus{Size: v.Size, ETag: v.ETag, Digest: u.Status.Source.Digest, Generation: 1}
	u.Status.Uploads[0].End, u.Status.Uploads[0].Size = v.Size, v.Size
	partSize := v.Size / 2

	var stored func() *upv1.UserPackageUpload
	var sentBeforeStored []int
	api := &fakeWeChatPay{t: t,
		initiate: func(wechatpay.InitiateUploadRequest) (*wechatpay.InitiateUploadResponse, error) {
			return &wechatpay.InitiateUploadResponse{UploadID: "U1", FilePartSize: partSize, FilePartCount: 2}, nil
		},
		part: func(p wechatpay.Part) (*wechatpay.PartResult, error) {
			if up := firstUpload(stored()); up.ID != "U1" || up.PartCount != 2 {
				sentBeforeStored = append(sentBeforeStored, p.Number)
			}
			return checkPart(p, data, partSize)
		},
	}
	initiateThenParts := func(ctx context.Context, s *scope) error {
		if err := reconcileInitiate(ctx, s); err != nil {
			return err
		}
		return reconcileParts(ctx, s)
	}
	watchStore := func(s *scope) {
		stored = func() *upv1.UserPackageUpload {
			x := &upv1.UserPackageUpload{}
			must(t, s.status.Reader().Get(context.Background(), client.ObjectKeyFromObject(u), x))
			return x
		}
	}
	final, err := runStep(t, api, u, initiateThenParts, func(s *scope) { withSource(s, src) }, watchStore)
	must(t, err)
	if len(sentBeforeStored) > 0 {
		t.Errorf("parts %v were sent before initiate's answer was in status", sentBeforeStored)
	}
	if up := firstUpload(final); up.ID != "U1" || up.PartsDone != 2 || up.InitiatingSince != nil {
		t.Errorf("stored upload %+v, want U1 with both parts and no pending mark", *up)
	}
}
