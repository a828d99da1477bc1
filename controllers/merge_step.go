package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

// reconcileMerge merges the parts once every one is acknowledged, and
// records the merged file's resource ID. Sets Merged.
func (r *UserPackageUploadReconciler) reconcileMerge(ctx context.Context, u *v1.UserPackageUpload, a *attempt) error {
	if !u.Spec.WantsParts() {
		removeCondition(u, v1.ConditionMerged)
		return nil
	}
	up := u.Status.Upload
	if up.MergedAt == nil {
		if err := r.merge(ctx, u, a); err != nil {
			return failCondition(u, v1.ConditionMerged, err)
		}
		up = u.Status.Upload
		r.event(u, corev1.EventTypeNormal, v1.ReasonMerged, mergedMessage(up))
	}
	setCondition(u, v1.ConditionMerged, metav1.ConditionTrue, v1.ReasonMerged, mergedMessage(up))
	return nil
}

func (r *UserPackageUploadReconciler) merge(ctx context.Context, u *v1.UserPackageUpload, a *attempt) error {
	wc, err := a.clientFor(ctx, r, u)
	if err != nil {
		return err
	}
	// A stale view could merge twice: check it is current first.
	if err := a.status.ensureCurrent(ctx, u); err != nil {
		return err
	}
	up := u.Status.Upload
	if up.PartsDone != up.PartCount {
		return fmt.Errorf("merge: %d of %d parts acknowledged", up.PartsDone, up.PartCount)
	}
	result, err := wc.MergeParts(ctx, up.ID)
	if err != nil {
		return weChatPayError(err)
	}
	return a.status.record(ctx, u, func(x *v1.UserPackageUpload) {
		at := metav1.NewTime(r.Now())
		x.Status.Upload.ResourceID = result.ResourceID
		x.Status.Upload.MergedAt = &at
	})
}

// reconcileExpand adds the merged upload to the crowd package
// spec.userPackageID names, once per upload. Sets Expanded.
func (r *UserPackageUploadReconciler) reconcileExpand(ctx context.Context, u *v1.UserPackageUpload, a *attempt) error {
	if u.Spec.UserPackageID == "" || !u.Spec.WantsParts() {
		removeCondition(u, v1.ConditionExpanded)
		return nil
	}
	up := u.Status.Upload
	if up.ExpandedAt == nil {
		if err := r.expand(ctx, u, a); err != nil {
			return failCondition(u, v1.ConditionExpanded, err)
		}
		r.event(u, corev1.EventTypeNormal, v1.ReasonExpanded, expandedMessage(u))
	}
	setCondition(u, v1.ConditionExpanded, metav1.ConditionTrue, v1.ReasonExpanded, expandedMessage(u))
	return nil
}

func (r *UserPackageUploadReconciler) expand(ctx context.Context, u *v1.UserPackageUpload, a *attempt) error {
	wc, err := a.clientFor(ctx, r, u)
	if err != nil {
		return err
	}
	if err := a.status.ensureCurrent(ctx, u); err != nil {
		return err
	}
	if _, err := wc.ExpandPackage(ctx, u.Spec.UserPackageID, u.Status.Upload.ID); err != nil {
		return weChatPayError(err)
	}
	return a.status.record(ctx, u, func(x *v1.UserPackageUpload) {
		at := metav1.NewTime(r.Now())
		x.Status.Upload.ExpandedAt = &at
	})
}

func mergedMessage(up *v1.UploadStatus) string {
	return fmt.Sprintf("%d parts merged into resource %s", up.PartCount, up.ResourceID)
}

func expandedMessage(u *v1.UserPackageUpload) string {
	return fmt.Sprintf("crowd package %s expanded with upload %s; the data takes effect after WeChat Pay's sync (usually T+2)",
		u.Spec.UserPackageID, u.Status.Upload.ID)
}
