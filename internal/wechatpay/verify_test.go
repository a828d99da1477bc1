package wechatpay

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestVerifyResponse(t *testing.T) {
	now := time.Unix(1554209980, 0)
	wxKey, otherKey := privateKey(t, "wechatpay_key.pem"), privateKey(t, "other_key.pem")
	wxPub := &wxKey.PublicKey
	const body = `{"return_message":"success"}`
	cases := []struct {
		name    string
		header  http.Header
		body    string
		wantErr string
	}{
		{name: "a response signed by the WeChat Pay key is accepted", header: signedHeaders(t, wxKey, now, body), body: body},
		{name: "an empty 204 body is verified over an empty last line", header: signedHeaders(t, wxKey, now, ""), body: ""},
		{name: "a response 4 minutes 59 seconds old is accepted", header: signedHeaders(t, wxKey, now.Add(-299*time.Second), body), body: body},
		{name: "a tampered body is refused", header: signedHeaders(t, wxKey, now, body), body: `{"return_message":"succesS"}`, wantErr: "does not match"},
		{name: "a response signed by another key is refused", header: signedHeaders(t, otherKey, now, body), body: body, wantErr: "does not match"},
		{name: "a response exactly 5 minutes old is refused", header: signedHeaders(t, wxKey, now.Add(-5*time.Minute), body), body: body, wantErr: "away from now"},
		{name: "a response 10 minutes in the future is refused", header: signedHeaders(t, wxKey, now.Add(10*time.Minute), body), body: body, wantErr: "away from now"},
		{name: "a response from another public key ID is refused", header: with(signedHeaders(t, wxKey, now, body), HeaderSerial, "PUB_KEY_ID_0999"), body: body, wantErr: "want the configured public key ID"},
		{name: "a signature that is not Base64 is refused", header: with(signedHeaders(t, wxKey, now, body), HeaderSignature, "%%%"), body: body, wantErr: "Base64"},
		{name: "a timestamp that is not a number is refused", header: with(signedHeaders(t, wxKey, now, body), HeaderTimestamp, "2019-04-02"), body: body, wantErr: "Unix seconds"},
		{name: "a response without Wechatpay-Timestamp is refused", header: with(signedHeaders(t, wxKey, now, body), HeaderTimestamp, ""), body: body, wantErr: "missing Wechatpay-Timestamp"},
		{name: "a response without Wechatpay-Nonce is refused", header: with(signedHeaders(t, wxKey, now, body), HeaderNonce, ""), body: body, wantErr: "missing Wechatpay-Nonce"},
		{name: "a response without Wechatpay-Signature is refused", header: with(signedHeaders(t, wxKey, now, body), HeaderSignature, ""), body: body, wantErr: "missing Wechatpay-Signature"},
		{name: "a response without Wechatpay-Serial is refused", header: with(signedHeaders(t, wxKey, now, body), HeaderSerial, ""), body: body, wantErr: "missing Wechatpay-Serial"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyResponse(tc.header, []byte(tc.body), testPublicKeyID, wxPub, now)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("VerifyResponse: %v", err)
				}
				return
			}
			var ve *VerificationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want a *VerificationError mentioning %q", err, tc.wantErr)
			}
			if Classify(err) != Terminal {
				t.Fatalf("verification failure classified %v, want Terminal", Classify(err))
			}
		})
	}
}

func TestVerifyResponseAcceptsOpenSSLSignature(t *testing.T) {
	// response_message.sig is OpenSSL's signature of "1554209980\nc5ac…\n{body}\n".
	h := http.Header{}
	h.Set(HeaderTimestamp, "1554209980")
	h.Set(HeaderNonce, "c5ac7061fccab6bf3e254dcf98995b8c")
	h.Set(HeaderSignature, strings.TrimSpace(string(testdata(t, "response_message.sig"))))
	h.Set(HeaderSerial, testPublicKeyID)
	pub, err := ParsePublicKeyPEM(testdata(t, "wechatpay_pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyResponse(h, []byte(`{"return_message":"success"}`), testPublicKeyID, pub, time.Unix(1554209990, 0)); err != nil {
		t.Fatalf("hand-built response: %v", err)
	}
}

func with(h http.Header, key, value string) http.Header {
	if value == "" {
		h.Del(key)
	} else {
		h.Set(key, value)
	}
	return h
}
