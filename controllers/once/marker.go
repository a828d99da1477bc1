// Package once is the protocol for the calls to WeChat Pay that must happen
// once per upload (initiate, merge, expand): a pending mark is written
// before the call, the outcome after it, and every call that may have
// reached WeChat Pay is resolved. It holds the marks (Marker), the ledger
// of initiate's mark over one reconcile (Ledger, ledger.go), and what the
// process keeps in memory until a write carries it (Answers, Journal).
package once

import (
	"errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// Marker says where status keeps the trace of one call that must happen
// once per upload: a pending mark, set before the call until its outcome is
// recorded, and the count of calls whose outcome was never known.
type Marker struct {
	Call string // the call, for messages
	// Subject tells calls of one kind on one upload apart (expand: the package).
	Subject string
	// Early tells that the mark may have been written ahead, with the
	// first word about a new object (see Ledger).
	Early   bool
	Pending func(*upv1.UploadStatus) bool
	Set     func(*upv1.UploadStatus, metav1.Time)
	Clear   func(*upv1.UploadStatus)
	Unknown func(*upv1.UploadStatus) *int32
}

// Initiate's answer is written before any part is sent: a part sent for an
// upload_id that status does not hold would leave, after a crash, a session
// WeChat Pay knows and the operator does not, and a filename it refuses to
// take again.
var Initiate = Marker{
	Call:    "initiate upload",
	Early:   true,
	Pending: func(up *upv1.UploadStatus) bool { return up.InitiatingSince != nil },
	Set:     func(up *upv1.UploadStatus, at metav1.Time) { up.InitiatingSince = &at },
	Clear:   func(up *upv1.UploadStatus) { up.InitiatingSince = nil },
	Unknown: func(up *upv1.UploadStatus) *int32 { return &up.UnknownOutcomes },
}

// Merge's answer reaches status before expand is called: expand's mark is
// the write that carries it.
var Merge = Marker{
	Call:    "merge",
	Pending: func(up *upv1.UploadStatus) bool { return up.MergingSince != nil },
	Set:     func(up *upv1.UploadStatus, at metav1.Time) { up.MergingSince = &at },
	Clear:   func(up *upv1.UploadStatus) { up.MergingSince = nil },
	Unknown: func(up *upv1.UploadStatus) *int32 { return &up.MergeUnknownOutcomes },
}

// Expand marks the expansion of one crowd package with the upload.
func Expand(userPackageID string) Marker {
	return Marker{
		Call:    "expand",
		Subject: userPackageID,
		Pending: func(up *upv1.UploadStatus) bool { return up.Expanding != nil },
		Set: func(up *upv1.UploadStatus, at metav1.Time) {
			up.Expanding = &upv1.PendingExpand{UserPackageID: userPackageID, Since: at}
		},
		Clear:   func(up *upv1.UploadStatus) { up.Expanding = nil },
		Unknown: func(up *upv1.UploadStatus) *int32 { return &up.ExpandUnknownOutcomes },
	}
}

// AnswerKey names the call m on the upload key in Answers.
func (m Marker) AnswerKey(uploadKey string) string {
	return m.Call + "\x00" + m.Subject + "\x00" + uploadKey
}

// RefusedAsDone reports whether WeChat Pay refused a call as a business
// rule (400 INVALID_REQUEST). After a lost answer this is taken to mean
// the lost call did it: "already merged", "already expanded" [inferred:
// the documentation names no distinct code for these refusals].
func RefusedAsDone(err error) bool {
	var api *wechatpay.APIError
	return errors.As(err, &api) && api.StatusCode == 400 && api.Code == wechatpay.CodeInvalidRequest
}
