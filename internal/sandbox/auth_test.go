package sandbox_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

func TestSandboxRefusesBadAuthentication(t *testing.T) {
	_, inst := startSandbox(t, true)
	cases := []struct {
		name       string
		creds      func(*wechatpay.Credentials)
		clock      func() time.Time
		wantStatus int
		wantCode   string
	}{
		{name: "a request signed by another brand's key is refused", creds: func(c *wechatpay.Credentials) { c.PrivateKey = brandB.BrandKey }, wantStatus: 401, wantCode: "SIGN_ERROR"},
		{name: "a serial that is not the brand's certificate is refused", creds: func(c *wechatpay.Credentials) { c.CertificateSerialNo = brandB.CertificateSerialNo }, wantStatus: 401, wantCode: "SIGN_ERROR"},
		{name: "an unknown brand is refused", creds: func(c *wechatpay.Credentials) { c.BrandID = "1999999999999" }, wantStatus: 401, wantCode: "SIGN_ERROR"},
		{name: "a timestamp 6 minutes old is refused", clock: func() time.Time { return time.Now().Add(-6 * time.Minute) }, wantStatus: 401, wantCode: "SIGN_ERROR"},
		{name: "a timestamp 6 minutes ahead is refused", clock: func() time.Time { return time.Now().Add(6 * time.Minute) }, wantStatus: 401, wantCode: "SIGN_ERROR"},
		{name: "a Wechatpay-Serial that is not the sandbox's public key ID is refused", creds: func(c *wechatpay.Credentials) { c.PublicKeyID = "PUB_KEY_ID_0000000000000000000000000001" }, wantStatus: 400, wantCode: "INVALID_REQUEST"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			creds := credsA(t)
			if tc.creds != nil {
				tc.creds(creds)
			}
			client := newClient(t, inst, creds, func(c *wechatpay.Config) { c.Now = tc.clock })
			_, err := client.InitiateUpload(context.Background(), initiateFor(fmt.Sprintf("auth_%d.csv", i), csvFile(100)))
			var api *wechatpay.APIError
			if !errors.As(err, &api) || api.StatusCode != tc.wantStatus || api.Code != tc.wantCode {
				t.Fatalf("error %v, want HTTP %d %s", err, tc.wantStatus, tc.wantCode)
			}
			if wechatpay.Classify(err) != wechatpay.Terminal {
				t.Fatalf("classified %v, want Terminal", wechatpay.Classify(err))
			}
		})
	}
	t.Run("a response signed by another WeChat Pay key is refused by the client", func(t *testing.T) {
		creds := credsA(t)
		creds.PublicKey = &brandB.WechatPayKey.PublicKey
		_, err := newClient(t, inst, creds).InitiateUpload(context.Background(), initiateFor("other_key.csv", csvFile(100)))
		if !errors.Is(err, wechatpay.ErrVerification) {
			t.Fatalf("error %v, want a verification failure", err)
		}
	})
}

