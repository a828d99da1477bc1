package uploads

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/once"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// onceCall makes the call with the brand API client; lost tells that an
// earlier call's outcome is unknown. It returns what to record in the
// upload's status.
type onceCall func(wc wechatpay.API, lost bool) (outcome func(*upv1.UploadStatus), err error)

// callOnce makes a call that must happen once per upload, on the chunk's
// upload, by the protocol of once.Caller.Do.
func (s *scope) callOnce(ctx context.Context, m once.Marker, call onceCall) error {
	wc, err := s.weChatPay(ctx)
	if err != nil {
		return err
	}
	called, err := s.onceCaller().Do(ctx, m, func(lost bool) (func(*upv1.UploadStatus), error) { return call(wc, lost) })
	s.calledWeChatPay = s.calledWeChatPay || called
	return err
}

// onceCaller is the caller of the calls that must happen once, for this reconcile.
func (s *scope) onceCaller() *once.Caller {
	return &once.Caller{
		Object: s.obj, Upload: s.upload, Status: s.status, Ledger: s.ledger, Answers: s.answers, Now: s.now,
		Warn: func(reason, message string) { s.event(corev1.EventTypeWarning, reason, message) },
	}
}
