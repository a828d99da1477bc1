package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
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
	if up := u.Status.Upload; up.PartsDone != up.PartCount {
		return fmt.Errorf("merge: %d of %d parts acknowledged", up.PartsDone, up.PartCount)
	}
	return r.callOnce(ctx, u, a, func(wc wechatpay.API) (func(*v1.UploadStatus), error) {
		result, err := wc.MergeParts(ctx, u.Status.Upload.ID)
		if err != nil {
			return nil, err
		}
		return func(up *v1.UploadStatus) {
			up.ResourceID = result.ResourceID
			up.MergedAt = r.now()
		}, nil
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
	return r.callOnce(ctx, u, a, func(wc wechatpay.API) (func(*v1.UploadStatus), error) {
		if _, err := wc.ExpandPackage(ctx, u.Spec.UserPackageID, u.Status.Upload.ID); err != nil {
			return nil, err
		}
		return func(up *v1.UploadStatus) { up.ExpandedAt = r.now() }, nil
	})
}

// callOnce makes a call that must happen once per upload: on a view of the
// object known to be current (a stale one could call twice), and with its
// outcome recorded by a write that retries on conflict.
func (r *UserPackageUploadReconciler) callOnce(ctx context.Context, u *v1.UserPackageUpload, a *attempt,
	call func(wechatpay.API) (outcome func(*v1.UploadStatus), err error)) error {
	wc, err := a.clientFor(ctx, r, u)
	if err != nil {
		return err
	}
	if err := a.status.ensureCurrent(ctx, u); err != nil {
		return err
	}
	outcome, err := call(wc)
	if err != nil {
		return weChatPayError(err)
	}
	return a.status.record(ctx, u, func(x *v1.UserPackageUpload) { outcome(x.Status.Upload) })
}

func mergedMessage(up *v1.UploadStatus) string {
	return fmt.Sprintf("%d parts merged into resource %s", up.PartCount, up.ResourceID)
}

func expandedMessage(u *v1.UserPackageUpload) string {
	return fmt.Sprintf("crowd package %s expanded with upload %s; the data takes effect after WeChat Pay's sync (usually T+2)",
		u.Spec.UserPackageID, u.Status.Upload.ID)
}
