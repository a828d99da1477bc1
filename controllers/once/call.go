package once

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/controllers/statuswriter"
	"github.com/crowdpack/crowdpack/internal/metrics"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// Caller makes the calls that must happen once of one reconcile of one
// object, on the upload the reconcile works on.
type Caller struct {
	Object *upv1.UserPackageUpload
	// Upload is the upload the call is about. Status is replaced by every
	// write, so it is asked again after each.
	Upload  func() *upv1.UploadStatus
	Status  *statuswriter.Writer
	Ledger  *Ledger
	Answers *Answers
	Now     func() *metav1.Time
	// Warn records a Warning event about the object.
	Warn func(reason, message string)
}

// Call makes the call; lost tells that an earlier call's outcome is
// unknown, so that a refusal as "already done" may mean success. It returns
// what to record in the upload's status.
type Call func(lost bool) (outcome func(*upv1.UploadStatus), err error)

// Do makes a call that must happen once per upload, so that every
// call that may have reached WeChat Pay is resolved:
//
//   - a pending mark is written before the call with a conflict-checked
//     update (a stale cache then conflicts instead of calling twice);
//   - the outcome is recorded, and the mark cleared, by the reconcile's next
//     write (one write fewer than a write of its own): the next call's
//     conflict-checked mark (merge's answer reaches status before expand is
//     called), a progress write or the last patch, each of which, when it
//     fails, is followed by a write that retries through conflicts and short
//     API server outages (statuswriter.Writer.Finish); initiate's answer is saved
//     at once, before any part goes out (the uploads reconciler saves it);
//   - until a write carries it, the answer is also kept in memory (the
//     Answers): a reconcile after a failed write takes it from there
//     instead of calling again;
//   - a call surely not processed (refused, never sent) clears the mark;
//     any other failure keeps it, and the next attempt counts an unknown
//     outcome, says so in a Warning event and calls again.
//
// called tells that the call was made and answered. It returns a
// *statuswriter.ClaimError, a write error, or the call's error classified
// (a *classify.StallError or *classify.RetryError with the client's error
// as cause).
func (c *Caller) Do(ctx context.Context, m Marker, call Call) (called bool, err error) {
	if c.recallAnswer(m) {
		return false, nil
	}
	retried, err := c.mark(ctx, m)
	if err != nil {
		return false, err
	}
	up := c.Upload() // as the API server wrote it
	if retried {
		c.Warn(upv1.ReasonOutcomeUnknown, outcomeUnknownMessage(m.Call, *m.Unknown(up)))
		metrics.ObserveUnknownOutcome(m.Call)
	}
	outcome, callErr := call(*m.Unknown(up) > 0)
	if callErr != nil && wechatpay.MayHaveReachedServer(callErr) {
		return false, classify.WeChatPay(callErr)
	}
	c.resolve(m, outcome)
	if callErr != nil {
		return false, classify.WeChatPay(callErr)
	}
	c.Answers.Put(c.key(), m.AnswerKey(c.Upload().Key), outcome)
	return true, nil
}

func (c *Caller) key() client.ObjectKey { return client.ObjectKeyFromObject(c.Object) }

// recallAnswer resolves a call whose answer this process had but could not
// write, and reports whether it did.
func (c *Caller) recallAnswer(m Marker) bool {
	if !m.Pending(c.Upload()) {
		return false
	}
	outcome, ok := c.Answers.Take(c.key(), m.AnswerKey(c.Upload().Key))
	if ok {
		c.resolve(m, outcome)
	}
	return ok
}

// mark writes the call's pending mark with a conflict-checked update, and
// reports whether an earlier call's mark was found (its outcome unknown).
// Initiate's mark may already be written, with the first word about a new
// object (Ledger).
func (c *Caller) mark(ctx context.Context, m Marker) (retried bool, err error) {
	if m.Early && c.Ledger.Spend() {
		return false, nil
	}
	up := c.Upload()
	before := up.DeepCopy()
	retried = m.Pending(up)
	if retried {
		*m.Unknown(up)++
	}
	m.Set(up, *c.Now())
	if err := c.Status.Claim(ctx, c.Object); err != nil {
		*c.Upload() = *before // the intent was not written: it must not be by anything else
		return false, err
	}
	return retried, nil
}

// resolve clears the pending mark of a call whose outcome is known, and
// applies the outcome, for the next write to carry.
func (c *Caller) resolve(m Marker, outcome func(*upv1.UploadStatus)) {
	up := c.Upload()
	m.Clear(up)
	if outcome != nil {
		outcome(up)
	}
	c.Status.Keep()
}

// outcomeUnknownMessage says a call is made again after its answer was lost.
func outcomeUnknownMessage(call string, unknown int32) string {
	return fmt.Sprintf("the answer to %s was lost (%d so far); calling it again", call, unknown)
}