func TestSandboxChecksTheAuthorizationHeaderItself(t *testing.T) {
	_, inst := startSandbox(t, false)
	const merge = "/brand/marketing/user-package/uploads/unknown-upload"
	reversed := func(p wechatpay.AuthParams) string {
		return fmt.Sprintf(`WECHATPAY-BRAND-SHA256-RSA2048 serial_no="%s",timestamp="%s",signature="%s",nonce_str="%s",brand_id="%s"`, p.SerialNo, p.Timestamp, p.Signature, p.NonceStr, p.BrandID)
	}
	cases := []struct {
		name        string
		req         rawRequest
		wantStatus  int
		wantCode    string
		wantMessage string // part of the message, when set
	}{
		{name: "parameters in another SDK's order are accepted", req: rawRequest{authorization: reversed}, wantStatus: 404, wantCode: "NOT_FOUND"},
		{name: "a header with spaces after the commas is refused", req: rawRequest{authorization: func(p wechatpay.AuthParams) string {
			return strings.ReplaceAll(wechatpay.BuildAuthorization(p), `",`, `", `)
		}}, wantStatus: 401, wantCode: "SIGN_ERROR"},
		{name: "unquoted values are refused", req: rawRequest{authorization: func(p wechatpay.AuthParams) string {
			return strings.ReplaceAll(wechatpay.BuildAuthorization(p), `"`, ``)
		}}, wantStatus: 401, wantCode: "SIGN_ERROR"},
		{name: "the merchant API scheme is refused", req: rawRequest{authorization: func(p wechatpay.AuthParams) string {
			return strings.Replace(wechatpay.BuildAuthorization(p), "WECHATPAY-BRAND-SHA256-RSA2048", "WECHATPAY2-SHA256-RSA2048", 1)
		}}, wantStatus: 401, wantCode: "SIGN_ERROR"},
		{name: "a missing Authorization header is refused", req: rawRequest{authorization: func(wechatpay.AuthParams) string { return "" }}, wantStatus: 401, wantCode: "SIGN_ERROR"},
		{name: "a signature over another URL is refused", req: rawRequest{signedPath: merge + "?x=1"}, wantStatus: 401, wantCode: "SIGN_ERROR"},
		{name: "a timestamp 4 minutes old is accepted", req: rawRequest{at: time.Now().Add(-4 * time.Minute)}, wantStatus: 404, wantCode: "NOT_FOUND"},
		{name: "a missing Wechatpay-Serial is refused", req: rawRequest{wechatpaySerial: " "}, wantStatus: 400, wantCode: "INVALID_REQUEST"},
		{name: "a nonce_str of 32 characters is accepted", req: rawRequest{nonce: strings.Repeat("n", 32)}, wantStatus: 404, wantCode: "NOT_FOUND"},
		{name: "a nonce_str of 33 characters is refused", req: rawRequest{nonce: strings.Repeat("n", 33)}, wantStatus: 401, wantCode: "SIGN_ERROR", wantMessage: "nonce_str"},
		{name: "a timestamp with a plus sign is refused", req: rawRequest{timestamp: "+" + unixNow()}, wantStatus: 401, wantCode: "SIGN_ERROR", wantMessage: "decimal digits"},
		{name: "a timestamp in exponent notation is refused", req: rawRequest{timestamp: "1.8e9"}, wantStatus: 401, wantCode: "SIGN_ERROR", wantMessage: "decimal digits"},
		{name: "a timestamp in milliseconds is refused", req: rawRequest{timestamp: unixNow() + "000"}, wantStatus: 401, wantCode: "SIGN_ERROR"},
		{name: "a signature with non-zero Base64 padding bits is refused", req: rawRequest{alterSignature: setPaddingBits}, wantStatus: 401, wantCode: "SIGN_ERROR", wantMessage: "Base64"},
		{name: "a request without Accept is refused", req: rawRequest{accept: []string{}}, wantStatus: 400, wantCode: "PARAM_ERROR", wantMessage: "Accept"},
		{name: "a request accepting only */* is refused", req: rawRequest{accept: []string{"*/*"}}, wantStatus: 400, wantCode: "PARAM_ERROR", wantMessage: "Accept"},
		{name: "a request accepting only XML is refused", req: rawRequest{accept: []string{"application/xml"}}, wantStatus: 400, wantCode: "PARAM_ERROR", wantMessage: "Accept"},
		{name: "Accept application/json with a charset is accepted", req: rawRequest{accept: []string{"application/json; charset=utf-8"}}, wantStatus: 404, wantCode: "NOT_FOUND"},
		{name: "Accept listing application/json among others is accepted", req: rawRequest{accept: []string{"text/html, application/json;q=0.9"}}, wantStatus: 404, wantCode: "NOT_FOUND"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.method, tc.req.path = "POST", merge
			resp, body := tc.req.send(t, inst)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(body, `"code":"`+tc.wantCode+`"`) || !strings.Contains(body, tc.wantMessage) {
				t.Fatalf("answer %d %s, want %d %s %s", resp.StatusCode, body, tc.wantStatus, tc.wantCode, tc.wantMessage)
			}
		})
	}
	t.Run("a replayed nonce is refused", func(t *testing.T) {
		nonce, _ := wechatpay.NewNonce()
		req := rawRequest{method: "POST", path: merge, nonce: nonce, at: time.Now()}
		if resp, body := req.send(t, inst); resp.StatusCode != 404 {
			t.Fatalf("first use: %d %s", resp.StatusCode, body)
		}
		if resp, body := req.send(t, inst); resp.StatusCode != 401 || !strings.Contains(body, "nonce") {
			t.Fatalf("replay: %d %s, want 401 about the nonce", resp.StatusCode, body)
		}
	})
}

func unixNow() string { return strconv.FormatInt(time.Now().Unix(), 10) }

// setPaddingBits sets a padding bit of a standard-Base64 RSA 2048 signature:
// its 256 bytes end in two Base64 digits and "==", and the second digit holds
// 2 data bits and 4 padding bits. A lenient decoder still yields the same
// signature, so only the strict padding rule can refuse it.
func setPaddingBits(sig string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := len(sig) - 3
	return sig[:i] + string(alphabet[strings.IndexByte(alphabet, sig[i])|1]) + sig[i+1:]
}

func TestSetPaddingBitsChangesOnlyPaddingBits(t *testing.T) {
	sig, err := wechatpay.Sign(brandA.BrandKey, []byte("message"))
	if err != nil {
		t.Fatal(err)
	}
	altered := setPaddingBits(sig)
	lenient, err := base64.StdEncoding.DecodeString(altered)
	original, _ := base64.StdEncoding.DecodeString(sig)
	if err != nil || altered == sig || !bytes.Equal(lenient, original) {
		t.Fatalf("altered %q decodes leniently to other bytes (%v) or did not change", altered, err)
	}
	if _, err := base64.StdEncoding.Strict().DecodeString(altered); err == nil {
		t.Fatal("strict decoding accepts the altered signature")
	}
}
