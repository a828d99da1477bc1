package uploads

import (
	"context"
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/controllers/once"
	"github.com/crowdpack/crowdpack/controllers/packagelock"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// reconcileMerge merges the parts once every one is acknowledged, and
// records the merged file's resource ID. Sets Merged.
func reconcileMerge(ctx context.Context, s *scope) error {
	u := s.obj
	if !wantsParts(u, upv1.ConditionMerged) {
		return nil
	}
	if s.upload().MergedAt == nil {
		if err := s.merge(ctx); err != nil {
			return failCondition(u, upv1.ConditionMerged, err)
		}
	}
	setCondition(u, upv1.ConditionMerged, metav1.ConditionTrue, upv1.ReasonMerged, mergedMessage(s.upload()))
	return nil
}

func (s *scope) merge(ctx context.Context) error {
	up := s.upload()
	if up.PartsDone != up.PartCount {
		return fmt.Errorf("merge: %d of %d parts acknowledged", up.PartsDone, up.PartCount)
	}
	id := up.ID
	return s.callOnce(ctx, once.Merge, func(wc wechatpay.API, lost bool) (func(*upv1.UploadStatus), error) {
		result, err := wc.MergeParts(ctx, id)
		switch {
		case err == nil:
			return merged(result.ResourceID, s.now()), nil
		case lost && once.RefusedAsDone(err):
			return merged("", s.now()), nil // the lost call merged; its answer named the resource
		default:
			return nil, err
		}
	})
}

func merged(resourceID string, at *metav1.Time) func(*upv1.UploadStatus) {
	return func(up *upv1.UploadStatus) {
		up.ResourceID = resourceID
		up.MergedAt = at
	}
}

// reconcileExpand adds the merged upload to the crowd package
// spec.userPackageID names, once per package: a package set or changed
// after the merge is expanded with the same upload, and none twice. Sets
// Expanded.
func reconcileExpand(ctx context.Context, s *scope) error {
	u := s.obj
	pkg := u.Spec.UserPackageID
	if pkg == "" || !u.Spec.WantsParts() {
		removeCondition(u, upv1.ConditionExpanded)
		return nil
	}
	adoptExpandedAt(s.upload(), pkg)
	if !isExpanded(s.upload(), pkg) {
		if err := s.expand(ctx, pkg); err != nil {
			return failCondition(u, upv1.ConditionExpanded, err)
		}
	}
	setCondition(u, upv1.ConditionExpanded, metav1.ConditionTrue, upv1.ReasonExpanded, expandedMessage(u, s.upload()))
	return nil
}

// packageWait bounds how long an expand waits for another expand of the
// same package before the reconcile lets its worker go and comes back.
const packageWait = 10 * time.Second

func (s *scope) expand(ctx context.Context, pkg string) error {
	unlock, err := s.lockPackage(ctx, pkg)
	if err != nil {
		return err
	}
	defer unlock()
	id := s.upload().ID
	return s.callOnce(ctx, once.Expand(pkg), func(wc wechatpay.API, lost bool) (func(*upv1.UploadStatus), error) {
		_, err := wc.ExpandPackage(ctx, pkg, id)
		if err != nil && !(lost && once.RefusedAsDone(err)) {
			return nil, err
		}
		at := s.now()
		return func(up *upv1.UploadStatus) {
			up.Expanded = append(up.Expanded, upv1.ExpandedPackage{UserPackageID: pkg, At: *at})
			up.ExpandedAt = at
		}, nil
	})
}

// lockPackage takes the crowd package's turn for an expand: its mark, the
// call and the answer. Expands of one package never overlap, whichever
// objects make them; one waiting longer than packageWait is retried.
func (s *scope) lockPackage(ctx context.Context, pkg string) (unlock func(), err error) {
	if _, err := s.weChatPay(ctx); err != nil { // the package is the brand's
		return nil, err
	}
	wait, cancel := context.WithTimeout(ctx, packageWait)
	defer cancel()
	unlock, err = s.packages.Lock(wait, packagelock.Key{BrandID: s.brandID, UserPackageID: pkg})
	if err != nil && ctx.Err() == nil {
		return nil, classify.Retry(upv1.ReasonWaitingForPackage, packageWait,
			"another expand of crowd package %s is under way; expands of one package take turns", pkg)
	}
	return unlock, err
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
