package classify

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

func TestErrorsAreSortedIntoStallsAndRetries(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStall  bool
		wantReason string
		wantAfter  time.Duration
	}{
		{name: "a 500 is retried", err: &wechatpay.APIError{StatusCode: 500, Code: "SYSTEM_ERROR"}, wantReason: upv1.ReasonWeChatPayUnavailable},
		{name: "a 429 is retried after its Retry-After", err: &wechatpay.APIError{StatusCode: 429, RetryAfter: 7 * time.Second}, wantReason: upv1.ReasonWeChatPayRateLimited, wantAfter: 7 * time.Second},
		{name: "a 202 is retried", err: &wechatpay.APIError{StatusCode: http.StatusAccepted}, wantReason: upv1.ReasonWeChatPayUnavailable},
		{name: "a lost connection is retried", err: &wechatpay.TransportError{MayHaveReachedServer: true, Err: errors.New("EOF")}, wantReason: upv1.ReasonWeChatPayUnavailable},
		{name: "a 400 PARAM_ERROR stalls", err: &wechatpay.APIError{StatusCode: 400, Code: "PARAM_ERROR"}, wantStall: true, wantReason: upv1.ReasonWeChatPayRejected},
		{name: "a 401 SIGN_ERROR stalls on the credentials", err: &wechatpay.APIError{StatusCode: 401, Code: "SIGN_ERROR"}, wantStall: true, wantReason: upv1.ReasonWeChatPayAuthFailed},
		{name: "a 403 NO_AUTH stalls", err: &wechatpay.APIError{StatusCode: 403, Code: "NO_AUTH"}, wantStall: true, wantReason: upv1.ReasonWeChatPayRejected},
		{name: "an unverifiable answer stalls", err: &wechatpay.VerificationError{Reason: "bad signature"}, wantStall: true, wantReason: upv1.ReasonResponseUnverified},
		{name: "a missing object stalls", err: fmt.Errorf("get: %w", source.ErrNotFound), wantStall: true, wantReason: upv1.ReasonSourceNotFound},
		{name: "a forbidden object stalls", err: fmt.Errorf("get: %w", source.ErrAccessDenied), wantStall: true, wantReason: upv1.ReasonSourceAccessDenied},
		{name: "a changed object stalls", err: fmt.Errorf("range: %w", source.ErrChanged), wantStall: true, wantReason: upv1.ReasonSourceChanged},
		{name: "an unreachable store is retried", err: errors.New("dial tcp: connection refused"), wantReason: upv1.ReasonSourceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got error
			if isSourceCase(tt.err) {
				got = Source(tt.err)
			} else {
				got = WeChatPay(tt.err)
			}
			var s *StallError
			var r *RetryError
			switch {
			case errors.As(got, &s):
				if !tt.wantStall || s.Reason != tt.wantReason {
					t.Errorf("stalled with %s, want stall=%v %s", s.Reason, tt.wantStall, tt.wantReason)
				}
			case errors.As(got, &r):
				if tt.wantStall || r.Reason != tt.wantReason || r.After != tt.wantAfter {
					t.Errorf("retried with %s after %s, want stall=%v %s after %s", r.Reason, r.After, tt.wantStall, tt.wantReason, tt.wantAfter)
				}
			default:
				t.Fatalf("unclassified: %v", got)
			}
		})
	}
}

// isSourceCase tells the table's storage errors from its WeChat Pay ones.
func isSourceCase(err error) bool {
	var api *wechatpay.APIError
	var tr *wechatpay.TransportError
	var ve *wechatpay.VerificationError
	return !errors.As(err, &api) && !errors.As(err, &tr) && !errors.As(err, &ve) && !strings.Contains(err.Error(), "wechat")
}

func TestStableMessageLeavesOutWhatChangesFromRetryToRetry(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp",
		Source: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 43121},
		Addr:   &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9000},
		Err:    errors.New("connection reset by peer")}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{
			name: "WeChat Pay's request id is left out",
			err:  fmt.Errorf("initiate upload: %w", &wechatpay.APIError{StatusCode: 503, Code: "SERVICE_UNAVAILABLE", RequestID: "abc123"}),
			want: "initiate upload: wechat pay answered HTTP 503 SERVICE_UNAVAILABLE",
		},
		{
			name: "the number of the failing part is left out",
			err:  fmt.Errorf("upload part 17: %w", &wechatpay.APIError{StatusCode: 500, Code: "SYSTEM_ERROR"}),
			want: "upload part: wechat pay answered HTTP 500 SYSTEM_ERROR",
		},
		{
			name: "the local port of a broken connection is left out",
			err:  fmt.Errorf("get s3://b/k: %w", reset),
			want: "get s3://b/k: read tcp 127.0.0.1:9000: connection reset by peer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StableMessage(tt.err); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
