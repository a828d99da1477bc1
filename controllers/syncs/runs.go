package syncs

import (
	"context"
	"fmt"
	"maps"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/metrics"
)

// LabelSync names, on a child UserPackageUpload, the sync that made it.
const LabelSync = "wechatpay.crowdpack.io/sync"

// AnnotationRevision and AnnotationRevisionKey name, on a child, the
// revision it syncs: a child whose run was never recorded (the sync's
// status write lost to a restart) is recorded from them.
const (
	AnnotationRevision    = "wechatpay.crowdpack.io/revision"
	AnnotationRevisionKey = "wechatpay.crowdpack.io/revision-key"
)

// children lists the sync's children, by its label and its ownership.
func (r *Reconciler) children(ctx context.Context, sync *upv1.UserPackageSync) (map[string]*upv1.UserPackageUpload, error) {
	list := &upv1.UserPackageUploadList{}
	if err := r.List(ctx, list, client.InNamespace(sync.Namespace), client.MatchingLabels{LabelSync: sync.Name}); err != nil {
		return nil, fmt.Errorf("list children: %w", err)
	}
	children := map[string]*upv1.UserPackageUpload{}
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], sync) {
			children[list.Items[i].Name] = &list.Items[i]
		}
	}
	return children, nil
}

// findUncachedChildren asks the API server for the child of a run in
// flight that the cache lacks: a child created a moment ago may not have
// reached the cache yet (a watch re-established after an API server
// restart lags further), and only the API server can tell it is gone.
func (r *Reconciler) findUncachedChildren(ctx context.Context, sync *upv1.UserPackageSync, children map[string]*upv1.UserPackageUpload) error {
	var reader client.Reader = r.Client
	if r.APIReader != nil {
		reader = r.APIReader
	}
	for _, run := range sync.Status.History {
		if run.Result != upv1.SyncResultInFlight || children[run.Child] != nil {
			continue
		}
		child := &upv1.UserPackageUpload{}
		err := reader.Get(ctx, client.ObjectKey{Namespace: sync.Namespace, Name: run.Child}, child)
		switch {
		case apierrors.IsNotFound(err):
			continue // deleted indeed
		case err != nil:
			return fmt.Errorf("get child %s: %w", run.Child, err)
		case metav1.IsControlledBy(child, sync):
			children[run.Child] = child
		}
	}
	return nil
}

// recordUnrecordedChildren records, as the newest run in flight, a child
// that no run names: it was created, and the status write that recorded
// its run was lost (the manager killed, the API server away). Such a
// child may have uploaded and merged already; deleting it as a stranger
// would have its revision synced again under its filename, which WeChat
// Pay refuses. A child's run leaves history only once the child is gone
// (see prune), so a child no run names is always one of these.
func recordUnrecordedChildren(sync *upv1.UserPackageSync, children map[string]*upv1.UserPackageUpload) {
	known := map[string]bool{}
	for _, run := range sync.Status.History {
		known[run.Child] = true
	}
	if last := sync.Status.LastSyncedRevision; last != nil {
		known[last.Child] = true
	}
	for _, name := range slices.Sorted(maps.Keys(children)) {
		child := children[name]
		rev, ok := child.Annotations[AnnotationRevision]
		if known[name] || !ok || child.DeletionTimestamp != nil {
			continue
		}
		run := upv1.SyncRun{Revision: rev, Key: child.Annotations[AnnotationRevisionKey], Child: name,
			Result: upv1.SyncResultInFlight, At: child.CreationTimestamp}
		sync.Status.History = append([]upv1.SyncRun{run}, sync.Status.History...)
	}
}

// followChildren brings each run in flight up to date with its child: a
// child Ready is a synced revision, the base of the next unless a newer
// run synced already; a stalled one a failed run, which leaves the base
// as it was.
func followChildren(sync *upv1.UserPackageSync, children map[string]*upv1.UserPackageUpload) {
	for i := range sync.Status.History {
		run := &sync.Status.History[i]
		child := children[run.Child]
		if run.Result != upv1.SyncResultInFlight {
			continue
		}
		if child == nil {
			run.Result, run.Reason, run.Message = upv1.SyncResultFailed, "ChildDeleted", "the child was deleted before it finished"
			metrics.ObserveSyncRun(sync.Namespace, string(run.Result), 0)
			continue
		}
		countRun(run, child)
		switch {
		case isDone(child):
			run.Result = upv1.SyncResultSynced
			if !newerRunSynced(sync.Status.History[:i]) {
				sync.Status.LastSyncedRevision = syncedRevision(run, child)
			}
			metrics.ObserveSyncRun(sync.Namespace, string(run.Result), run.Added)
		case stalledReason(child) != "":
			run.Result, run.Reason, run.Message = upv1.SyncResultFailed, stalledReason(child), childMessage(child)
			metrics.ObserveSyncRun(sync.Namespace, string(run.Result), 0)
		}
	}
}

