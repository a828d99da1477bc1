package sandbox

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// maxNonceLength is the longest nonce_str accepted: the documented SDKs send 32 characters.
const maxNonceLength = 32

var decimalDigits = regexp.MustCompile(`^[0-9]{1,19}$`)

func signError(format string, args ...any) reply {
	return failure(http.StatusUnauthorized, "SIGN_ERROR", format, args...)
}

// authenticate checks a request as WeChat Pay does, cheapest refusals first:
// the Authorization header (strictly parsed, any parameter order), the shape
// of its values (nonce_str of at most 32 characters, a timestamp of plain
// decimal digits, a signature in canonical standard Base64), a known brand
// and its certificate serial, the timestamp window, the signature over
// the documented message (signed is the BODY line), then the nonce (recorded
// only once the signature holds, so forged calls cannot burn nonces) and
// finally the Wechatpay-Serial header. It notes the claimed brand in rec.
func (s *Server) authenticate(r *http.Request, signed []byte, rec *Record) (reply, bool) {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return signError("want exactly one Authorization header"), false
	}
	p, err := wechatpay.ParseAuthorization(values[0])
	if err != nil {
		return signError("%v", err), false
	}
	rec.BrandID = p.BrandID
	if problem := malformedValues(p); problem != "" {
		return signError("%s", problem), false
	}
	b, ok := s.brands[p.BrandID]
	if !ok {
		return signError("unknown brand_id"), false
	}
	if p.SerialNo != b.serial {
		return signError("serial_no is not the API certificate serial of this brand"), false
	}
	sent, err := strconv.ParseInt(p.Timestamp, 10, 64)
	if err != nil {
		return signError("timestamp is not Unix seconds"), false
	}
	now := s.now()
	if skew := now.Sub(time.Unix(sent, 0)).Abs(); skew > s.window {
		return signError("timestamp is %s away from the server clock, more than %s", skew.Truncate(time.Second), s.window), false
	}
	msg := wechatpay.SignatureMessage(r.Method, r.RequestURI, p.Timestamp, p.NonceStr, signed)
	if wechatpay.VerifySignature(b.key, msg, p.Signature) != nil {
		return signError("signature does not verify with the brand's public key"), false
	}
	if !s.useNonce(p.BrandID, p.NonceStr, now) {
		return signError("nonce_str was already used"), false
	}
	if got := r.Header.Get(wechatpay.HeaderSerial); got != s.publicKeyID {
		return failure(http.StatusBadRequest, "INVALID_REQUEST", "Wechatpay-Serial %q is not the WeChat Pay public key ID of this brand", got), false
	}
	return reply{}, true
}

// malformedValues describes the first Authorization value whose shape the
// sandbox refuses before any key is looked at, or returns "".
func malformedValues(p wechatpay.AuthParams) string {
	switch {
	case len(p.NonceStr) > maxNonceLength:
		return fmt.Sprintf("nonce_str has %d characters, more than %d", len(p.NonceStr), maxNonceLength)
	case !decimalDigits.MatchString(p.Timestamp):
		return "timestamp must be Unix seconds in plain decimal digits"
	}
	// Strict refuses non-zero padding bits, which the lenient decoder lets
	// through (line breaks never get here: ParseAuthorization refuses them).
	if _, err := base64.StdEncoding.Strict().DecodeString(p.Signature); err != nil {
		return "signature is not canonical standard Base64"
	}
	return ""
}

// useNonce records a brand's nonce and reports whether it was fresh. Nonces
// are forgotten after two windows: an older replay fails the timestamp check.
func (s *Server) useNonce(brandID, nonce string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, seen := range s.nonces {
		if now.Sub(seen) > 2*s.window {
			delete(s.nonces, k)
		}
	}
	key := brandID + "\x00" + nonce
	if _, used := s.nonces[key]; used {
		return false
	}
	s.nonces[key] = now
	return true
}
