package wechatpay

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func FuzzParseAuthorization(f *testing.F) {
	for _, seed := range []string{
		`WECHATPAY-BRAND-SHA256-RSA2048 brand_id="1000000000001",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",signature="c2ln+/==",timestamp="1554208460",serial_no="1DDE55AD"`,
		`WECHATPAY-BRAND-SHA256-RSA2048 serial_no="1",timestamp="1",signature="s",nonce_str="n",brand_id="b"`,
		`WECHATPAY-BRAND-SHA256-RSA2048 brand_id="1", nonce_str="n"`,
		`WECHATPAY-BRAND-SHA256-RSA2048 brand_id="1",brand_id="1"`,
		`WECHATPAY-BRAND-SHA256-RSA2048 brand_id=1`,
		`WECHATPAY-BRAND-SHA256-RSA2048 `,
		`WECHATPAY-BRAND-SHA256-RSA2048 ="",=,"`,
		``,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		p, err := ParseAuthorization(header)
		if err != nil {
			return
		}
		again, err := ParseAuthorization(BuildAuthorization(p))
		if err != nil {
			t.Fatalf("re-encoded header of %q does not parse: %v", header, err)
		}
		if diff := cmp.Diff(p, again); diff != "" {
			t.Fatalf("re-encoding changed the parameters (-first +again):\n%s", diff)
		}
	})
}

func FuzzVerifyResponse(f *testing.F) {
	pub := &privateKey(f, "wechatpay_key.pem").PublicKey
	now := time.Unix(1554209980, 0)
	f.Add("1554209980", "c5ac7061fccab6bf3e254dcf98995b8c", "dGVzdA==", []byte(`{"return_message":"success"}`))
	f.Add("1554209980", "n", "", []byte{})
	f.Add("-1", "", "%%", []byte{0, 1, 2})
	f.Add("99999999999999999999", "n", "AAAA", []byte("x"))
	f.Fuzz(func(t *testing.T, timestamp, nonce, signature string, body []byte) {
		h := http.Header{}
		h.Set(HeaderTimestamp, timestamp)
		h.Set(HeaderNonce, nonce)
		h.Set(HeaderSignature, signature)
		h.Set(HeaderSerial, testPublicKeyID)
		if err := VerifyResponse(h, body, testPublicKeyID, pub, now); err == nil {
			t.Fatalf("a random signature verified: timestamp %q nonce %q signature %q", timestamp, nonce, signature)
		}
	})
}
