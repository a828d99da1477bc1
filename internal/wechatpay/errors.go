package wechatpay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error codes of the brand API that callers tell apart.
const (
	CodeParamError        = "PARAM_ERROR"
	CodeInvalidRequest    = "INVALID_REQUEST"
	CodeRateLimitExceeded = "RATELIMIT_EXCEEDED"
)

// APIError is a non-2xx answer, or a verified 202 ("accepted, not processed
// yet, retry the same call").
type APIError struct {
	StatusCode int
	Code       string // e.g. PARAM_ERROR; empty when the body was not the documented JSON
	Message    string // WeChat Pay's own message, shortened
	RequestID  string
	RetryAfter time.Duration // from Retry-After, 0 when absent
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("wechat pay answered HTTP %d", e.StatusCode)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RequestID != "" {
		msg += " (request id " + e.RequestID + ")"
	}
	return msg
}

// TransportError is a failure to get an answer: the host could not be
// reached, the connection dropped or the per-call timeout fired.
type TransportError struct {
	// MayHaveReachedServer is true once the request headers were written: the
	// server may have processed the call even though no answer came back.
	MayHaveReachedServer bool
	Err                  error
}

func (e *TransportError) Error() string {
	if e.MayHaveReachedServer {
		return fmt.Sprintf("no answer after the request was sent (the server may have processed it): %v", e.Err)
	}
	return fmt.Sprintf("could not send the request: %v", e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// CanceledError is returned when the caller's context ended during a call;
// errors.Is(err, context.Canceled or context.DeadlineExceeded) holds.
type CanceledError struct {
	Err error // the context's error
	// MayHaveReachedServer is true when the request had been sent.
	MayHaveReachedServer bool
}

func (e *CanceledError) Error() string { return "call abandoned: " + e.Err.Error() }

func (e *CanceledError) Unwrap() error { return e.Err }

// ValidationError is a request refused before sending because it breaks the
// API's own field rules.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason) }

// Class tells what a caller should do with an error.
type Class int

const (
	// Terminal errors need a human: bad spec, bad credentials, 4xx,
	// verification failures, and any error this package does not know.
	Terminal Class = iota
	// Retryable errors go away with time: network errors, timeouts, 202, 429, 5xx.
	Retryable
	// Canceled means the caller's own context ended; it is neither.
	Canceled
)

func (c Class) String() string {
	switch c {
	case Retryable:
		return "Retryable"
	case Canceled:
		return "Canceled"
	default:
		return "Terminal"
	}
}

// Classify sorts an error from this package. A timeout of one HTTP call is a
// *TransportError (Retryable); the caller's context ending is Canceled.
func Classify(err error) Class {
	var canceled *CanceledError
	var transport *TransportError
	var api *APIError
	switch {
	case err == nil:
		return Terminal
	case errors.As(err, &canceled):
		return Canceled
	case errors.As(err, &transport):
		return Retryable
	case errors.As(err, &api):
		if isRetryableStatus(api.StatusCode) {
			return Retryable
		}
		return Terminal
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return Canceled
	default:
		return Terminal
	}
}

// RetryAfter is the delay WeChat Pay asked for with Retry-After, or 0.
func RetryAfter(err error) time.Duration {
	var api *APIError
	if errors.As(err, &api) {
		return api.RetryAfter
	}
	return 0
}

// MayHaveReachedServer tells whether the server may have acted on a failed
// call, so that its outcome is unknown. Only a call known not to have been
// processed says no: refused before sending (invalid fields, unusable
// credentials), never sent (no connection), or answered with a 4xx (429
// included: "not processed"). Anything else says yes — a lost or timed-out
// answer, 202, 3xx, 5xx, an answer that failed verification, an error this
// package does not know — because treating a processed call as never made
// is what makes a call happen twice.
func MayHaveReachedServer(err error) bool {
	var canceled *CanceledError
	var transport *TransportError
	var api *APIError
	var invalid *ValidationError
	var creds *CredentialsError
	switch {
	case err == nil:
		return true
	case errors.As(err, &canceled):
		return canceled.MayHaveReachedServer
	case errors.As(err, &transport):
		return transport.MayHaveReachedServer
	case errors.As(err, &api):
		return api.StatusCode < 400 || api.StatusCode >= 500
	case errors.As(err, &invalid), errors.As(err, &creds):
		return false
	default:
		return true
	}
}

func isRetryableStatus(code int) bool {
	return code == http.StatusAccepted || code == http.StatusTooManyRequests || code >= 500
}

// MaxRetryAfter caps the delay a Retry-After may ask for: an answer must not
// be able to park an upload for days.
const MaxRetryAfter = 10 * time.Minute

// parseRetryAfter reads Retry-After as seconds or an HTTP date, capped at
// MaxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(min(secs, int64(MaxRetryAfter/time.Second))) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return min(at.Sub(now), MaxRetryAfter)
	}
	return 0
}
