package syncs

import (
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
)

func syncForTest(mode upv1.SyncMode, last *upv1.SyncedRevision) *upv1.UserPackageSync {
	return &upv1.UserPackageSync{
		ObjectMeta: metav1.ObjectMeta{Name: "vip", Namespace: "marketing", UID: "uid-1", Generation: 1},
		Spec: upv1.UserPackageSyncSpec{
			Source: upv1.SyncSource{S3: &upv1.SyncS3Source{
				S3Source: upv1.S3Source{Endpoint: "minio:9000", Bucket: "crm", SecretRef: &upv1.SecretReference{Name: "storage"}},
				Prefix:   "exports/vip/",
			}},
			File:           upv1.FileSpec{PackageType: upv1.PackageTypeExposure, DataType: upv1.DataTypePhone, Description: "VIP customers, daily"},
			CredentialsRef: &upv1.SecretReference{Name: "brand"}, UserPackageID: "01000100010000000007", Mode: mode,
		},
		Status: upv1.UserPackageSyncStatus{LastSyncedRevision: last},
	}
}

var base = &upv1.SyncedRevision{
	Revision: upv1.Revision{ID: "exports/vip/2026-12-01.csv@e1", Key: "exports/vip/2026-12-01.csv", VersionID: "v1"},
	Digest:   "sha256:" + strings.Repeat("ab", 32), Members: 100, Child: "vip-1",
}

func TestChildFor(t *testing.T) {
	rev := upv1.Revision{ID: "exports/vip/2026-12-02.csv@e2", Key: "exports/vip/2026-12-02.csv"}
	tests := []struct {
		name        string
		sync        *upv1.UserPackageSync
		wantExclude *upv1.PinnedSource
	}{
		{name: "the first revision has no base and is uploaded whole", sync: syncForTest(upv1.SyncModeDelta, nil)},
		{
			name: "a later revision in Delta mode excludes the base, pinned by its digest and version",
			sync: syncForTest(upv1.SyncModeDelta, base),
			wantExclude: &upv1.PinnedSource{Source: upv1.Source{S3: &upv1.S3Source{Endpoint: "minio:9000", Bucket: "crm", Key: base.Key,
				SecretRef: &upv1.SecretReference{Name: "storage"}}}, Digest: base.Digest, VersionID: "v1"},
		},
		{name: "Full mode never excludes", sync: syncForTest(upv1.SyncModeFull, base)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			child := childFor(tt.sync, rev)
			if got := child.Spec.Source.S3; got.Key != rev.Key || got.Bucket != "crm" || got.SecretRef.Name != "storage" {
				t.Errorf("the child reads %+v, want the revision's key in the sync's bucket", got)
			}
			if got := child.Spec.File.ExcludeMembersOf; (got == nil) != (tt.wantExclude == nil) ||
				(got != nil && (got.Digest != tt.wantExclude.Digest || got.VersionID != tt.wantExclude.VersionID || got.S3.Key != tt.wantExclude.S3.Key)) {
				t.Errorf("excludeMembersOf = %+v, want %+v", got, tt.wantExclude)
			}
			if !strings.HasPrefix(child.Name, "vip-") || len(child.Name) != len("vip-")+8 || child.Labels[LabelSync] != "vip" {
				t.Errorf("child name %q, labels %v", child.Name, child.Labels)
			}
			if f := child.Spec.File.Filename; f != child.Name+".csv" {
				t.Errorf("filename %q, want the sync's name as stem with the revision suffix", f)
			}
			if child.Spec.UserPackageID != "01000100010000000007" || child.Spec.CredentialsRef.Name != "brand" {
				t.Errorf("the child does not carry the sync's package and brand: %+v", child.Spec)
			}
		})
	}
}

func TestARevisionsChildIsTheSameUntilTheSpecChanges(t *testing.T) {
	sync, rev := syncForTest(upv1.SyncModeDelta, nil), upv1.Revision{ID: "r1", Key: "k"}
	first := childFor(sync, rev).Name
	if again := childFor(sync, rev).Name; again != first {
		t.Errorf("the same revision gave children %s and %s: a restart would create a second", first, again)
	}
	sync.Generation++
	if edited := childFor(sync, rev).Name; edited == first {
		t.Errorf("a changed spec gave the same child %s: a failed revision could not be tried again", first)
	}
}

func TestWhatAChecksSeesOfTheNewestRun(t *testing.T) {
	rev := upv1.Revision{ID: "r2", Key: "exports/vip/2026-12-02.csv"}
	tests := []struct {
		name      string
		run       upv1.SyncRun
		edited    bool
		wantSeen  bool
		wantStall string
	}{
		{name: "a synced revision is seen", run: upv1.SyncRun{Revision: "r2", Result: upv1.SyncResultSynced}, wantSeen: true},
		{name: "a failed revision is seen, and stalls with its child's reason", run: upv1.SyncRun{Revision: "r2", Result: upv1.SyncResultFailed, Reason: "BaseUnavailable"},
			wantSeen: true, wantStall: "BaseUnavailable"},
		{name: "a failed revision is tried again after the spec changed", run: upv1.SyncRun{Revision: "r2", Result: upv1.SyncResultFailed, Reason: "BaseUnavailable"}, edited: true, wantStall: "BaseUnavailable"},
		{name: "a revision refused without a child is seen, and stalls with its reason", run: upv1.SyncRun{Revision: "r2", Result: upv1.SyncResultFailed, Reason: "InvalidLines"},
			wantSeen: true, wantStall: "InvalidLines"},
		{name: "a held-back revision is judged again", run: upv1.SyncRun{Revision: "r2", Result: upv1.SyncResultHeldBack}, wantStall: ReasonSuspiciousShrink},
		{name: "another revision is new", run: upv1.SyncRun{Revision: "r1", Result: upv1.SyncResultSynced}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sync := syncForTest(upv1.SyncModeDelta, nil)
			sync.Status.History = []upv1.SyncRun{tt.run}
			sync.Status.ObservedGeneration = sync.Generation
			if tt.edited {
				sync.Generation++
			}
			if got := seen(sync, rev); got != tt.wantSeen {
				t.Errorf("seen = %v, want %v", got, tt.wantSeen)
			}
			err := stoppedRun(sync)
			if got := reasonOf(err); got != tt.wantStall {
				t.Errorf("stall reason %q (%v), want %q", got, err, tt.wantStall)
			}
		})
	}
}

func reasonOf(err error) string {
	var stalled *classify.StallError
	if errors.As(err, &stalled) {
		return stalled.Reason
	}
	return ""
}
