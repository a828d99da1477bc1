package wechatpay

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// AuthScheme is the Authorization scheme of the brand API.
const AuthScheme = "WECHATPAY-BRAND-SHA256-RSA2048"

// SignatureType is what the brand API sends in Wechatpay-Signature-Type (the
// merchant API sends WECHATPAY2-SHA256-RSA2048); the client does not rely on it.
const SignatureType = "WECHATPAY-BRAND-SHA256-RSA2048"

// NonceLength is the length of the nonces this package makes, as the SDKs do.
const NonceLength = 32

// The five Authorization parameters.
const (
	paramBrandID   = "brand_id"
	paramNonce     = "nonce_str"
	paramSignature = "signature"
	paramTimestamp = "timestamp"
	paramSerialNo  = "serial_no"
)

// ErrMalformedAuthorization is wrapped by every ParseAuthorization error.
var ErrMalformedAuthorization = errors.New("malformed Authorization header")

// AuthParams are the five parameters of the Authorization header.
type AuthParams struct {
	BrandID   string
	NonceStr  string
	Signature string // standard Base64
	Timestamp string // Unix seconds, as sent
	SerialNo  string // brand API certificate serial
}

// SignatureMessage is the documented string to sign:
// METHOD\nCANONICAL_URL\nTIMESTAMP\nNONCE\nBODY\n, where canonicalURL is the
// path plus "?query" exactly as sent and body is the exact request body (for
// a multipart upload, the meta JSON).
func SignatureMessage(method, canonicalURL, timestamp, nonce string, body []byte) []byte {
	var b strings.Builder
	b.Grow(len(method) + len(canonicalURL) + len(timestamp) + len(nonce) + len(body) + 5)
	for _, line := range []string{strings.ToUpper(method), canonicalURL, timestamp, nonce, string(body)} {
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// ResponseMessage is the documented string to verify: TIMESTAMP\nNONCE\nBODY\n
// over the raw body bytes.
func ResponseMessage(timestamp, nonce string, body []byte) []byte {
	msg := make([]byte, 0, len(timestamp)+len(nonce)+len(body)+3)
	msg = append(msg, timestamp...)
	msg = append(msg, '\n')
	msg = append(msg, nonce...)
	msg = append(msg, '\n')
	msg = append(msg, body...)
	return append(msg, '\n')
}

// Sign returns the standard-Base64 SHA256withRSA (PKCS#1 v1.5) signature of msg.
func Sign(key *rsa.PrivateKey, msg []byte) (string, error) {
	digest := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// VerifySignature checks a standard-Base64 SHA256withRSA signature of msg.
func VerifySignature(key *rsa.PublicKey, msg []byte, signature string) error {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return errors.New("signature is not standard Base64")
	}
	digest := sha256.Sum256(msg)
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig); err != nil {
		return errors.New("signature does not match")
	}
	return nil
}

// NewNonce returns NonceLength random characters of [0-9A-Za-z] from crypto/rand.
func NewNonce() (string, error) {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	const unbiased = 256 - 256%len(alphabet) // reject bytes that would favour the first letters
	out := make([]byte, 0, NonceLength)
	buf := make([]byte, NonceLength*2)
	for len(out) < NonceLength {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("nonce: %w", err)
		}
		for _, c := range buf {
			if int(c) < unbiased && len(out) < NonceLength {
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}

// BuildAuthorization renders the Authorization header value in the
// documented form: the scheme, one space, five key="value" pairs joined by
// commas without spaces.
func BuildAuthorization(p AuthParams) string {
	return fmt.Sprintf(`%s %s="%s",%s="%s",%s="%s",%s="%s",%s="%s"`, AuthScheme,
		paramBrandID, p.BrandID, paramNonce, p.NonceStr, paramSignature, p.Signature,
		paramTimestamp, p.Timestamp, paramSerialNo, p.SerialNo)
}

// ParseAuthorization strictly parses an Authorization header value: exactly
// the scheme and one space, then the five key="value" pairs in any order,
// comma-separated, no spaces, no duplicates, no unknown keys, no empty values;
// values are printable ASCII without quotes.
func ParseAuthorization(header string) (AuthParams, error) {
	rest, ok := strings.CutPrefix(header, AuthScheme+" ")
	if !ok {
		return AuthParams{}, fmt.Errorf("%w: scheme is not %s", ErrMalformedAuthorization, AuthScheme)
	}
	var p AuthParams
	fields := map[string]*string{
		paramBrandID: &p.BrandID, paramNonce: &p.NonceStr, paramSignature: &p.Signature,
		paramTimestamp: &p.Timestamp, paramSerialNo: &p.SerialNo,
	}
	seen := map[string]bool{}
	for i, pair := range strings.Split(rest, ",") {
		key, value, err := parsePair(pair)
		if err != nil {
			return AuthParams{}, fmt.Errorf("%w: pair %d: %v", ErrMalformedAuthorization, i+1, err)
		}
		dst, known := fields[key]
		if !known {
			return AuthParams{}, fmt.Errorf("%w: unknown parameter %q", ErrMalformedAuthorization, key)
		}
		if seen[key] {
			return AuthParams{}, fmt.Errorf("%w: duplicate parameter %q", ErrMalformedAuthorization, key)
		}
		seen[key] = true
		*dst = value
	}
	for _, key := range []string{paramBrandID, paramNonce, paramSignature, paramTimestamp, paramSerialNo} {
		if !seen[key] {
			return AuthParams{}, fmt.Errorf("%w: missing parameter %q", ErrMalformedAuthorization, key)
		}
	}
	return p, nil
}

// parsePair splits one key="value" pair.
func parsePair(pair string) (key, value string, err error) {
	key, quoted, ok := strings.Cut(pair, "=")
	if !ok {
		return "", "", errors.New(`want key="value"`)
	}
	if !isParamKey(key) {
		return "", "", errors.New("key must be lower-case letters and underscores")
	}
	if len(quoted) < 2 || quoted[0] != '"' || quoted[len(quoted)-1] != '"' {
		return "", "", errors.New("value must be in double quotes")
	}
	value = quoted[1 : len(quoted)-1]
	if value == "" {
		return "", "", errors.New("empty value")
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c <= ' ' || c > '~' || c == '"' {
			return "", "", errors.New("value holds a space, quote or non-printable character")
		}
	}
	return key, value, nil
}

func isParamKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}
