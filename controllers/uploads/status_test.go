package uploads

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/uploads/filenames"
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
