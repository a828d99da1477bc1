package uploads

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/controllers/once"
	"github.com/crowdpack/crowdpack/controllers/uploads/filenames"
	"github.com/crowdpack/crowdpack/controllers/uploads/parts"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

const digestPrefix = "sha256:"

// maxHistory bounds status.history, so status stays small.
const maxHistory = 10

// renameDelay is the pause before initiating again under a new default
// filename, after a lost answer left the old one taken.
const renameDelay = time.Second

// reconcileInitiate calls initiate upload once per upload key, for the
// chunk's upload, and records the upload_id and part plan. Sets Initiated.
//
// Exactly once: a marker (initiatingSince) is written with a
// conflict-checked update before the call, so a stale cache conflicts
// instead of calling twice; the answer is written at once, with a write
// that retries through conflicts and short API server outages, before the
// parts step sends anything. A marker found without an answer is a call
// whose outcome is unknown (a lost answer, a restart before that write): it
// is counted, announced and made again.
func reconcileInitiate(ctx context.Context, s *scope) error {
	u := s.obj
	if _, err := s.weChatPay(ctx); err != nil {
		return failInitiate(u, err)
	}
	if s.chunk == 0 {
		s.settleUploads() // the brand is known: the upload keys are
	}
	up := s.upload()
	if up.ID != "" {
		setCondition(u, upv1.ConditionInitiated, metav1.ConditionTrue, upv1.ReasonInitiated, initiatedMessage(up))
		return nil
	}
	req := initiateRequest(u, up)
	if err := req.Validate(); err != nil {
		return failInitiate(u, classify.Stall(upv1.ReasonInvalidSpec, "initiate upload: %v; fix spec.file", err))
	}
	retried := up.InitiatingSince != nil && !s.ledger.Announced()
	setCondition(u, upv1.ConditionInitiated, metav1.ConditionUnknown, upv1.ReasonProgressing, "calling initiate upload")
	err := s.callOnce(ctx, once.Initiate, func(wc wechatpay.API, _ bool) (func(*upv1.UploadStatus), error) {
		resp, err := wc.InitiateUpload(ctx, req)
		if err != nil {
			return nil, err
		}
		at := s.now()
		return func(up *upv1.UploadStatus) { setPlan(up, resp, at) }, nil
	})
	if err != nil {
		return s.initiateFailed(ctx, err, retried)
	}
	setCondition(u, upv1.ConditionInitiated, metav1.ConditionTrue, upv1.ReasonInitiated, initiatedMessage(s.upload()))
	// No part goes out before the upload_id is in status: a crash after a
	// part was sent for an id nobody wrote down would need a new filename.
	return s.status.Save(ctx, u)
}

// dropInitiateMark takes back initiate's pending mark when the call it
// announced was not made (the file could not be read, the spec is invalid).
// It is the first chunk's: a mark written before the file was read goes
// with it; the chunks of a file read stay, for the next reconcile.
func dropInitiateMark(u *upv1.UserPackageUpload) {
	if len(u.Status.Uploads) == 0 {
		return
	}
	switch up := &u.Status.Uploads[0]; {
	case up.ID != "":
	case up.Digest == "":
		u.Status.Uploads = nil
	default:
		up.InitiatingSince = nil
	}
}

// abandon lists an upload session (or, with no id, a filename a lost call
// took) of up's chunk in the history, newest first.
func abandon(u *upv1.UserPackageUpload, up *upv1.UploadStatus, id, filename string, at *metav1.Time) {
	u.Status.History = append([]upv1.AbandonedUpload{{
		ID: id, Generation: up.Generation, Digest: up.Digest, Filename: filename, At: *at,
	}}, u.Status.History...)
	u.Status.History = u.Status.History[:min(len(u.Status.History), maxHistory)]
}

// uploadKey identifies an upload by exactly what WeChat Pay receives: the
// chunk's bytes (digest and size), the initiate fields and the brand. For a
// file in one chunk, without hashing or header row, these are the file's.
func uploadKey(u *upv1.UserPackageUpload, up *upv1.UploadStatus, brandID string) string {
	f := u.Spec.File
	h := sha256.New()
	for _, field := range []string{
		up.Digest, strconv.FormatInt(up.Size, 10),
		filenames.RequestedForChunk(u, up.Index), string(f.PackageType), string(f.DataType), f.Description, brandID,
	} {
		h.Write([]byte(field))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// initiateFailed sorts a failed initiate. A filename refused right after a
// lost answer was most likely taken by that lost call: a default filename
// (or a sync child's) then moves on to the next free one; an explicit one
// needs a human.
func (s *scope) initiateFailed(ctx context.Context, callErr error, retried bool) error {
	u := s.obj
	if !classify.IsClassified(callErr) {
		return callErr // a claim or write that failed, a stopping manager: nothing to tell
	}
	up := s.upload()
	if !filenameRefused(callErr, up.Filename) {
		return failInitiate(u, callErr)
	}
	if !retried || filenames.Explicit(u) {
		return failInitiate(u, classify.Stall(upv1.ReasonFilenameTaken,
			"WeChat Pay refused the filename %s (%v); it may be taken by an earlier upload whose answer was lost: set a new spec.file.filename",
			up.Filename, errors.Unwrap(callErr)))
	}
	taken, at := up.Filename, s.now()
	index, key, set := up.Index, up.Key, deepCopyUploads(u.Status.Uploads)
	err := s.status.WriteOutcome(ctx, u, func(x *upv1.UserPackageUpload) {
		mine := uploadAt(x, index, key, set)
		abandon(x, mine, "", taken, at)
		mine.Filename = filenames.ForChunk(x, index)
	})
	if err != nil {
		return err
	}
	return failInitiate(u, classify.Retry(upv1.ReasonOutcomeUnknown, renameDelay,
		"the filename %s was taken by an initiate call whose answer was lost; initiating again as %s", taken, s.upload().Filename))
}

// filenameRefused reports whether WeChat Pay refused the call for its filename.
func filenameRefused(err error, filename string) bool {
	var api *wechatpay.APIError
	return errors.As(err, &api) && api.StatusCode == 400 &&
		(strings.Contains(api.Message, filename) || strings.Contains(strings.ToLower(api.Message), "filename"))
}

func failInitiate(u *upv1.UserPackageUpload, err error) error {
	return failCondition(u, upv1.ConditionInitiated, err)
}

func initiateRequest(u *upv1.UserPackageUpload, up *upv1.UploadStatus) wechatpay.InitiateUploadRequest {
	packageType := wechatpay.PackageTypeExposure
	if u.Spec.File.PackageType == upv1.PackageTypeRisk {
		packageType = wechatpay.PackageTypeRisk
	}
	dataType := wechatpay.DataTypePhone
	if u.Spec.File.DataType == upv1.DataTypeOpenID {
		dataType = wechatpay.DataTypeOpenID
	}
	return wechatpay.InitiateUploadRequest{
		Filename:    up.Filename,
		Digest:      strings.TrimPrefix(up.Digest, digestPrefix),
		PackageType: packageType,
		DataType:    dataType,
		Description: u.Spec.File.Description,
		FileSize:    up.Size,
	}
}

func setPlan(up *upv1.UploadStatus, resp *wechatpay.InitiateUploadResponse, at *metav1.Time) {
	up.ID = resp.UploadID
	up.PartSize = resp.FilePartSize
	up.PartCount = resp.FilePartCount
	up.ReturnMessage = resp.ReturnMessage
	up.InitiatedAt = at
	parts.SetProgress(up)
}
