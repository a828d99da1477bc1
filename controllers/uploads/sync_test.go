package uploads

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/syncs"
	"github.com/crowdpack/crowdpack/internal/metrics"
	"github.com/crowdpack/crowdpack/internal/sandbox"
)

// syncOf is a Delta sync of the dated raw exports under prefix, hashed in
// the cluster, expanding packageA.
func (h *harness) syncOf(name, prefix string) *upv1.UserPackageSync {
	u := h.object(name, "")
	s3 := upv1.SyncS3Source{S3Source: *u.Spec.Source.S3, Prefix: prefix}
	s3.Key = ""
	file := u.Spec.File
	file.Hashing = upv1.HashingMD5
	return &upv1.UserPackageSync{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: upv1.UserPackageSyncSpec{
			Source: upv1.SyncSource{S3: &s3}, File: file,
			CredentialsRef: u.Spec.CredentialsRef, UserPackageID: packageA,
		},
	}
}

func (h *harness) getSync(name string) *upv1.UserPackageSync {
	h.t.Helper()
	s := &upv1.UserPackageSync{}
	must(h.t, kube.Client.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: name}, s))
	return s
}

// waitSync polls the sync until ok says yes.
func (h *harness) waitSync(name, what string, ok func(*upv1.UserPackageSync) bool) *upv1.UserPackageSync {
	h.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		s := h.getSync(name)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			status, _ := json.MarshalIndent(s.Status, "", "  ")
			h.t.Fatalf("sync %s: not %s after 90s; status:\n%s", name, what, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitRun waits until the newest run is of key and has result.
func (h *harness) waitRun(name, key string, result upv1.SyncResult) upv1.SyncRun {
	h.t.Helper()
	s := h.waitSync(name, fmt.Sprintf("%s %s", key, result), func(s *upv1.UserPackageSync) bool {
		return len(s.Status.History) > 0 && s.Status.History[0].Key == key && s.Status.History[0].Result == result
	})
	return s.Status.History[0]
}

// requestSync asks the sync to check its source now.
func (h *harness) requestSync(name string) {
	h.t.Helper()
	time.Sleep(10 * time.Millisecond) // requestedAt values must differ
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, syncs.RequestedAt, time.Now().Format(time.RFC3339Nano))
	must(h.t, kube.Client.Patch(h.ctx, &upv1.UserPackageSync{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name}},
		client.RawPatch(types.MergePatchType, []byte(patch))))
}

// syncChildren lists the sync's children, by name.
func (h *harness) syncChildren(name string) []upv1.UserPackageUpload {
	h.t.Helper()
	list := &upv1.UserPackageUploadList{}
	must(h.t, kube.Client.List(h.ctx, list, client.InNamespace(h.ns), client.MatchingLabels{syncs.LabelSync: name}))
	return list.Items
}

func assertRun(t *testing.T, run upv1.SyncRun, added, unchanged, left int64) {
	t.Helper()
	if run.Added != added || run.Unchanged != unchanged || run.Left != left {
		t.Errorf("run of %s: added/unchanged/left %d/%d/%d, want %d/%d/%d", run.Key, run.Added, run.Unchanged, run.Left, added, unchanged, left)
	}
}