// newerRunSynced reports whether one of the newer runs made its revision
// the base: an older child finishing later must not take its place.
func newerRunSynced(newer []upv1.SyncRun) bool {
	return slices.ContainsFunc(newer, func(run upv1.SyncRun) bool {
		return run.Result == upv1.SyncResultSynced || run.Result == upv1.SyncResultUnchanged
	})
}

// isDone reports whether the child finished its current generation.
func isDone(child *upv1.UserPackageUpload) bool {
	ready := condition(child, upv1.ConditionReady)
	return ready != nil && ready.Status == metav1.ConditionTrue && ready.ObservedGeneration == child.Generation
}

// stalledReason is why the child waits for a human, or "".
func stalledReason(child *upv1.UserPackageUpload) string {
	if c := condition(child, upv1.ConditionStalled); c != nil && c.Status == metav1.ConditionTrue {
		return c.Reason
	}
	return ""
}

func childMessage(child *upv1.UserPackageUpload) string {
	if c := condition(child, upv1.ConditionReady); c != nil {
		return c.Message
	}
	return ""
}

func condition(u *upv1.UserPackageUpload, typ string) *metav1.Condition {
	for i := range u.Status.Conditions {
		if u.Status.Conditions[i].Type == typ {
			return &u.Status.Conditions[i]
		}
	}
	return nil
}

// countRun takes the run's counts from what its child read.
func countRun(run *upv1.SyncRun, child *upv1.UserPackageUpload) {
	if c := child.Status.Content; c != nil {
		run.Members, run.InvalidLines = c.Lines-c.InvalidLines, c.InvalidLines
		run.Added = run.Members
	}
	if d := child.Status.Delta; d != nil {
		run.Added, run.Unchanged, run.Left = d.Added, d.Unchanged, d.Left
	}
}

// syncedRevision is the revision the child synced, as it read it: its
// version and digest pin the base of the next Delta.
func syncedRevision(run *upv1.SyncRun, child *upv1.UserPackageUpload) *upv1.SyncedRevision {
	read := child.Status.Source
	rev := upv1.Revision{ID: run.Revision, Key: run.Key}
	if read != nil {
		rev.ETag, rev.VersionID, rev.Size, rev.LastModified = read.ETag, read.VersionID, read.Size, read.LastModified
	}
	synced := &upv1.SyncedRevision{Revision: rev, Members: run.Members, Child: child.Name, At: run.At}
	if read != nil {
		synced.Digest = read.Digest
	}
	if c := condition(child, upv1.ConditionReady); c != nil {
		synced.At = c.LastTransitionTime
	}
	return synced
}

// inFlight is the run whose child is still at work, if any: a sync has at
// most one, and the next revision waits for it.
func inFlight(sync *upv1.UserPackageSync) *upv1.SyncRun {
	for i := range sync.Status.History {
		if sync.Status.History[i].Result == upv1.SyncResultInFlight {
			return &sync.Status.History[i]
		}
	}
	return nil
}

// prune deletes the children past spec.historyLimit, oldest first, never
// one still at work nor the base's, and keeps as many runs in history,
// and the runs of those children. A run leaves history only once its
// child is gone, so that a child no run names is one whose run was never
// recorded (see recordUnrecordedChildren).
func (r *Reconciler) prune(ctx context.Context, sync *upv1.UserPackageSync, children map[string]*upv1.UserPackageUpload) error {
	limit := int(historyLimit(sync))
	history := sync.Status.History
	kept := slices.Clone(history[:min(limit, len(history))])
	keep := map[string]bool{}
	for _, run := range kept {
		keep[run.Child] = true
	}
	if last := sync.Status.LastSyncedRevision; last != nil {
		keep[last.Child] = true // the base's child, which says how it was read
	}
	for _, run := range history[len(kept):] {
		child := children[run.Child]
		switch {
		case child == nil:
		case keep[run.Child], !isDone(child) && stalledReason(child) == "":
			kept = append(kept, run) // the base's, or at work again: its run stays with it
		default:
			if err := r.Delete(ctx, child); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete child %s past the history limit: %w", run.Child, err)
			}
		}
	}
	sync.Status.History = kept
	return nil
}

func historyLimit(sync *upv1.UserPackageSync) int32 {
	if sync.Spec.HistoryLimit > 0 {
		return sync.Spec.HistoryLimit
	}
	return 10
}
