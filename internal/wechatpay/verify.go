package wechatpay

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Response headers of a signed WeChat Pay answer.
const (
	HeaderTimestamp     = "Wechatpay-Timestamp"
	HeaderNonce         = "Wechatpay-Nonce"
	HeaderSignature     = "Wechatpay-Signature"
	HeaderSerial        = "Wechatpay-Serial"
	HeaderSignatureType = "Wechatpay-Signature-Type"
	HeaderRequestID     = "Request-ID"
)

// MaxClockSkew is how far a response timestamp may be from now; the official
// SDKs refuse 5 minutes or more.
const MaxClockSkew = 5 * time.Minute

// ErrVerification is wrapped by every *VerificationError.
var ErrVerification = errors.New("response verification failed")

// VerificationError says why a response could not be trusted. It is terminal:
// an unverifiable 2xx is never a success.
type VerificationError struct {
	StatusCode int
	RequestID  string
	Reason     string
}

func (e *VerificationError) Error() string {
	msg := fmt.Sprintf("response verification failed: %s", e.Reason)
	if e.StatusCode != 0 {
		msg += fmt.Sprintf(" (HTTP %d", e.StatusCode)
		if e.RequestID != "" {
			msg += ", request id " + e.RequestID
		}
		msg += ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrVerification) true.
func (e *VerificationError) Is(target error) bool { return target == ErrVerification }

// VerifyResponse checks a response as the documentation says: the
// Wechatpay-Serial header equals publicKeyID, Wechatpay-Timestamp is less than
// MaxClockSkew away from now, and Wechatpay-Signature is a SHA256withRSA
// signature by publicKey of TIMESTAMP\nNONCE\nBODY\n over the raw body.
// It returns a *VerificationError.
func VerifyResponse(header http.Header, body []byte, publicKeyID string, publicKey *rsa.PublicKey, now time.Time) error {
	fail := func(format string, args ...any) error {
		return &VerificationError{RequestID: header.Get(HeaderRequestID), Reason: fmt.Sprintf(format, args...)}
	}
	timestamp, nonce := header.Get(HeaderTimestamp), header.Get(HeaderNonce)
	signature, serial := header.Get(HeaderSignature), header.Get(HeaderSerial)
	for _, h := range [][2]string{{HeaderTimestamp, timestamp}, {HeaderNonce, nonce}, {HeaderSignature, signature}, {HeaderSerial, serial}} {
		if h[1] == "" {
			return fail("missing %s header", h[0])
		}
	}
	if serial != publicKeyID {
		return fail("%s is %q, want the configured public key ID %q", HeaderSerial, serial, publicKeyID)
	}
	if err := checkTimestamp(timestamp, now); err != nil {
		return fail("%v", err)
	}
	if err := VerifySignature(publicKey, ResponseMessage(timestamp, nonce, body), signature); err != nil {
		return fail("%v", err)
	}
	return nil
}

// checkTimestamp refuses a Unix-seconds timestamp MaxClockSkew or more away from now.
func checkTimestamp(timestamp string, now time.Time) error {
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%s is not Unix seconds", HeaderTimestamp)
	}
	skew := now.Sub(time.Unix(secs, 0))
	if skew >= MaxClockSkew || skew <= -MaxClockSkew {
		return fmt.Errorf("%s is %s away from now, limit %s", HeaderTimestamp, skew.Truncate(time.Second).Abs(), MaxClockSkew)
	}
	return nil
}
