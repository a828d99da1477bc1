package syncs

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/internal/linecheck"
	"github.com/crowdpack/crowdpack/internal/metrics"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/uploadplan"
)

// ReasonSuspiciousShrink: a revision drops more of the last synced
// revision's members than spec.shrinkGuard.maxDropPercent allows.
const ReasonSuspiciousShrink = "SuspiciousShrink"

// RequestedAt is the annotation that asks for a check now, and approves a
// revision held back as a suspicious shrink.
const RequestedAt = "reconcile.fluxcd.io/requestedAt"

// check looks at the source once the interval has passed (or a reconcile
// was requested) and starts a child for a revision not synced yet.
func (r *Reconciler) check(ctx context.Context, sync *upv1.UserPackageSync) (ctrl.Result, error) {
	if wait := r.untilCheck(sync); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, stoppedRun(sync)
	}
	revisions, err := r.Sources.Revisions(ctx, sync.Namespace, &sync.Spec.Source)
	if err != nil {
		return ctrl.Result{}, err
	}
	found, err := revisions.Current(ctx, lastFound(sync))
	if err != nil {
		return ctrl.Result{}, classify.Source(err)
	}
	rev := revisionStatus(found)
	sync.Status.CurrentRevision = &rev
	metrics.SyncChecks.WithLabelValues(sync.Namespace).Inc()
	settled, err := r.judge(ctx, sync, revisions, found)
	if !settled {
		return ctrl.Result{}, err // tried again with backoff: the check is not done
	}
	now := r.now()
	r.checked.record(keyOf(sync), now)
	sync.Status.LastHandledReconcileAt = sync.Annotations[RequestedAt]
	return ctrl.Result{RequeueAfter: nextCheck(sync, now).Sub(now)}, err
}

// lastFound is the revision the source held at the last check, for a
// conditional request.
func lastFound(sync *upv1.UserPackageSync) *source.Revision {
	rev := sync.Status.CurrentRevision
	if rev == nil {
		return nil
	}
	found := &source.Revision{ID: rev.ID, Key: rev.Key, Version: source.Version{VersionID: rev.VersionID, ETag: rev.ETag, Size: rev.Size}}
	if rev.LastModified != nil {
		found.LastModified = rev.LastModified.Time
	}
	return found
}

// judge decides what the revision the source holds calls for: nothing (it
// was seen, or has the bytes of the last), a stall (no member, a shrink),
// or its child. settled is false when it could not decide (the revision
// could not be read, the child not created) and the check must be made
// again.
func (r *Reconciler) judge(ctx context.Context, sync *upv1.UserPackageSync, revisions source.Revisions, found source.Revision) (settled bool, err error) {
	rev := *sync.Status.CurrentRevision
	if seen(sync, rev) {
		return true, stoppedRun(sync)
	}
	read, err := readRevision(ctx, sync, revisions, found)
	if err != nil {
		return false, err
	}
	members := read.Report.Lines - read.Report.InvalidLines
	if last := sync.Status.LastSyncedRevision; last != nil && last.Digest == "sha256:"+read.Digest {
		r.unchanged(sync, rev, members)
		return true, nil
	}
	if members == 0 {
		return true, r.refuse(sync, rev, upv1.ReasonInvalidLines, fmt.Sprintf(
			"revision %s holds no valid %s member in its %d lines (is it the export of another dataType, or does it need hashing: MD5?); it is not synced: fix the export, or the spec",
			rev.Key, sync.Spec.File.DataType, read.Report.Lines))
	}
	if err := r.guardShrink(sync, rev, members); err != nil {
		return true, err
	}
	child, err := r.startChild(ctx, sync, rev)
	if err != nil {
		return false, err
	}
	return true, classify.Retry(upv1.ReasonProgressing, 0, "revision %s is being synced by %s", rev.Key, child)
}

// refuse records a revision that cannot be synced as it is, as a failed
// run without a child, and stalls: a new revision or a changed spec is
// judged anew.
func (r *Reconciler) refuse(sync *upv1.UserPackageSync, rev upv1.Revision, reason, message string) error {
	run := upv1.SyncRun{Revision: rev.ID, Key: rev.Key, Result: upv1.SyncResultFailed, Reason: reason, Message: message, At: metav1.NewTime(r.now())}
	sync.Status.History = append([]upv1.SyncRun{run}, sync.Status.History...)
	metrics.ObserveSyncRun(sync.Namespace, string(run.Result), 0)
	return classify.Stall(reason, "%s", message)
}

// unchanged records a revision with the bytes of the last synced one (an
// export written again): nothing is sent, and it becomes the last synced
// revision, the same base under its new name.
func (r *Reconciler) unchanged(sync *upv1.UserPackageSync, rev upv1.Revision, lines int64) {
	last := sync.Status.LastSyncedRevision
	run := upv1.SyncRun{Revision: rev.ID, Key: rev.Key, Result: upv1.SyncResultUnchanged, Members: last.Members,
		Unchanged: lines, Message: "the same bytes as revision " + last.Key + ": nothing to send", At: metav1.NewTime(r.now())}
	sync.Status.History = append([]upv1.SyncRun{run}, sync.Status.History...)
	metrics.ObserveSyncRun(sync.Namespace, string(run.Result), 0)
	last.Revision = rev
}

