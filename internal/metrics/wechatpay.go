package metrics

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// InstrumentWeChatPay returns c with every call counted in
// crowdpack_wechatpay_requests_total and timed in
// crowdpack_wechatpay_request_duration_seconds.
func InstrumentWeChatPay(c wechatpay.API) wechatpay.API {
	return &instrumentedWeChatPay{next: c}
}

type instrumentedWeChatPay struct{ next wechatpay.API }

func (i *instrumentedWeChatPay) InitiateUpload(ctx context.Context, req wechatpay.InitiateUploadRequest) (*wechatpay.InitiateUploadResponse, error) {
	start := time.Now()
	res, err := i.next.InitiateUpload(ctx, req)
	recordCall(EndpointInitiate, start, err)
	return res, err
}

func (i *instrumentedWeChatPay) UploadPart(ctx context.Context, p wechatpay.Part) (*wechatpay.PartResult, error) {
	start := time.Now()
	res, err := i.next.UploadPart(ctx, p)
	recordCall(EndpointUploadPart, start, err)
	return res, err
}

func (i *instrumentedWeChatPay) MergeParts(ctx context.Context, uploadID string) (*wechatpay.MergeResult, error) {
	start := time.Now()
	res, err := i.next.MergeParts(ctx, uploadID)
	recordCall(EndpointMerge, start, err)
	return res, err
}

func (i *instrumentedWeChatPay) ExpandPackage(ctx context.Context, userPackageID, uploadID string) (*wechatpay.ExpandResult, error) {
	start := time.Now()
	res, err := i.next.ExpandPackage(ctx, userPackageID, uploadID)
	recordCall(EndpointExpand, start, err)
	return res, err
}

func recordCall(endpoint string, start time.Time, err error) {
	WeChatPayDuration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	status, code := statusAndCode(err)
	WeChatPayRequests.WithLabelValues(endpoint, status, code).Inc()
	if after := wechatpay.RetryAfter(err); after > 0 {
		RetryAfter.WithLabelValues(endpoint).Observe(after.Seconds())
	}
}

// CodeUnverified is the code label of a 2xx answer whose signature, serial
// or timestamp did not verify (crowdpack's own marker, not a WeChat Pay
// code): such an answer is an error, never a success.
const CodeUnverified = "UNVERIFIED"

// statusAndCode returns the status and code labels of a call's outcome: "200"
// and "" on success (the brand API answers 200; the client does not expose
// other 2xx codes), the HTTP status and WeChat Pay error code of an
// *wechatpay.APIError (including a verified 202), the status and
// CodeUnverified of an answer that failed verification, and "error" and ""
// when no answer came back.
func statusAndCode(err error) (status, code string) {
	if err == nil {
		return "200", ""
	}
	var apiErr *wechatpay.APIError
	if errors.As(err, &apiErr) {
		return strconv.Itoa(apiErr.StatusCode), apiErr.Code
	}
	var verr *wechatpay.VerificationError
	if errors.As(err, &verr) && verr.StatusCode != 0 {
		return strconv.Itoa(verr.StatusCode), CodeUnverified
	}
	return StatusError, ""
}
