package uploads

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/source"
)

// withBase makes the scope read base as spec.file.excludeMembersOf, pinned
// to the digest of pinned.
func withBase(s *scope, base source.Source, pinned []byte) *scope {
	s.obj.Spec.File.ExcludeMembersOf = &upv1.PinnedSource{Source: s.obj.Spec.Source, Digest: digestPrefix + sha256Hex(pinned)}
	s.dialBase = func(context.Context) (source.Source, error) { return base, nil }
	return s
}

type deltaOutcome struct {
	Reason  string
	Uploads []int64 // the lines of each upload
	Delta   *upv1.DeltaStatus
	Content *upv1.ContentStatus
}

// TestTheSourceStepUploadsOnlyWhatTheBaseLacks drives the source step of an
// upload with excludeMembersOf through its branches with fake storage.
func TestTheSourceStepUploadsOnlyWhatTheBaseLacks(t *testing.T) {
	file, base := phoneFile(0, 1_500), phoneFile(1_000, 1_000)
	baseDigest := digestPrefix + sha256Hex(base)
	tests := []struct {
		name    string
		base    *fakeSource
		pinned  []byte
		want    deltaOutcome
		message string // in the stall
	}{
		{
			name: "the members the base lacks are cut into uploads and counted",
			base: &fakeSource{data: base}, pinned: base,
			want: deltaOutcome{
				Uploads: []int64{1_000},
				Delta: &upv1.DeltaStatus{Base: upv1.PinnedVersion{Size: int64(len(base)), Digest: baseDigest, ETag: "v1"},
					Size: 1_000 * 33, Added: 1_000, Unchanged: 500, Left: 500, BaseMembers: 1_000},
				Content: &upv1.ContentStatus{Lines: 1_500},
			},
		},
		{
			name: "a base that reads with another digest stalls and names both",
			base: &fakeSource{data: base}, pinned: file,
			want:    deltaOutcome{Reason: upv1.ReasonBaseUnavailable},
			message: "reads as " + baseDigest + ", not the pinned " + digestPrefix + sha256Hex(file),
		},
		{
			name: "a base that is gone stalls, saying how to pin it",
			base: &fakeSource{openErr: source.ErrNotFound}, pinned: base,
			want:    deltaOutcome{Reason: upv1.ReasonBaseUnavailable},
			message: "enable versioning on the base's bucket and set spec.file.excludeMembersOf.versionID",
		},
		{
			name: "a base the store refuses stalls on its credentials",
			base: &fakeSource{openErr: source.ErrAccessDenied}, pinned: base,
			want:    deltaOutcome{Reason: upv1.ReasonSourceAccessDenied},
			message: "spec.file.excludeMembersOf.*.secretRef",
		},
		{
			name: "a base of openids read as phones stalls",
			base: &fakeSource{data: []byte("o-AbCdEf0123456789\n")}, pinned: []byte("o-AbCdEf0123456789\n"),
			want:    deltaOutcome{Reason: upv1.ReasonBaseUnavailable},
			message: "holds no valid Phone member",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := readUpload("", false)
			u.Status.Source, u.Status.Uploads = nil, nil
			u.Spec.File.MaxLinesPerUpload = ptrTo[int32](1_000)
			s, _ := unitScope(t, &fakeWeChatPay{t: t}, u)
			err := reconcileSource(context.Background(), withBase(withSource(s, &fakeSource{data: file}), tt.base, tt.pinned))
			got := deltaOutcome{Reason: reasonOf(err), Delta: u.Status.Delta}
			if err == nil {
				got.Content = u.Status.Content
				for _, up := range u.Status.Uploads {
					got.Uploads = append(got.Uploads, up.Lines)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			if err != nil && !strings.Contains(err.Error(), tt.message) {
				t.Errorf("the stall says %q, want it to say %q", err, tt.message)
			}
		})
	}
}
