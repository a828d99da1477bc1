package controllers

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// stallError stops work until a human changes the spec, a referenced
// Secret or the file: it is never retried on a timer.
type stallError struct {
	reason  string
	message string
	cause   error
}

func (e *stallError) Error() string { return e.message }
func (e *stallError) Unwrap() error { return e.cause }

// stall says what a human must fix; the first error among args is kept as
// the cause, for errors.Is and errors.As.
func stall(reason, format string, args ...any) error {
	return &stallError{reason: reason, message: fmt.Sprintf(format, args...), cause: firstError(args)}
}

// retryError is transient: the reconcile is retried with backoff, or after
// the delay the other side asked for.
type retryError struct {
	reason  string
	message string
	after   time.Duration
	cause   error
}

func (e *retryError) Error() string { return e.message }
func (e *retryError) Unwrap() error { return e.cause }

// retry says what failed and when to try again; the first error among args
// is kept as the cause.
func retry(reason string, after time.Duration, format string, args ...any) error {
	return &retryError{reason: reason, after: after, message: fmt.Sprintf(format, args...), cause: firstError(args)}
}

// because sets the cause of a stall or retry whose message was built from
// cause's text rather than from cause itself.
func because(classified, cause error) error {
	var s *stallError
	var r *retryError
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

// stableMessage is err's message without what changes from one retry of
// the same failure to the next — WeChat Pay's request ID, the number of the
// part that failed, the local port of a broken connection — since a
// condition whose message changed on each retry would raise an event each time.
func stableMessage(err error) string {
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

// isClassified reports whether err already says whether to stall or retry.
func isClassified(err error) bool {
	var s *stallError
	var r *retryError
	return errors.As(err, &s) || errors.As(err, &r)
}

// sourceError sorts an error from reading object storage. Its message names
// the object but never credentials or URL queries (package source sees to it).
func sourceError(err error) error {
	switch {
	case errors.Is(err, source.ErrNotFound):
		return stall(upv1.ReasonSourceNotFound, "%v; check spec.source", err)
	case errors.Is(err, source.ErrAccessDenied):
		return stall(upv1.ReasonSourceAccessDenied, "%v; check the storage credentials in spec.source.*.secretRef and the bucket policy", err)
	case errors.Is(err, source.ErrChanged):
		return stall(upv1.ReasonSourceChanged,
			"%v; the file changed while it was being uploaded: a mix of two versions is never sent. Request a reconcile (annotation %s) to read the new version and start a new upload",
			err, upv1.ReconcileRequestAnnotation)
	case errors.Is(err, source.ErrAddressDenied):
		return stall(upv1.ReasonSourceAddressDenied, "%v", err)
	case errors.Is(err, source.ErrInsecureDenied):
		return stall(upv1.ReasonInsecureSourceDenied, "%v", err)
	case errors.Is(err, source.ErrTooLarge):
		return stall(upv1.ReasonSourceTooLarge, "%v", err)
	case errors.Is(err, source.ErrInvalidConfig):
		return stall(upv1.ReasonInvalidSpec, "%v; check spec.source", err)
	case errors.Is(err, source.ErrTooSlow):
		return because(retry(upv1.ReasonSourceTooSlow, 0, "%s; retrying", stableMessage(err)), err)
	default:
		return because(retry(upv1.ReasonSourceUnavailable, 0, "%s; retrying", stableMessage(err)), err)
	}
}

// weChatPayError sorts an error from the brand API client, whose message
// already names the operation.
func weChatPayError(err error) error {
	var api *wechatpay.APIError
	var creds *wechatpay.CredentialsError
	isAPI := errors.As(err, &api)
	switch class := wechatpay.Classify(err); {
	case class == wechatpay.Retryable && isAPI && api.StatusCode == 429:
		return because(retry(upv1.ReasonWeChatPayRateLimited, api.RetryAfter, "%s; retrying after the delay WeChat Pay asked for", stableMessage(err)), err)
	case class == wechatpay.Retryable:
		return because(retry(upv1.ReasonWeChatPayUnavailable, wechatpay.RetryAfter(err), "%s; retrying", stableMessage(err)), err)
	case class == wechatpay.Canceled:
		return err
	case errors.As(err, &creds):
		return stall(upv1.ReasonInvalidCredentials, "%v; fix the brand's credentials Secret (spec.credentialsRef, or the Secret of the WeChatPayBrand spec.brandRef names)", err)
	case isAPI && api.StatusCode == 401:
		return stall(upv1.ReasonWeChatPayAuthFailed,
			"%v; check apiclient_key.pem and certificate_serial_no in the brand's credentials Secret (spec.credentialsRef, or the Secret of the WeChatPayBrand spec.brandRef names)", err)
	case isAPI:
		return stall(upv1.ReasonWeChatPayRejected, "%v; fix the spec or the file and apply again", err)
	case errors.Is(err, wechatpay.ErrVerification):
		return stall(upv1.ReasonResponseUnverified,
			"%v; the answer could not be verified and was not trusted: check wxp_pub.pem and wechatpay_public_key_id in the brand's credentials Secret, and the --wechatpay-endpoint", err)
	default:
		var invalid *wechatpay.ValidationError
		if errors.As(err, &invalid) {
			return stall(upv1.ReasonInvalidSpec, "%v", err)
		}
		return stall(upv1.ReasonWeChatPayRejected, "%v", err)
	}
}

// failCondition sets a domain condition False with the error's reason.
func failCondition(u *upv1.UserPackageUpload, condition string, err error) error {
	reason := upv1.ReasonProgressing
	var s *stallError
	var rt *retryError
	switch {
	case errors.As(err, &s):
		reason = s.reason
	case errors.As(err, &rt):
		reason = rt.reason
	}
	setCondition(u, condition, metav1.ConditionFalse, reason, err.Error())
	return err
}
