package sandbox_test

import (
	"context"
	"errors"
	"fmt"
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
		name       string
		req        rawRequest
		wantStatus int
		wantCode   string
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
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.method, tc.req.path = "POST", merge
			resp, body := tc.req.send(t, inst)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(body, `"code":"`+tc.wantCode+`"`) {
				t.Fatalf("answer %d %s, want %d %s", resp.StatusCode, body, tc.wantStatus, tc.wantCode)
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
