package controllers

import (
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// reconcileMerge merges the parts once every one is acknowledged, and
// records the merged file's resource ID. Sets Merged.
func (r *UserPackageUploadReconciler) reconcileMerge(ctx context.Context, u *upv1.UserPackageUpload, a *attempt) error {
	if !u.Spec.WantsParts() {
		removeCondition(u, upv1.ConditionMerged)
		return nil
	}
	if u.Status.Upload.MergedAt == nil {
		if err := r.merge(ctx, u, a); err != nil {
			return failCondition(u, upv1.ConditionMerged, err)
		}
	}
	setCondition(u, upv1.ConditionMerged, metav1.ConditionTrue, upv1.ReasonMerged, mergedMessage(u.Status.Upload))
	return nil
}

func (r *UserPackageUploadReconciler) merge(ctx context.Context, u *upv1.UserPackageUpload, a *attempt) error {
	up := u.Status.Upload
	if up.PartsDone != up.PartCount {
		return fmt.Errorf("merge: %d of %d parts acknowledged", up.PartsDone, up.PartCount)
	}
	id := up.ID
	return r.callOnce(ctx, u, a, mergeMarker, func(wc wechatpay.API, lost bool) (func(*upv1.UploadStatus), error) {
		result, err := wc.MergeParts(ctx, id)
		switch {
		case err == nil:
			return r.merged(result.ResourceID), nil
		case lost && refusedAsDone(err):
			return r.merged(""), nil // the lost call merged; its answer named the resource
		default:
			return nil, err
		}
	})
}

func (r *UserPackageUploadReconciler) merged(resourceID string) func(*upv1.UploadStatus) {
	at := r.now()
	return func(up *upv1.UploadStatus) {
		up.ResourceID = resourceID
		up.MergedAt = at
	}
}

// reconcileExpand adds the merged upload to the crowd package
// spec.userPackageID names, once per package: a package set or changed
// after the merge is expanded with the same upload, and none twice. Sets
// Expanded.
func (r *UserPackageUploadReconciler) reconcileExpand(ctx context.Context, u *upv1.UserPackageUpload, a *attempt) error {
	pkg := u.Spec.UserPackageID
	if pkg == "" || !u.Spec.WantsParts() {
		removeCondition(u, upv1.ConditionExpanded)
		return nil
	}
	adoptExpandedAt(u.Status.Upload, pkg)
	if !isExpanded(u.Status.Upload, pkg) {
		if err := r.expand(ctx, u, a, pkg); err != nil {
			return failCondition(u, upv1.ConditionExpanded, err)
		}
	}
	setCondition(u, upv1.ConditionExpanded, metav1.ConditionTrue, upv1.ReasonExpanded, expandedMessage(u))
	return nil
}

func (r *UserPackageUploadReconciler) expand(ctx context.Context, u *upv1.UserPackageUpload, a *attempt, pkg string) error {
	id := u.Status.Upload.ID
	return r.callOnce(ctx, u, a, expandMarker(pkg), func(wc wechatpay.API, lost bool) (func(*upv1.UploadStatus), error) {
		_, err := wc.ExpandPackage(ctx, pkg, id)
		if err != nil && !(lost && refusedAsDone(err)) {
			return nil, err
		}
		at := r.now()
		return func(up *upv1.UploadStatus) {
			up.Expanded = append(up.Expanded, upv1.ExpandedPackage{UserPackageID: pkg, At: *at})
			up.ExpandedAt = at
		}, nil
	})
}

func isExpanded(up *upv1.UploadStatus, pkg string) bool {
	return slices.ContainsFunc(up.Expanded, func(e upv1.ExpandedPackage) bool { return e.UserPackageID == pkg })
}

// adoptExpandedAt reads a status written before expanded packages were
// listed: its one expansion was of the package the spec names.
func adoptExpandedAt(up *upv1.UploadStatus, pkg string) {
	if up.ExpandedAt != nil && len(up.Expanded) == 0 {
		up.Expanded = []upv1.ExpandedPackage{{UserPackageID: pkg, At: *up.ExpandedAt}}
	}
}

func mergedMessage(up *upv1.UploadStatus) string {
	if up.ResourceID == "" {
		return fmt.Sprintf("%d parts merged; merge's answer was lost and WeChat Pay refused the retry as already done, so the resource id is unknown", up.PartCount)
	}
	return fmt.Sprintf("%d parts merged into resource %s", up.PartCount, up.ResourceID)
}

func expandedMessage(u *upv1.UserPackageUpload) string {
	return fmt.Sprintf("crowd package %s expanded with upload %s; the data takes effect after WeChat Pay's sync (usually T+2)",
		u.Spec.UserPackageID, u.Status.Upload.ID)
}
