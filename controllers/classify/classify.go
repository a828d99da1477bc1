// Package classify sorts errors into the two outcomes a reconcile knows
// besides success: a stall, which waits for a human to change something,
// and a retry, which backs off and tries again. Every reconciler reads
// them the same way, so a reason and a message reach status unchanged.
package classify

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// StallError stops work until a human changes the spec, a referenced
// Secret or the file: it is never retried on a timer.
type StallError struct {
	Reason  string
	Message string
	cause   error
}

func (e *StallError) Error() string { return e.Message }
func (e *StallError) Unwrap() error { return e.cause }

// Stall says what a human must fix; the first error among args is kept as
// the cause, for errors.Is and errors.As.
func Stall(reason, format string, args ...any) error {
	return &StallError{Reason: reason, Message: fmt.Sprintf(format, args...), cause: firstError(args)}
}

// RetryError is transient: the reconcile is retried with backoff, or after
// the delay the other side asked for.
type RetryError struct {
	Reason  string
	Message string
	// After is the delay the other side asked for; zero: backoff.
	After time.Duration
	cause error
}

func (e *RetryError) Error() string { return e.Message }
func (e *RetryError) Unwrap() error { return e.cause }

// Retry says what failed and when to try again; the first error among args
// is kept as the cause.
func Retry(reason string, after time.Duration, format string, args ...any) error {
	return &RetryError{Reason: reason, After: after, Message: fmt.Sprintf(format, args...), cause: firstError(args)}
}

// Because sets the cause of a stall or retry whose message was built from
// cause's text rather than from cause itself.
func Because(classified, cause error) error {
	var s *StallError
	var r *RetryError
	switch {
	case errors.As(classified, &s):
		s.cause = cause
	case errors.As(classified, &r):
		r.cause = cause
	}
	return classified
}

func firstError(args []any) error {
	for _, a := range args {
		if err, ok := a.(error); ok {
			return err
		}
	}
	return nil
}

// StableMessage is err's message without what changes from one retry of
// the same failure to the next — WeChat Pay's request ID, the number of the
// part that failed, the local port of a broken connection — since a
// condition whose message changed on each retry would raise an event each time.
func StableMessage(err error) string {
	msg := err.Error()
	var api *wechatpay.APIError
	if errors.As(err, &api) && api.RequestID != "" {
		msg = strings.Replace(msg, " (request id "+api.RequestID+")", "", 1)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Source != nil {
		msg = strings.Replace(msg, op.Error(), fmt.Sprintf("%s %s %v: %v", op.Op, op.Net, op.Addr, op.Err), 1)
	}
	return partNumber.ReplaceAllString(msg, "upload part")
}

var partNumber = regexp.MustCompile(`upload part \d+`)

// IsClassified reports whether err already says whether to stall or retry.
func IsClassified(err error) bool {
	var s *StallError
	var r *RetryError
	return errors.As(err, &s) || errors.As(err, &r)
}

// Source sorts an error from reading object storage. Its message names
// the object but never credentials or URL queries (package source sees to it).
func Source(err error) error {
	switch {
	case errors.Is(err, source.ErrNotFound):
		return Stall(upv1.ReasonSourceNotFound, "%v; check spec.source", err)
	case errors.Is(err, source.ErrAccessDenied):
		return Stall(upv1.ReasonSourceAccessDenied, "%v; check the storage credentials in spec.source.*.secretRef and the bucket policy", err)
	case errors.Is(err, source.ErrChanged):
		return Stall(upv1.ReasonSourceChanged,
			"%v; the file changed while it was being uploaded: a mix of two versions is never sent. Request a reconcile (annotation %s) to read the new version and start a new upload",
			err, upv1.ReconcileRequestAnnotation)
	case errors.Is(err, source.ErrAddressDenied):
		return Stall(upv1.ReasonSourceAddressDenied, "%v", err)
	case errors.Is(err, source.ErrInsecureDenied):
		return Stall(upv1.ReasonInsecureSourceDenied, "%v", err)
	case errors.Is(err, source.ErrTooLarge):
		return Stall(upv1.ReasonSourceTooLarge, "%v", err)
	case errors.Is(err, source.ErrInvalidConfig):
		return Stall(upv1.ReasonInvalidSpec, "%v; check spec.source", err)
	case errors.Is(err, source.ErrTooSlow):
		return Because(Retry(upv1.ReasonSourceTooSlow, 0, "%s; retrying", StableMessage(err)), err)
	default:
		return Because(Retry(upv1.ReasonSourceUnavailable, 0, "%s; retrying", StableMessage(err)), err)
	}
}

// WeChatPay sorts an error from the brand API client, whose message
// already names the operation.
func WeChatPay(err error) error {
	var api *wechatpay.APIError
	var creds *wechatpay.CredentialsError
	isAPI := errors.As(err, &api)
	switch class := wechatpay.Classify(err); {
	case class == wechatpay.Retryable && isAPI && api.StatusCode == 429:
		return Because(Retry(upv1.ReasonWeChatPayRateLimited, api.RetryAfter, "%s; retrying after the delay WeChat Pay asked for", StableMessage(err)), err)
	case class == wechatpay.Retryable:
		return Because(Retry(upv1.ReasonWeChatPayUnavailable, wechatpay.RetryAfter(err), "%s; retrying", StableMessage(err)), err)
	case class == wechatpay.Canceled:
		return err
	case errors.As(err, &creds):
		return Stall(upv1.ReasonInvalidCredentials, "%v; fix the brand's credentials Secret (spec.credentialsRef, or the Secret of the WeChatPayBrand spec.brandRef names)", err)
	case isAPI && api.StatusCode == 401:
		return Stall(upv1.ReasonWeChatPayAuthFailed,
			"%v; check apiclient_key.pem and certificate_serial_no in the brand's credentials Secret (spec.credentialsRef, or the Secret of the WeChatPayBrand spec.brandRef names)", err)
	case isAPI:
		return Stall(upv1.ReasonWeChatPayRejected, "%v; fix the spec or the file and apply again", err)
	case errors.Is(err, wechatpay.ErrVerification):
		return Stall(upv1.ReasonResponseUnverified,
			"%v; the answer could not be verified and was not trusted: check wxp_pub.pem and wechatpay_public_key_id in the brand's credentials Secret, and the --wechatpay-endpoint", err)
	default:
		var invalid *wechatpay.ValidationError
		if errors.As(err, &invalid) {
			return Stall(upv1.ReasonInvalidSpec, "%v", err)
		}
		return Stall(upv1.ReasonWeChatPayRejected, "%v", err)
	}
}

// Prefixed puts prefix before the message of a stall or retry.
func Prefixed(err error, prefix string) error {
	switch e := err.(type) {
	case *StallError:
		return &StallError{Reason: e.Reason, Message: prefix + e.Message, cause: e.cause}
	case *RetryError:
		return &RetryError{Reason: e.Reason, Message: prefix + e.Message, After: e.After, cause: e.cause}
	}
	return err
}

// Reason is the reason of a stall or retry, and fallback for any other error.
func Reason(err error, fallback string) string {
	var s *StallError
	var r *RetryError
	switch {
	case errors.As(err, &s):
		return s.Reason
	case errors.As(err, &r):
		return r.Reason
	}
	return fallback
}
