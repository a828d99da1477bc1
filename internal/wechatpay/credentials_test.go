package wechatpay

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCredentials(t *testing.T) {
	good := func(name string) []byte { return testdata(t, name) }
	cases := []struct {
		name                       string
		brandID, serial, keyID     string
		privateKey, publicKey      []byte
		wantField, wantErrContains string
	}{
		{name: "a PKCS#8 private key and an SPKI public key are accepted", privateKey: good("brand_key.pem"), publicKey: good("wechatpay_pub.pem")},
		{name: "a PKCS#1 RSA PRIVATE KEY is accepted", privateKey: good("brand_key_pkcs1.pem"), publicKey: good("wechatpay_pub.pem")},
		{name: "identifiers with a trailing newline are trimmed", brandID: testBrandID + "\n", privateKey: good("brand_key.pem"), publicKey: good("wechatpay_pub.pem")},
		{name: "an empty brand_id is refused", brandID: " ", privateKey: good("brand_key.pem"), publicKey: good("wechatpay_pub.pem"), wantField: SecretKeyBrandID, wantErrContains: "empty"},
		{name: "a serial with a space is refused", serial: "51 57", privateKey: good("brand_key.pem"), publicKey: good("wechatpay_pub.pem"), wantField: SecretKeyCertificateSerialNo, wantErrContains: "space"},
		{name: "a public key ID with a quote is refused", keyID: `PUB"KEY`, privateKey: good("brand_key.pem"), publicKey: good("wechatpay_pub.pem"), wantField: SecretKeyPublicKeyID, wantErrContains: "quote"},
		{name: "an empty private key is refused", privateKey: nil, publicKey: good("wechatpay_pub.pem"), wantField: SecretKeyPrivateKey, wantErrContains: "empty"},
		{name: "text that is not PEM is refused", privateKey: []byte("not a key"), publicKey: good("wechatpay_pub.pem"), wantField: SecretKeyPrivateKey, wantErrContains: "no PEM block"},
		{name: "a PEM block with garbage inside is refused", privateKey: []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), publicKey: good("wechatpay_pub.pem"), wantField: SecretKeyPrivateKey, wantErrContains: "malformed"},
		{name: "an EC private key is refused as not RSA", privateKey: good("ec_key.pem"), publicKey: good("wechatpay_pub.pem"), wantField: SecretKeyPrivateKey, wantErrContains: "not an RSA key"},
		{name: "an EC public key is refused as not RSA", privateKey: good("brand_key.pem"), publicKey: good("ec_pub.pem"), wantField: SecretKeyPublicKey, wantErrContains: "not an RSA key"},
		{name: "a 1024-bit private key is refused", privateKey: good("weak_key.pem"), publicKey: good("wechatpay_pub.pem"), wantField: SecretKeyPrivateKey, wantErrContains: "1024 bits"},
		{name: "a 1024-bit public key is refused", privateKey: good("brand_key.pem"), publicKey: good("weak_pub.pem"), wantField: SecretKeyPublicKey, wantErrContains: "1024 bits"},
		{name: "a 4096-bit private key is accepted", privateKey: good("brand_key_4096.pem"), publicKey: good("wechatpay_pub.pem")},
		{name: "a 4608-bit private key is refused as too big to sign with", privateKey: good("big_key.pem"), publicKey: good("wechatpay_pub.pem"), wantField: SecretKeyPrivateKey, wantErrContains: "at most 4096"},
		{name: "a 6144-bit private key is refused before it is parsed", privateKey: good("huge_key.pem"), publicKey: good("wechatpay_pub.pem"), wantField: SecretKeyPrivateKey, wantErrContains: "larger than 4096 bits"},
		{name: "a public key where the private key belongs is refused", privateKey: good("brand_pub.pem"), publicKey: good("wechatpay_pub.pem"), wantField: SecretKeyPrivateKey, wantErrContains: "where a private key belongs"},
		{name: "a private key where the public key belongs is refused", privateKey: good("brand_key.pem"), publicKey: good("wechatpay_key.pem"), wantField: SecretKeyPublicKey, wantErrContains: "where a public key belongs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			brandID, serial, keyID := or(tc.brandID, testBrandID), or(tc.serial, testSerial), or(tc.keyID, testPublicKeyID)
			creds, err := ParseCredentials(brandID, serial, tc.privateKey, keyID, tc.publicKey)
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("ParseCredentials: %v", err)
				}
				if creds.BrandID != testBrandID || creds.PrivateKey == nil || creds.PublicKey == nil {
					t.Fatalf("incomplete credentials: %+v", creds)
				}
				return
			}
			var ce *CredentialsError
			if !errors.As(err, &ce) || !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("error %v is not a *CredentialsError matching ErrBadCredentials", err)
			}
			if ce.Field != tc.wantField || !strings.Contains(err.Error(), tc.wantErrContains) {
				t.Fatalf("error %q (field %q), want field %q and %q", err, ce.Field, tc.wantField, tc.wantErrContains)
			}
			if Classify(err) != Terminal {
				t.Fatalf("bad credentials classified %v, want Terminal", Classify(err))
			}
			assertNoKeyMaterial(t, err.Error(), tc.privateKey, tc.publicKey)
		})
	}
}

func TestCredentialsFromSecretData(t *testing.T) {
	data := map[string][]byte{
		SecretKeyBrandID: []byte(testBrandID), SecretKeyCertificateSerialNo: []byte(testSerial),
		SecretKeyPrivateKey: testdata(t, "brand_key.pem"), SecretKeyPublicKeyID: []byte(testPublicKeyID),
		SecretKeyPublicKey: testdata(t, "wechatpay_pub.pem"),
	}
	if _, err := CredentialsFromSecretData(data); err != nil {
		t.Fatalf("a complete Secret: %v", err)
	}
	delete(data, SecretKeyPublicKey)
	_, err := CredentialsFromSecretData(data)
	if !errors.Is(err, ErrBadCredentials) || !strings.Contains(err.Error(), "wxp_pub.pem: missing") {
		t.Fatalf("a Secret without wxp_pub.pem: got %v", err)
	}
}

func or(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}

// assertNoKeyMaterial fails if msg holds any line of a PEM body.
func assertNoKeyMaterial(t *testing.T, msg string, pems ...[]byte) {
	t.Helper()
	for _, p := range pems {
		for _, line := range strings.Split(string(p), "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(msg, line) {
				t.Fatalf("error message leaks key material: %q", msg)
			}
		}
	}
}