// TestASyncOfDatedExportsSendsEachRevisionsNewMembersOnly: three dated
// raw exports of 200,000 numbers under a prefix. The first is sent whole;
// the second, which drops 5,000 members and adds 10,000 (its numbers
// written in another form), sends exactly the 10,000 new ones; the third,
// the second's bytes written again, sends nothing and makes no child. A
// fourth with 40 % of the members is held back as a suspicious shrink
// until a requested reconcile approves it; a fifth with no valid line is
// refused.
func TestASyncOfDatedExportsSendsEachRevisionsNewMembersOnly(t *testing.T) {
	h := newHarness(t, harnessOptions{syncs: true})
	first, firstMD5 := rawNumbersFile(0, 200_000, "%s")
	second, secondMD5 := rawNumbersFile(5_000, 205_000, "+86 %s")
	_, added := rawNumbersFile(200_000, 10_000, "%s")
	h.put("exports/vip/2026-12-01.csv", first)
	must(t, kube.Client.Create(h.ctx, h.syncOf("vip", "exports/vip/")))

	run := h.waitRun("vip", "exports/vip/2026-12-01.csv", upv1.SyncResultSynced)
	assertRun(t, run, 200_000, 0, 0)
	if got := h.sandbox.PackageMembers(packageA); !slices.Equal(got, members(firstMD5)) {
		t.Fatalf("after the first revision the package holds %d members, want its %d", len(got), 200_000)
	}

	h.put("exports/vip/2026-12-02.csv", second)
	h.requestSync("vip")
	run = h.waitRun("vip", "exports/vip/2026-12-02.csv", upv1.SyncResultSynced)
	assertRun(t, run, 10_000, 195_000, 5_000)
	child := h.get(run.Child)
	if got := mergedFiles(t, h, child); !bytes.Equal(got, added) {
		t.Errorf("the second revision's child sent %d bytes, want the MD5 lines of the 10,000 new numbers", len(got))
	}
	union := slices.Compact(slices.Sorted(slices.Values(append(members(firstMD5), members(secondMD5)...))))
	if got := h.sandbox.PackageMembers(packageA); !slices.Equal(got, union) {
		t.Errorf("the package holds %d members, want the %d of both revisions", len(got), len(union))
	}

	initiates := h.sandbox.CountSucceeded(sandbox.EndpointInitiate)
	h.put("exports/vip/2026-12-03.csv", second)
	h.requestSync("vip")
	run = h.waitRun("vip", "exports/vip/2026-12-03.csv", upv1.SyncResultUnchanged)
	if n := len(h.syncChildren("vip")); n != 2 {
		t.Errorf("%d children after an unchanged revision, want 2", n)
	}
	if n := h.sandbox.CountSucceeded(sandbox.EndpointInitiate); n != initiates {
		t.Errorf("an unchanged revision made %d initiate calls", n-initiates)
	}

	shrunk, _ := rawNumbersFile(5_000, 82_000, "%s")
	h.put("exports/vip/2026-12-04.csv", shrunk)
	h.requestSync("vip")
	h.waitSync("vip", "Stalled SuspiciousShrink", func(s *upv1.UserPackageSync) bool {
		return conditionOf(s, upv1.ConditionStalled, syncs.ReasonSuspiciousShrink)
	})
	if n := len(h.syncChildren("vip")); n != 2 {
		t.Errorf("%d children while a shrink is held back, want 2", n)
	}
	h.requestSync("vip")
	run = h.waitRun("vip", "exports/vip/2026-12-04.csv", upv1.SyncResultSynced)
	assertRun(t, run, 0, 82_000, 123_000)
	assertSyncMetrics(t, h.ns, 210_000, map[upv1.SyncResult]float64{
		upv1.SyncResultSynced: 3, upv1.SyncResultUnchanged: 1, upv1.SyncResultHeldBack: 1})

	h.put("exports/vip/2026-12-05.csv", []byte("mobile\nnot a number\n"))
	h.requestSync("vip")
	h.waitSync("vip", "Stalled InvalidLines", func(s *upv1.UserPackageSync) bool {
		return conditionOf(s, upv1.ConditionStalled, upv1.ReasonInvalidLines)
	})
	time.Sleep(time.Second) // the reconciles its status write starts must keep the stall
	if s := h.getSync("vip"); !conditionOf(s, upv1.ConditionStalled, upv1.ReasonInvalidLines) {
		t.Errorf("the InvalidLines stall did not last: %+v", s.Status.Conditions)
	}
	if n := len(h.syncChildren("vip")); n != 3 {
		t.Errorf("%d children after a revision with no valid line, want 3", n)
	}
	if n := h.sandbox.CountSucceeded(sandbox.EndpointInitiate); n != initiates {
		t.Errorf("an approved shrink with no new member made %d initiate calls", n-initiates)
	}
}