func requested(sync *upv1.UserPackageSync) bool {
	at := sync.Annotations[RequestedAt]
	return at != "" && at != sync.Status.LastHandledReconcileAt
}

// revisionStatus is a revision as status records it.
func revisionStatus(found source.Revision) upv1.Revision {
	rev := upv1.Revision{ID: found.ID, Key: found.Key, VersionID: found.VersionID, ETag: found.ETag, Size: found.Size}
	if !found.LastModified.IsZero() {
		rev.LastModified = &metav1.Time{Time: found.LastModified}
	}
	return rev
}

// seen reports whether the revision was synced, or tried, already: the
// last synced revision, or the newest run's (a failed run is not tried
// again by itself; a new revision or a changed spec is).
func seen(sync *upv1.UserPackageSync, rev upv1.Revision) bool {
	if last := sync.Status.LastSyncedRevision; last != nil && last.ID == rev.ID {
		return true
	}
	h := sync.Status.History
	return len(h) > 0 && h[0].Revision == rev.ID && h[0].Result != upv1.SyncResultHeldBack &&
		sync.Status.ObservedGeneration == sync.Generation
}

// stoppedRun stalls a sync whose newest run waits for a human: its child
// failed (the sync's reason is the child's), or its revision was held back.
// A new revision or a changed spec starts a new run.
func stoppedRun(sync *upv1.UserPackageSync) error {
	h := sync.Status.History
	if len(h) == 0 || (h[0].Result != upv1.SyncResultFailed && h[0].Result != upv1.SyncResultHeldBack) {
		return nil
	}
	if h[0].Result == upv1.SyncResultHeldBack || h[0].Child == "" {
		return classify.Stall(cmp.Or(h[0].Reason, ReasonSuspiciousShrink), "%s", h[0].Message)
	}
	fix := "fix it and change the sync's spec (e.g. mode: Full) to sync the revision again, or wait for a new revision"
	return classify.Stall(cmp.Or(h[0].Reason, upv1.ReasonRetrying), "revision %s: child %s failed: %s; %s", h[0].Key, h[0].Child, h[0].Message, fix)
}

// readRevision reads the revision once, as its child will: its SHA-256
// tells the bytes of the last synced revision, and the child's own line
// checks and hashing count its members, before anything is sent.
func readRevision(ctx context.Context, sync *upv1.UserPackageSync, revisions source.Revisions, rev source.Revision) (source.Result, error) {
	src, err := revisions.Source(rev)
	if err != nil {
		return source.Result{}, classify.Source(err)
	}
	check, err := linecheck.New(linecheck.DataType(sync.Spec.File.DataType))
	if err != nil {
		return source.Result{}, classify.Stall(upv1.ReasonInvalidSpec, "spec.file.dataType: %v", err)
	}
	opts := uploadplan.SplitOptions(&sync.Spec.File)
	opts.MaxLines = 0 // counted, not cut
	read, err := source.DigestChunks(ctx, src, check, opts)
	if err == nil && !source.SameVersion(rev, read.Version) {
		err = fmt.Errorf("read %s: %w: the revision was replaced while it was read", rev.Key, source.ErrChanged)
	}
	if err != nil {
		return source.Result{}, classify.Source(err)
	}
	return read, nil
}

// guardShrink holds back a revision with far fewer members than the last
// synced one (a truncated or empty export) until a requested reconcile
// approves it.
func (r *Reconciler) guardShrink(sync *upv1.UserPackageSync, rev upv1.Revision, lines int64) error {
	last, maxDrop := sync.Status.LastSyncedRevision, maxDropPercent(sync)
	if last == nil || last.Members == 0 || maxDrop >= 100 || approved(sync, rev) {
		return nil
	}
	drop := 100 * float64(last.Members-lines) / float64(last.Members)
	if drop <= float64(maxDrop) {
		return nil
	}
	message := fmt.Sprintf("revision %s has %d members, %.0f%% fewer than the %d members of the last synced revision %s (spec.shrinkGuard.maxDropPercent %d): "+
		"it looks truncated and is not synced; to sync it anyway, request a reconcile (kubectl annotate upsync %s -n %s %s=\"$(date +%%s)\" --overwrite)",
		rev.Key, lines, drop, last.Members, last.Key, maxDrop, sync.Name, sync.Namespace, RequestedAt)
	holdBack(sync, rev, lines, message, r.now()) // the next reconcile request approves it
	return classify.Stall(ReasonSuspiciousShrink, "%s", message)
}

// approved reports whether the revision was held back and a reconcile was
// requested since: a human looked at it.
func approved(sync *upv1.UserPackageSync, rev upv1.Revision) bool {
	h := sync.Status.History
	return len(h) > 0 && h[0].Revision == rev.ID && h[0].Result == upv1.SyncResultHeldBack && requested(sync)
}

