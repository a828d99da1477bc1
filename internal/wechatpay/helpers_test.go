package wechatpay

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

const (
	testBrandID     = "1000000000001"
	testSerial      = "5157F09EFDC096DE15EBE81A47057A72AB12CD34"
	testPublicKeyID = "PUB_KEY_ID_0114232134912410000000000000000001"
)

func testdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func testCredentials(t testing.TB) *Credentials {
	t.Helper()
	c, err := ParseCredentials(testBrandID, testSerial, testdata(t, "brand_key.pem"), testPublicKeyID, testdata(t, "wechatpay_pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func privateKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	k, err := ParsePrivateKeyPEM(testdata(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signedHeaders builds response headers by hand from the documented rules,
// without this package's helpers.
func signedHeaders(t testing.TB, key *rsa.PrivateKey, at time.Time, body string) http.Header {
	t.Helper()
	timestamp, nonce := strconv.FormatInt(at.Unix(), 10), "c5ac7061fccab6bf3e254dcf98995b8c"
	digest := sha256.Sum256([]byte(timestamp + "\n" + nonce + "\n" + body + "\n"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return http.Header{
		"Wechatpay-Timestamp":      {timestamp},
		"Wechatpay-Nonce":          {nonce},
		"Wechatpay-Signature":      {base64.StdEncoding.EncodeToString(sig)},
		"Wechatpay-Serial":         {testPublicKeyID},
		"Wechatpay-Signature-Type": {SignatureType},
		"Request-Id":               {"08F78BB5AF0610D302A3E0040000000000"},
	}
}

// authPattern is the documented header in the order this client writes it.
var authPattern = regexp.MustCompile(`^WECHATPAY-BRAND-SHA256-RSA2048 brand_id="([^"]+)",nonce_str="([0-9A-Za-z]{32})",signature="([^"]+)",timestamp="([0-9]+)",serial_no="([^"]+)"$`)

// seenRequest is what the fake server received.
type seenRequest struct {
	Method, URI   string
	Header        http.Header
	Body          []byte // raw body
	Meta, File    []byte // multipart fields
	SignatureOK   bool
	Authorization string
}

// fakeWeChat is an httptest server that checks requests independently (by
// regexp and raw RSA) and answers with what answer returns, signed by hand.
type fakeWeChat struct {
	*httptest.Server
	mu     sync.Mutex
	seen   []seenRequest
	answer func(r *http.Request, seen seenRequest) (status int, body string, header http.Header)
}

func newFakeWeChat(t *testing.T, answer func(r *http.Request, seen seenRequest) (int, string, http.Header)) *fakeWeChat {
	t.Helper()
	brandPub, err := ParsePublicKeyPEM(testdata(t, "brand_pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	wxKey := privateKey(t, "wechatpay_key.pem")
	f := &fakeWeChat{answer: answer}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen := readRequest(r)
		seen.SignatureOK = verifyByHand(brandPub, seen)
		f.mu.Lock()
		f.seen = append(f.seen, seen)
		f.mu.Unlock()
		status, body, extra := f.answer(r, seen)
		if status == 0 { // hang up without answering
			panic(http.ErrAbortHandler)
		}
		for k, v := range signedHeaders(t, wxKey, time.Now(), body) {
			w.Header()[k] = v
		}
		for k, v := range extra {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeWeChat) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

func readRequest(r *http.Request) seenRequest {
	body, _ := io.ReadAll(r.Body) // a client that aborts mid-body leaves a partial one
	s := seenRequest{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone(), Body: body, Authorization: r.Header.Get("Authorization")}
	if mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mediaType == "multipart/form-data" {
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			data, _ := io.ReadAll(p)
			switch p.FormName() {
			case "file_meta":
				s.Meta = data
			case "file":
				s.File = data
			}
		}
	}
	return s
}

// verifyByHand checks the Authorization header from the documented rules alone.
func verifyByHand(brandPub *rsa.PublicKey, s seenRequest) bool {
	m := authPattern.FindStringSubmatch(s.Authorization)
	if m == nil || m[1] != testBrandID || m[5] != testSerial {
		return false
	}
	signed := s.Body
	if s.Meta != nil {
		signed = s.Meta
	}
	msg := fmt.Sprintf("%s\n%s\n%s\n%s\n%s\n", s.Method, s.URI, m[4], m[2], signed)
	sig, err := base64.StdEncoding.Strict().DecodeString(m[3]) // WeChat Pay may refuse non-zero padding bits
	if err != nil {
		return false
	}
	digest := sha256.Sum256([]byte(msg))
	return rsa.VerifyPKCS1v15(brandPub, crypto.SHA256, digest[:], sig) == nil
}

func newTestClient(t *testing.T, baseURL string, mutate ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURL: baseURL, Timeout: 5 * time.Second}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := New(testCredentials(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