// TestASyncWhoseBaseIsGoneStallsWithoutACall: the last synced export is
// deleted from an unversioned bucket, so the next revision's delta has no
// base: the sync says BaseUnavailable and WeChat Pay is not called.
func TestASyncWhoseBaseIsGoneStallsWithoutACall(t *testing.T) {
	h := newHarness(t, harnessOptions{syncs: true})
	first, _ := rawNumbersFile(0, 1_000, "%s")
	second, _ := rawNumbersFile(100, 1_000, "%s")
	h.put("exports/gone/2026-12-01.csv", first)
	must(t, kube.Client.Create(h.ctx, h.syncOf("gone", "exports/gone/")))
	h.waitRun("gone", "exports/gone/2026-12-01.csv", upv1.SyncResultSynced)
	initiates := h.sandbox.CountSucceeded(sandbox.EndpointInitiate)

	must(t, storage.Client.RemoveObject(h.ctx, h.bucket, "exports/gone/2026-12-01.csv", minio.RemoveObjectOptions{}))
	h.put("exports/gone/2026-12-02.csv", second)
	h.requestSync("gone")
	h.waitSync("gone", "Stalled BaseUnavailable", func(s *upv1.UserPackageSync) bool {
		return conditionOf(s, upv1.ConditionStalled, upv1.ReasonBaseUnavailable)
	})
	if n := h.sandbox.CountSucceeded(sandbox.EndpointInitiate); n != initiates {
		t.Errorf("a revision without its base made %d initiate calls", n-initiates)
	}
}

func conditionOf(s *upv1.UserPackageSync, typ, reason string) bool {
	for _, c := range s.Status.Conditions {
		if c.Type == typ {
			return c.Status == metav1.ConditionTrue && c.Reason == reason
		}
	}
	return false
}

// TestASyncOfOneKeyInAVersionedBucketFollowsItsVersions: each version of
// one key of a versioned bucket is a revision: a raw export of 200,000
// numbers, then one that drops 5,000 and adds 10,000, then the second's
// bytes written again. The second sends exactly its 10,000 new members,
// against the first version read by its version id after the key was
// overwritten; the third sends nothing: two children, the package the
// union of the first two.
func TestASyncOfOneKeyInAVersionedBucketFollowsItsVersions(t *testing.T) {
	h := newHarness(t, harnessOptions{syncs: true})
	must(t, storage.EnableVersioning(h.ctx, h.bucket))
	first, firstMD5 := rawNumbersFile(0, 200_000, "%s")
	second, secondMD5 := rawNumbersFile(5_000, 205_000, "%s")
	_, added := rawNumbersFile(200_000, 10_000, "%s")
	const key = "exports/vip/latest.csv"
	h.put(key, first)
	s := h.syncOf("latest", "")
	s.Spec.Source.S3.Key, s.Spec.Source.S3.Prefix = key, ""
	must(t, kube.Client.Create(h.ctx, s))
	firstRun := h.waitRun("latest", key, upv1.SyncResultSynced)

	h.put(key, second)
	h.requestSync("latest")
	h.waitSync("latest", "a second run synced", func(s *upv1.UserPackageSync) bool {
		return len(s.Status.History) == 2 && s.Status.History[0].Result == upv1.SyncResultSynced
	})
	run := h.getSync("latest").Status.History[0]
	assertRun(t, run, 10_000, 195_000, 5_000)
	child := h.get(run.Child)
	if base := child.Spec.File.ExcludeMembersOf; base == nil || base.VersionID == "" || base.VersionID == child.Status.Source.VersionID {
		t.Errorf("the second child's base is %+v, want the first version pinned by its version id", base)
	}
	if got := mergedFiles(t, h, child); !bytes.Equal(got, added) {
		t.Errorf("the second version's child sent %d bytes, want the MD5 lines of the 10,000 new numbers", len(got))
	}
	union := slices.Compact(slices.Sorted(slices.Values(append(members(firstMD5), members(secondMD5)...))))
	if got := h.sandbox.PackageMembers(packageA); !slices.Equal(got, union) {
		t.Errorf("the package holds %d members, want the %d of both versions", len(got), len(union))
	}
	if run.Revision == firstRun.Revision {
		t.Errorf("both versions are revision %s", run.Revision)
	}

	h.put(key, second)
	h.requestSync("latest")
	h.waitSync("latest", "the rewritten version seen as unchanged", func(s *upv1.UserPackageSync) bool {
		return len(s.Status.History) == 3 && s.Status.History[0].Result == upv1.SyncResultUnchanged
	})
	if n := len(h.syncChildren("latest")); n != 2 {
		t.Errorf("%d children after three versions, one of them unchanged; want 2", n)
	}
}

