package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// maxHistory bounds status.history, so status stays small.
const maxHistory = 10

// reconcileInitiate calls initiate upload once per (generation, digest) and
// records the upload_id and part plan. Sets Initiated.
//
// Exactly once: a marker (upload.initiatingSince) is written with a
// conflict-checked update before the call, so a stale cache conflicts
// instead of calling twice; the answer is written with a write that retries
// on conflict. A marker found without an answer is a call whose outcome is
// unknown (a lost answer, a restart): it is counted, announced and made again.
func (r *UserPackageUploadReconciler) reconcileInitiate(ctx context.Context, u *v1.UserPackageUpload, a *attempt) error {
	up := r.currentUpload(u)
	if up.ID != "" {
		setCondition(u, v1.ConditionInitiated, metav1.ConditionTrue, v1.ReasonInitiated, initiatedMessage(up))
		return nil
	}
	wc, err := a.clientFor(ctx, r, u)
	if err != nil {
		return failInitiate(u, err)
	}
	req := initiateRequest(u)
	if err := req.Validate(); err != nil {
		return failInitiate(u, stall(v1.ReasonInvalidSpec, "initiate upload: %v; fix spec.file", err))
	}
	lost := up.InitiatingSince != nil
	if lost {
		up.UnknownOutcomes++
	}
	up.InitiatingSince = r.now()
	setCondition(u, v1.ConditionInitiated, metav1.ConditionUnknown, v1.ReasonProgressing, "calling initiate upload")
	if err := a.status.claim(ctx, u); err != nil {
		return err
	}
	if lost {
		r.event(u, corev1.EventTypeWarning, v1.ReasonOutcomeUnknown, fmt.Sprintf(
			"the answer to initiate upload was lost (%d so far); calling it again, which leaves at most one orphan upload session at WeChat Pay (harmless: it is never merged)",
			u.Status.Upload.UnknownOutcomes))
	}

	resp, callErr := wc.InitiateUpload(ctx, req)
	if callErr != nil {
		return r.initiateFailed(ctx, u, a, callErr)
	}
	err = a.status.record(ctx, u, func(x *v1.UserPackageUpload) {
		if x.Status.Upload == nil {
			x.Status.Upload = up.DeepCopy()
		}
		recordPlan(x.Status.Upload, resp, r.now())
	})
	if err != nil {
		return err
	}
	up = u.Status.Upload
	setCondition(u, v1.ConditionInitiated, metav1.ConditionTrue, v1.ReasonInitiated, initiatedMessage(up))
	r.event(u, corev1.EventTypeNormal, v1.ReasonInitiated, initiatedMessage(up))
	return nil
}

// currentUpload returns the upload of the object's (generation, digest),
// starting a new one (and moving an earlier one to the history) when needed.
func (r *UserPackageUploadReconciler) currentUpload(u *v1.UserPackageUpload) *v1.UploadStatus {
	digest := u.Status.Source.Digest
	if up := u.Status.Upload; up != nil && up.Generation == u.Generation && up.Digest == digest {
		return up
	}
	if old := u.Status.Upload; old != nil && old.ID != "" {
		u.Status.History = append([]v1.AbandonedUpload{{
			ID: old.ID, Generation: old.Generation, Digest: old.Digest, Filename: old.Filename, At: *r.now(),
		}}, u.Status.History...)
		u.Status.History = u.Status.History[:min(len(u.Status.History), maxHistory)]
		r.event(u, corev1.EventTypeNormal, "Superseded", fmt.Sprintf(
			"upload %s is abandoned: the spec or the file changed, a new upload starts", old.ID))
	}
	for _, c := range []string{v1.ConditionInitiated, v1.ConditionPartsUploaded, v1.ConditionMerged, v1.ConditionExpanded} {
		removeCondition(u, c)
	}
	u.Status.Upload = &v1.UploadStatus{Generation: u.Generation, Digest: digest, Filename: uploadFilename(u)}
	return u.Status.Upload
}

// initiateFailed records a failed call: a call refused or never sent
// clears its marker; any other keeps it, so that the next attempt counts an
// unknown outcome (the session may exist: a lost answer, a 5xx, an answer
// that failed verification).
func (r *UserPackageUploadReconciler) initiateFailed(ctx context.Context, u *v1.UserPackageUpload, a *attempt, callErr error) error {
	if createdNoSession(callErr) {
		err := a.status.record(ctx, u, func(x *v1.UserPackageUpload) {
			if x.Status.Upload != nil {
				x.Status.Upload.InitiatingSince = nil
			}
		})
		if err != nil {
			return err
		}
	}
	if filenameRefused(callErr, u.Status.Upload.Filename) {
		return failInitiate(u, stall(v1.ReasonFilenameTaken,
			"WeChat Pay refused the filename %s (%v); it may be taken by an earlier upload whose answer was lost: set a new spec.file.filename",
			u.Status.Upload.Filename, callErr))
	}
	return failInitiate(u, weChatPayError(callErr))
}

// createdNoSession reports whether a failed initiate surely left no session:
// it was refused (4xx but 429's "not processed") or never sent.
func createdNoSession(err error) bool {
	var api *wechatpay.APIError
	var invalid *wechatpay.ValidationError
	switch {
	case errors.As(err, &api):
		return api.StatusCode >= 400 && api.StatusCode < 500
	case errors.As(err, &invalid):
		return true
	default:
		var transport *wechatpay.TransportError
		return errors.As(err, &transport) && !transport.MayHaveReachedServer
	}
}

// filenameRefused reports whether WeChat Pay refused the call for its filename.
func filenameRefused(err error, filename string) bool {
	var api *wechatpay.APIError
	return errors.As(err, &api) && api.StatusCode == 400 &&
		(strings.Contains(api.Message, filename) || strings.Contains(strings.ToLower(api.Message), "filename"))
}

func failInitiate(u *v1.UserPackageUpload, err error) error {
	return failCondition(u, v1.ConditionInitiated, err)
}

func initiateRequest(u *v1.UserPackageUpload) wechatpay.InitiateUploadRequest {
	packageType := wechatpay.PackageTypeExposure
	if u.Spec.File.PackageType == v1.PackageTypeRisk {
		packageType = wechatpay.PackageTypeRisk
	}
	dataType := wechatpay.DataTypePhone
	if u.Spec.File.DataType == v1.DataTypeOpenID {
		dataType = wechatpay.DataTypeOpenID
	}
	return wechatpay.InitiateUploadRequest{
		Filename:    u.Status.Upload.Filename,
		Digest:      strings.TrimPrefix(u.Status.Upload.Digest, digestPrefix),
		PackageType: packageType,
		DataType:    dataType,
		Description: u.Spec.File.Description,
		FileSize:    u.Status.Source.Size,
	}
}

func recordPlan(up *v1.UploadStatus, resp *wechatpay.InitiateUploadResponse, at *metav1.Time) {
	up.ID = resp.UploadID
	up.PartSize = resp.FilePartSize
	up.PartCount = resp.FilePartCount
	up.ReturnMessage = resp.ReturnMessage
	up.InitiatedAt = at
	up.InitiatingSince = nil
	setProgress(up)
}

func initiatedMessage(up *v1.UploadStatus) string {
	return fmt.Sprintf("upload %s initiated: %d parts of %d bytes", up.ID, up.PartCount, up.PartSize)
}