func maxDropPercent(sync *upv1.UserPackageSync) int32 {
	if p := sync.Spec.ShrinkGuard.MaxDropPercent; p != nil {
		return *p
	}
	return 50
}

// holdBack records the held-back revision as the newest run, once.
func holdBack(sync *upv1.UserPackageSync, rev upv1.Revision, lines int64, message string, now time.Time) {
	h := sync.Status.History
	if len(h) > 0 && h[0].Revision == rev.ID && h[0].Result == upv1.SyncResultHeldBack {
		return
	}
	run := upv1.SyncRun{Revision: rev.ID, Key: rev.Key, Result: upv1.SyncResultHeldBack, Reason: ReasonSuspiciousShrink, Message: message, Members: lines, At: metav1.NewTime(now)}
	sync.Status.History = append([]upv1.SyncRun{run}, h...)
	metrics.ObserveSyncRun(sync.Namespace, string(run.Result), 0)
}

// startChild creates the child that syncs rev, records its run, and
// returns its name.
func (r *Reconciler) startChild(ctx context.Context, sync *upv1.UserPackageSync, rev upv1.Revision) (string, error) {
	child := childFor(sync, rev)
	if err := controllerutil.SetControllerReference(sync, child, r.Scheme()); err != nil {
		return "", fmt.Errorf("own child: %w", err)
	}
	created := true
	if err := r.Create(ctx, child); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("create child %s: %w", child.Name, err)
		}
		// Created by a reconcile whose status write this one's cache has
		// not seen yet (or before a restart), which announced it: a second
		// event would become a series, written again minutes later.
		created = false
	}
	h := sync.Status.History
	if len(h) > 0 && h[0].Revision == rev.ID && h[0].Result == upv1.SyncResultHeldBack {
		h = h[1:] // approved: the held-back run becomes this one
	}
	run := upv1.SyncRun{Revision: rev.ID, Key: rev.Key, Child: child.Name, Result: upv1.SyncResultInFlight, At: metav1.NewTime(r.now())}
	sync.Status.History = append([]upv1.SyncRun{run}, h...)
	if created {
		r.event(sync, corev1.EventTypeNormal, "NewRevision", fmt.Sprintf("revision %s of %s: syncing it with %s", rev.ID, rev.Key, child.Name))
	}
	return child.Name, nil
}

// childFor is the UserPackageUpload that syncs rev: the sync's file,
// brand and package, the revision's object and, in Delta mode with a base,
// only the members the base lacks. Its name and filename are derived from
// the sync and the revision, so a restart finds the same child.
func childFor(sync *upv1.UserPackageSync, rev upv1.Revision) *upv1.UserPackageUpload {
	suffix := revisionSuffix(sync, rev)
	file := sync.Spec.File
	file.Filename = strings.TrimSuffix(cmp.Or(file.Filename, sync.Name+".csv"), ".csv") + "-" + suffix + ".csv"
	if base := sync.Status.LastSyncedRevision; base != nil && sync.Spec.Mode != upv1.SyncModeFull && sync.Spec.Source.S3 != nil {
		file.ExcludeMembersOf = &upv1.PinnedSource{Source: objectSource(sync, base.Key), Digest: base.Digest, VersionID: base.VersionID}
	}
	uploadParts := true
	return &upv1.UserPackageUpload{
		ObjectMeta: metav1.ObjectMeta{
			Name: childName(sync.Name, suffix), Namespace: sync.Namespace,
			Labels:      map[string]string{LabelSync: sync.Name},
			Annotations: map[string]string{AnnotationRevision: rev.ID, AnnotationRevisionKey: rev.Key},
		},
		Spec: upv1.UserPackageUploadSpec{
			Source: objectSource(sync, rev.Key), File: file,
			CredentialsRef: sync.Spec.CredentialsRef, BrandRef: sync.Spec.BrandRef,
			UploadParts: &uploadParts, UserPackageID: sync.Spec.UserPackageID,
		},
	}
}

// objectSource is the sync's source narrowed to one revision: the object
// at key in its bucket, or its URL.
func objectSource(sync *upv1.UserPackageSync, key string) upv1.Source {
	if sync.Spec.Source.HTTP != nil {
		return upv1.Source{HTTP: sync.Spec.Source.HTTP.DeepCopy()}
	}
	s3 := sync.Spec.Source.S3.S3Source
	s3.Key = key
	return upv1.Source{S3: &s3}
}

// revisionSuffix names a revision in 8 hex characters, with the spec's
// generation: a changed spec syncs the same revision again, as a new child.
func revisionSuffix(sync *upv1.UserPackageSync, rev upv1.Revision) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%s", sync.UID, sync.Generation, rev.ID))
	return hex.EncodeToString(sum[:4])
}

// childName is the sync's name and the suffix, within the 253 characters
// of an object name.
func childName(syncName, suffix string) string {
	return syncName[:min(len(syncName), 253-len(suffix)-1)] + "-" + suffix
}