// TestASyncRestartedAtEachStageSendsTheSameOnce: the manager stops when a
// sync's revision has its child, and when that child's parts are going
// out; started again, the package ends with the revision's members, from
// one child, one initiate and one expand.
func TestASyncRestartedAtEachStageSendsTheSameOnce(t *testing.T) {
	stages := []struct {
		name    string
		wrap    func(client.Client) client.Client
		reached func(h *harness) bool
	}{
		{
			name: "after the revision was seen, before its child was created",
			wrap: refuseChildren,
			reached: func(h *harness) bool {
				s := h.getSync("restart")
				return s.Status.CurrentRevision != nil && len(h.syncChildren("restart")) == 0
			},
		},
		{name: "after the child was created", reached: func(h *harness) bool { return len(h.syncChildren("restart")) > 0 }},
		{name: "while the child's parts go out", reached: func(h *harness) bool { return h.sandbox.CountSucceeded(sandbox.EndpointUploadPart) > 0 }},
	}
	for _, stage := range stages {
		t.Run(stage.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{syncs: true, partSize: 4 << 10, noManager: true})
			h.startManager(stage.wrap)
			must(t, h.sandbox.SetFaults(sandbox.EndpointUploadPart, sandbox.Faults{LatencyMillis: 50}))
			file, hashed := rawNumbersFile(0, 2_000, "%s") // 64,000 MD5 bytes: 16 parts
			h.put("exports/restart/2026-12-01.csv", file)
			must(t, kube.Client.Create(h.ctx, h.syncOf("restart", "exports/restart/")))
			deadline := time.Now().Add(60 * time.Second)
			for !stage.reached(h) {
				if time.Now().After(deadline) {
					t.Fatalf("the sync never got %s", stage.name)
				}
				time.Sleep(5 * time.Millisecond)
			}
			h.stopManager()
			h.startManager(nil)

			h.waitRun("restart", "exports/restart/2026-12-01.csv", upv1.SyncResultSynced)
			if got := h.sandbox.PackageMembers(packageA); !slices.Equal(got, members(hashed)) {
				t.Errorf("the package holds %d members, want the revision's %d", len(got), 2_000)
			}
			if n := len(h.syncChildren("restart")); n != 1 {
				t.Errorf("%d children, want 1", n)
			}
			for _, e := range []sandbox.Endpoint{sandbox.EndpointInitiate, sandbox.EndpointMerge, sandbox.EndpointExpand} {
				if n := h.sandbox.CountSucceeded(e); n != 1 {
					t.Errorf("%d successful %s calls, want 1", n, e)
				}
			}
		})
	}
}

// assertSyncMetrics checks the members and revisions the namespace's syncs
// counted.
func assertSyncMetrics(t *testing.T, ns string, added float64, results map[upv1.SyncResult]float64) {
	t.Helper()
	if got := testutil.ToFloat64(metrics.SyncMembersAdded.WithLabelValues(ns)); got != added {
		t.Errorf("crowdpack_sync_members_added_total{sync_namespace=%q} = %v, want %v", ns, got, added)
	}
	for result, want := range results {
		if got := testutil.ToFloat64(metrics.SyncRevisions.WithLabelValues(ns, string(result))); got != want {
			t.Errorf("crowdpack_sync_revisions_total{result=%q} = %v, want %v", result, got, want)
		}
	}
	if testutil.ToFloat64(metrics.SyncChecks.WithLabelValues(ns)) < 4 {
		t.Errorf("crowdpack_sync_checks_total counted fewer checks than the four revisions")
	}
}

