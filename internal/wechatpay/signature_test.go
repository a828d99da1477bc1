package wechatpay

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSignatureMessageFollowsTheDocument(t *testing.T) {
	cases := []struct {
		name                          string
		method, url, timestamp, nonce string
		body                          string
		want                          string
	}{
		{
			name:   "a JSON POST signs five lines, the body last, each ending in a newline",
			method: "POST", url: "/brand/marketing/user-package/uploads", timestamp: "1554208460", nonce: "593BEC0C930BF1AFEB40B4A08C8FB242",
			body: `{"user_package_file_info":{"filename":"active_user.csv"}}`,
			want: "POST\n/brand/marketing/user-package/uploads\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{\"user_package_file_info\":{\"filename\":\"active_user.csv\"}}\n",
		},
		{
			name:   "a call without body still ends its empty body line in a newline",
			method: "POST", url: "/brand/marketing/user-package/uploads/abc", timestamp: "1", nonce: "n",
			want: "POST\n/brand/marketing/user-package/uploads/abc\n1\nn\n\n",
		},
		{
			name:   "the query is signed exactly as sent and the method is upper case",
			method: "get", url: "/v3/x?b=2&a=1", timestamp: "1", nonce: "n",
			want: "GET\n/v3/x?b=2&a=1\n1\nn\n\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := string(SignatureMessage(tc.method, tc.url, tc.timestamp, tc.nonce, []byte(tc.body)))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("string to sign (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResponseMessageFollowsTheDocument(t *testing.T) {
	if got, want := string(ResponseMessage("1554209980", "c5ac", []byte(`{"a":1}`))), "1554209980\nc5ac\n{\"a\":1}\n"; got != want {
		t.Errorf("with a body: got %q, want %q", got, want)
	}
	if got, want := string(ResponseMessage("1554209980", "c5ac", nil)), "1554209980\nc5ac\n\n"; got != want {
		t.Errorf("an empty body: got %q, want %q", got, want)
	}
}

func TestSignMatchesOpenSSL(t *testing.T) {
	// request_message.sig was made with `openssl dgst -sha256 -sign`, so this
	// checks SHA256withRSA PKCS#1 v1.5 + standard Base64 against another implementation.
	got, err := Sign(privateKey(t, "brand_key.pem"), testdata(t, "request_message.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(testdata(t, "request_message.sig"))); got != want {
		t.Fatalf("signature differs from OpenSSL's:\n got %s\nwant %s", got, want)
	}
	brandPub, err := ParsePublicKeyPEM(testdata(t, "brand_pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySignature(brandPub, testdata(t, "request_message.txt"), got); err != nil {
		t.Fatalf("VerifySignature of OpenSSL's signature: %v", err)
	}
}

func TestBuildAuthorizationHasTheDocumentedForm(t *testing.T) {
	got := BuildAuthorization(AuthParams{BrandID: "1000000000001", NonceStr: "593BEC0C930BF1AFEB40B4A08C8FB242", Signature: "uOVRnA4qG/MNnYzdQxJanN+zU+lTgIcnU9BxGw5dKjK+VdEUz2FeIoC+D5sB/LN+nGzX3hfZg6r5wT1pl2ZobmIc6p0ldN7J6yDgUzbX8Uk3sD4a4eZVPTBvqNDoUqcYMlZ9uuDdCvNv4TM3c1WzsXUrExwVkI1XO5jCNbgDJ25nkT/c1gIFvqoogl7MdSFGc4W4xZsqCItnqbypR3RuGIlR9h9vlRsy7zJR9PBI83X8alLDIfR1ukt1P7tMnmogZ0cuDY8cZsd8ZlCgLadmvej58SLsIkVxFJ8XmUgFm1fdmq5pQjR4gHxx5NbnDw==", Timestamp: "1554208460", SerialNo: "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"})
	want := `WECHATPAY-BRAND-SHA256-RSA2048 brand_id="1000000000001",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",signature="uOVRnA4qG/MNnYzdQxJanN+zU+lTgIcnU9BxGw5dKjK+VdEUz2FeIoC+D5sB/LN+nGzX3hfZg6r5wT1pl2ZobmIc6p0ldN7J6yDgUzbX8Uk3sD4a4eZVPTBvqNDoUqcYMlZ9uuDdCvNv4TM3c1WzsXUrExwVkI1XO5jCNbgDJ25nkT/c1gIFvqoogl7MdSFGc4W4xZsqCItnqbypR3RuGIlR9h9vlRsy7zJR9PBI83X8alLDIfR1ukt1P7tMnmogZ0cuDY8cZsd8ZlCgLadmvej58SLsIkVxFJ8XmUgFm1fdmq5pQjR4gHxx5NbnDw==",timestamp="1554208460",serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Authorization (-want +got):\n%s", diff)
	}
}

func TestParseAuthorization(t *testing.T) {
	want := AuthParams{BrandID: "1000000000001", NonceStr: "abc", Signature: "c2ln+/==", Timestamp: "1554208460", SerialNo: "1DDE"}
	cases := []struct {
		name, header string
		wantErr      string
	}{
		{name: "the documented order is accepted", header: `WECHATPAY-BRAND-SHA256-RSA2048 brand_id="1000000000001",nonce_str="abc",signature="c2ln+/==",timestamp="1554208460",serial_no="1DDE"`},
		{name: "another SDK's order is accepted", header: `WECHATPAY-BRAND-SHA256-RSA2048 serial_no="1DDE",timestamp="1554208460",signature="c2ln+/==",nonce_str="abc",brand_id="1000000000001"`},
		{name: "a space after a comma is refused", header: `WECHATPAY-BRAND-SHA256-RSA2048 brand_id="1000000000001", nonce_str="abc",signature="c2ln+/==",timestamp="1554208460",serial_no="1DDE"`, wantErr: "lower-case"},
		{name: "a space around the equals sign is refused", header: `WECHATPAY-BRAND-SHA256-RSA2048 brand_id ="1000000000001",nonce_str="abc",signature="c2ln+/==",timestamp="1554208460",serial_no="1DDE"`, wantErr: "lower-case"},
		{name: "an unquoted value is refused", header: `WECHATPAY-BRAND-SHA256-RSA2048 brand_id=1000000000001,nonce_str="abc",signature="c2ln+/==",timestamp="1554208460",serial_no="1DDE"`, wantErr: "double quotes"},
		{name: "single quotes are refused", header: `WECHATPAY-BRAND-SHA256-RSA2048 brand_id='1000000000001',nonce_str="abc",signature="c2ln+/==",timestamp="1554208460",serial_no="1DDE"`, wantErr: "double quotes"},
		{name: "a quote inside a value is refused", header: `WECHATPAY-BRAND-SHA256-RSA2048 brand_id="10"01",nonce_str="abc",signature="c2ln+/==",timestamp="1554208460",serial_no="1DDE"`, wantErr: "quote"},
		{name: "an empty value is refused", header: `WECHATPAY-BRAND-SHA256-RSA2048 brand_id="",nonce_str="abc",signature="c2ln+/==",timestamp="1554208460",serial_no="1DDE"`, wantErr: "empty value"},
		{name: "a duplicate parameter is refused", header: `WECHATPAY-BRAND-SHA256-RSA2048 brand_id="1",brand_id="1",nonce_str="abc",signature="c2ln+/==",timestamp="1554208460",serial_no="1DDE"`, wantErr: "duplicate"},
		{name: "a missing parameter is refused", header: `WECHATPAY-BRAND-SHA256-RSA2048 brand_id="1",nonce_str="abc",signature="c2ln+/==",timestamp="1554208460"`, wantErr: `missing parameter "serial_no"`},
		{name: "an unknown parameter is refused", header: `WECHATPAY-BRAND-SHA256-RSA2048 mchid="1",brand_id="1",nonce_str="abc",signature="c2ln+/==",timestamp="1554208460",serial_no="1DDE"`, wantErr: "unknown parameter"},
		{name: "a trailing comma is refused", header: `WECHATPAY-BRAND-SHA256-RSA2048 brand_id="1000000000001",nonce_str="abc",signature="c2ln+/==",timestamp="1554208460",serial_no="1DDE",`, wantErr: "want key"},
		{name: "the merchant scheme is refused", header: `WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="abc",signature="c2ln",timestamp="1",serial_no="1"`, wantErr: "scheme"},
		{name: "a lower-case scheme is refused", header: `wechatpay-brand-sha256-rsa2048 brand_id="1000000000001",nonce_str="abc",signature="c2ln+/==",timestamp="1554208460",serial_no="1DDE"`, wantErr: "scheme"},
		{name: "two spaces after the scheme are refused", header: `WECHATPAY-BRAND-SHA256-RSA2048  brand_id="1000000000001",nonce_str="abc",signature="c2ln+/==",timestamp="1554208460",serial_no="1DDE"`, wantErr: "lower-case"},
		{name: "an empty header is refused", header: "", wantErr: "scheme"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAuthorization(tc.header)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseAuthorization: %v", err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("params (-want +got):\n%s", diff)
				}
				return
			}
			if !errors.Is(err, ErrMalformedAuthorization) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want ErrMalformedAuthorization mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestNewNonceIs32AlphanumericRandomCharacters(t *testing.T) {
	seen := map[string]bool{}
	pattern := regexp.MustCompile(`^[0-9A-Za-z]{32}$`)
	for range 100 {
		n, err := NewNonce()
		if err != nil {
			t.Fatal(err)
		}
		if !pattern.MatchString(n) || seen[n] {
			t.Fatalf("nonce %q is malformed or repeated", n)
		}
		seen[n] = true
	}
}
