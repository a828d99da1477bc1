package controllers

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/metrics"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// marker says where status keeps the trace of one call that must happen
// once per upload: a pending mark, set before the call until its outcome is
// recorded, and the count of calls whose outcome was never known.
type marker struct {
	call string // the call, for messages
	// subject tells calls of one kind on one upload apart (expand: the package).
	subject string
	// early tells that the mark may have been written ahead, with the
	// first word about a new object (sayProgressing).
	early   bool
	pending func(*upv1.UploadStatus) bool
	set     func(*upv1.UploadStatus, metav1.Time)
	clear   func(*upv1.UploadStatus)
	unknown func(*upv1.UploadStatus) *int32
}

// initiate's answer is written before any part is sent (reconcileInitiate
// saves it): a part sent for an upload_id that status does not hold would
// leave, after a crash, a session WeChat Pay knows and the operator does
// not, and a filename it refuses to take again.
var initiateMarker = marker{
	call:    "initiate upload",
	early:   true,
	pending: func(up *upv1.UploadStatus) bool { return up.InitiatingSince != nil },
	set:     func(up *upv1.UploadStatus, at metav1.Time) { up.InitiatingSince = &at },
	clear:   func(up *upv1.UploadStatus) { up.InitiatingSince = nil },
	unknown: func(up *upv1.UploadStatus) *int32 { return &up.UnknownOutcomes },
}

var mergeMarker = marker{
	call:    "merge",
	pending: func(up *upv1.UploadStatus) bool { return up.MergingSince != nil },
	set:     func(up *upv1.UploadStatus, at metav1.Time) { up.MergingSince = &at },
	clear:   func(up *upv1.UploadStatus) { up.MergingSince = nil },
	unknown: func(up *upv1.UploadStatus) *int32 { return &up.MergeUnknownOutcomes },
}

func expandMarker(userPackageID string) marker {
	return marker{
		call:    "expand",
		subject: userPackageID,
		pending: func(up *upv1.UploadStatus) bool { return up.Expanding != nil },
		set: func(up *upv1.UploadStatus, at metav1.Time) {
			up.Expanding = &upv1.PendingExpand{UserPackageID: userPackageID, Since: at}
		},
		clear:   func(up *upv1.UploadStatus) { up.Expanding = nil },
		unknown: func(up *upv1.UploadStatus) *int32 { return &up.ExpandUnknownOutcomes },
	}
}

// onceCall makes the call; lost tells that an earlier call's outcome is
// unknown, so that a refusal as "already done" may mean success. It returns
// what to record in the upload's status.
type onceCall func(wc wechatpay.API, lost bool) (outcome func(*upv1.UploadStatus), err error)

// callOnce makes a call that must happen once per upload, so that every
// call that may have reached WeChat Pay is resolved:
//
//   - a pending mark is written before the call with a conflict-checked
//     update (a stale cache then conflicts instead of calling twice);
//   - the outcome is recorded, and the mark cleared, by the reconcile's next
//     write (one write fewer than a write of its own): the next call's
//     conflict-checked mark (merge's answer reaches status before expand is
//     called), a progress write or the last patch, each of which, when it
//     fails, is followed by a write that retries through conflicts and short
//     API server outages (statusWriter.finish); initiate's answer is saved
//     at once, before any part goes out (reconcileInitiate);
//   - until a write carries it, the answer is also kept in memory (the
//     answer book): a reconcile after a failed write takes it from there
//     instead of calling again;
//   - a call surely not processed (refused, never sent) clears the mark;
//     any other failure keeps it, and the next attempt counts an unknown
//     outcome, says so in a Warning event and calls again.
//
// It returns a *claimError, a write error, or the call's error classified
// (a *stallError or *retryError with the client's error as cause).
func (s *scope) callOnce(ctx context.Context, m marker, call onceCall) error {
	wc, err := s.weChatPay(ctx)
	if err != nil {
		return err
	}
	if s.recallAnswer(m) {
		return nil
	}
	retried, err := s.mark(ctx, m)
	if err != nil {
		return err
	}
	up := s.upload() // as the API server wrote it
	if retried {
		s.event(corev1.EventTypeWarning, upv1.ReasonOutcomeUnknown, outcomeUnknownMessage(m.call, *m.unknown(up)))
		metrics.ObserveUnknownOutcome(m.call)
	}
	outcome, callErr := call(wc, *m.unknown(up) > 0)
	s.calledWeChatPay = s.calledWeChatPay || callErr == nil
	if callErr != nil && wechatpay.MayHaveReachedServer(callErr) {
		return weChatPayError(callErr)
	}
	s.resolve(m, outcome)
	if callErr != nil {
		return weChatPayError(callErr)
	}
	s.answers.put(s.key(), s.answerKey(m), outcome)
	return nil
}

// recallAnswer resolves a call whose answer this process had but could not
// write, and reports whether it did.
func (s *scope) recallAnswer(m marker) bool {
	if !m.pending(s.upload()) {
		return false
	}
	outcome, ok := s.answers.take(s.key(), s.answerKey(m))
	if ok {
		s.resolve(m, outcome)
	}
	return ok
}

// answerKey names the call m on the chunk's upload in the answer book.
func (s *scope) answerKey(m marker) string {
	return m.call + "\x00" + m.subject + "\x00" + s.upload().Key
}

// mark writes the call's pending mark with a conflict-checked update, and
// reports whether an earlier call's mark was found (its outcome unknown).
// Initiate's mark may already be written, with the first word about a new
// object (sayProgressing).
func (s *scope) mark(ctx context.Context, m marker) (retried bool, err error) {
	if m.early && s.preclaimed {
		s.preclaimed = false
		return false, nil
	}
	u := s.obj
	up := s.upload()
	before := up.DeepCopy()
	retried = m.pending(up)
	if retried {
		*m.unknown(up)++
	}
	m.set(up, *s.now())
	if err := s.status.claim(ctx, u); err != nil {
		*s.upload() = *before // the intent was not written: it must not be by anything else
		return false, err
	}
	return retried, nil
}

// resolve clears the pending mark of a call whose outcome is known, and
// applies the outcome, for the next write to carry.
func (s *scope) resolve(m marker, outcome func(*upv1.UploadStatus)) {
	up := s.upload()
	m.clear(up)
	if outcome != nil {
		outcome(up)
	}
	s.status.keep()
}

// refusedAsDone reports whether WeChat Pay refused a call as a business
// rule (400 INVALID_REQUEST). After a lost answer this is taken to mean
// the lost call did it: "already merged", "already expanded" [inferred:
// the documentation names no distinct code for these refusals].
func refusedAsDone(err error) bool {
	var api *wechatpay.APIError
	return errors.As(err, &api) && api.StatusCode == 400 && api.Code == wechatpay.CodeInvalidRequest
}