// TestASyncKeepsHistoryLimitChildren: with historyLimit 2, the third
// revision's sync deletes the first revision's child, and keeps two runs;
// every child is owned by the sync, so deleting the sync deletes them.
func TestASyncKeepsHistoryLimitChildren(t *testing.T) {
	h := newHarness(t, harnessOptions{syncs: true})
	s := h.syncOf("short", "exports/short/")
	s.Spec.HistoryLimit = 2
	must(t, kube.Client.Create(h.ctx, s))
	var firstChild string
	for day := 1; day <= 3; day++ {
		key := fmt.Sprintf("exports/short/2026-12-0%d.csv", day)
		file, _ := rawNumbersFile(day*100, 1_000, "%s")
		h.put(key, file)
		h.requestSync("short")
		run := h.waitRun("short", key, upv1.SyncResultSynced)
		if day == 1 {
			firstChild = run.Child
		}
	}
	h.waitSync("short", "two runs kept", func(s *upv1.UserPackageSync) bool { return len(s.Status.History) == 2 })
	deadline := time.Now().Add(30 * time.Second)
	for names := childNames(h.syncChildren("short")); len(names) != 2 || slices.Contains(names, firstChild); names = childNames(h.syncChildren("short")) {
		if time.Now().After(deadline) {
			t.Fatalf("children %v, want the two newest, not %s", names, firstChild)
		}
		time.Sleep(100 * time.Millisecond)
	}
	sync := h.getSync("short")
	for _, child := range h.syncChildren("short") {
		if owner := metav1.GetControllerOf(&child); owner == nil || owner.UID != sync.UID || owner.BlockOwnerDeletion == nil || !*owner.BlockOwnerDeletion {
			t.Errorf("child %s is not controlled by the sync: %+v", child.Name, owner)
		}
	}
}

func childNames(children []upv1.UserPackageUpload) []string {
	var names []string
	for _, c := range children {
		names = append(names, c.Name)
	}
	return names
}

// refuseChildren is a client whose creates of UserPackageUploads fail, as
// if the manager died between seeing a revision and creating its child.
func refuseChildren(c client.Client) client.Client { return childRefuser{c} }

type childRefuser struct{ client.Client }

func (c childRefuser) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if _, ok := obj.(*upv1.UserPackageUpload); ok {
		return errors.New("the manager stops before the child is created")
	}
	return c.Client.Create(ctx, obj, opts...)
}

// TestASyncOfAnHTTPSExportUploadsEachRevisionWhole: a file served over
// HTTP(S) keeps no earlier version to compare with, so each new revision
// (a new Last-Modified time) is uploaded whole (mode: Full), and a check
// of an unchanged file sends nothing.
func TestASyncOfAnHTTPSExportUploadsEachRevisionWhole(t *testing.T) {
	var mu sync.Mutex
	data, modified := phoneFile(0, 500), time.Unix(1_700_000_000, 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		body, at := data, modified
		mu.Unlock()
		http.ServeContent(w, r, "vip.csv", at, bytes.NewReader(body))
	}))
	defer srv.Close()
	h := newHarness(t, harnessOptions{syncs: true})
	s := h.syncOf("web", "")
	s.Spec.Source = upv1.SyncSource{HTTP: &upv1.HTTPSource{URL: srv.URL + "/exports/vip.csv?token=secret", Insecure: true}}
	s.Spec.Mode, s.Spec.File.Hashing = upv1.SyncModeFull, upv1.HashingNone
	must(t, kube.Client.Create(h.ctx, s))
	first := h.waitRun("web", srv.URL+"/exports/vip.csv", upv1.SyncResultSynced)
	assertRun(t, first, 500, 0, 0)

	h.requestSync("web")
	h.waitSync("web", "the unchanged file checked", func(s *upv1.UserPackageSync) bool {
		return s.Status.LastHandledReconcileAt == s.Annotations[syncs.RequestedAt]
	})
	mu.Lock()
	data, modified = phoneFile(400, 500), modified.Add(time.Hour)
	mu.Unlock()
	h.requestSync("web")
	h.waitSync("web", "a second run synced", func(s *upv1.UserPackageSync) bool {
		return len(s.Status.History) == 2 && s.Status.History[0].Result == upv1.SyncResultSynced
	})
	second := h.getSync("web").Status.History[0]
	if merged := mergedFiles(t, h, h.get(second.Child)); !bytes.Equal(merged, phoneFile(400, 500)) {
		t.Error("the second revision was not uploaded whole")
	}
	if strings.Contains(fmt.Sprint(h.getSync("web").Status), "secret") {
		t.Error("the sync's status shows the URL's query")
	}
}
