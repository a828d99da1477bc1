package sandbox_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crowdpack/crowdpack/internal/sandbox"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// Two brands, generated once: RSA key generation is the slow part.
var brandA, brandB *sandbox.Identity

func TestMain(m *testing.M) {
	var err error
	if brandA, err = sandbox.NewIdentity("1000000000001"); err == nil {
		brandB, err = sandbox.NewIdentity("1000000000002")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

const testPartSize = 1024

// startSandbox serves brands A and B (B's calls verified with A's WeChat Pay
// key, as one sandbox has one) with 1 KiB parts, admin endpoints included.
func startSandbox(t *testing.T, useTLS bool, mutate ...func(*sandbox.Config)) (*sandbox.Server, *sandbox.Instance) {
	t.Helper()
	cfg := brandA.Config()
	cfg.Brands = append(cfg.Brands, brandB.Brand())
	cfg.PartSize = testPartSize
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := sandbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := srv.Listen(sandbox.ListenOptions{TLS: useTLS, WithAdmin: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close() })
	return srv, inst
}

func httpClient(t *testing.T, inst *sandbox.Instance) *http.Client {
	t.Helper()
	c, err := wechatpay.NewHTTPClient(inst.CAPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// credsA is brand A as the operator reads it from its Secret.
func credsA(t *testing.T) *wechatpay.Credentials {
	t.Helper()
	c, err := brandA.Credentials()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// credsB is brand B holding the sandbox's (brand A's) WeChat Pay public key.
func credsB(t *testing.T) *wechatpay.Credentials {
	t.Helper()
	a, b := brandA.SecretData(), brandB.SecretData()
	c, err := wechatpay.ParseCredentials(brandB.BrandID, brandB.CertificateSerialNo, b[wechatpay.SecretKeyPrivateKey],
		brandA.PublicKeyID, a[wechatpay.SecretKeyPublicKey])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newClient(t *testing.T, inst *sandbox.Instance, creds *wechatpay.Credentials, mutate ...func(*wechatpay.Config)) *wechatpay.Client {
	t.Helper()
	cfg := wechatpay.Config{BaseURL: inst.URL, HTTPClient: httpClient(t, inst), Timeout: 5 * time.Second}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := wechatpay.New(creds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// csvFile is n bytes of phone-hash lines.
func csvFile(n int) []byte {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		sum := sha256.Sum256([]byte(strconv.Itoa(i)))
		b.WriteString(hex.EncodeToString(sum[:16]) + "\n")
	}
	return []byte(b.String()[:n])
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func initiateFor(filename string, file []byte) wechatpay.InitiateUploadRequest {
	return wechatpay.InitiateUploadRequest{
		Filename: filename, Digest: sha256Hex(file), PackageType: wechatpay.PackageTypeExposure,
		DataType: wechatpay.DataTypePhone, Description: "sandbox test crowd package", FileSize: int64(len(file)),
	}
}

func partOf(uploadID, filename string, file []byte, partSize int64, n int) wechatpay.Part {
	off, size := wechatpay.PartBounds(int64(len(file)), partSize, n)
	data := file[off : off+size]
	return wechatpay.Part{
		UploadID: uploadID, Number: n, Filename: filename, Size: size, Digest: sha256Hex(data),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(data))), nil },
	}
}

// rawRequest is a hand-signed request, for what the client would never send.
type rawRequest struct {
	method, path, body string
	contentType        string                              // default application/json when body is set
	signedBody         *string                             // the BODY line; default body
	signedPath         string                              // default path
	at                 time.Time                           // default now
	timestamp          string                              // sent and signed instead of at, when set
	nonce              string                              // default random
	alterSignature     func(string) string                 // changes the Base64 signature after signing
	authorization      func(p wechatpay.AuthParams) string // default the documented order
	wechatpaySerial    string                              // default brand A's public key ID
	accept             []string                            // Accept headers; default one application/json
}

// send signs by hand from the documented rules with brand A's key.
func (rr rawRequest) send(t *testing.T, inst *sandbox.Instance) (*http.Response, string) {
	t.Helper()
	if rr.signedPath == "" {
		rr.signedPath = rr.path
	}
	if rr.at.IsZero() {
		rr.at = time.Now()
	}
	if rr.nonce == "" {
		rr.nonce, _ = wechatpay.NewNonce()
	}
	if rr.authorization == nil {
		rr.authorization = wechatpay.BuildAuthorization
	}
	if rr.wechatpaySerial == "" {
		rr.wechatpaySerial = brandA.PublicKeyID
	}
	timestamp := rr.timestamp
	if timestamp == "" {
		timestamp = strconv.FormatInt(rr.at.Unix(), 10)
	}
	if rr.signedBody == nil {
		rr.signedBody = &rr.body
	}
	if rr.accept == nil {
		rr.accept = []string{"application/json"}
	}
	msg := fmt.Sprintf("%s\n%s\n%s\n%s\n%s\n", rr.method, rr.signedPath, timestamp, rr.nonce, *rr.signedBody)
	signature, err := wechatpay.Sign(brandA.BrandKey, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	if rr.alterSignature != nil {
		signature = rr.alterSignature(signature)
	}
	req, err := http.NewRequestWithContext(context.Background(), rr.method, inst.URL+rr.path, strings.NewReader(rr.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", rr.authorization(wechatpay.AuthParams{
		BrandID: brandA.BrandID, NonceStr: rr.nonce, Signature: signature, Timestamp: timestamp, SerialNo: brandA.CertificateSerialNo,
	}))
	req.Header.Set("Wechatpay-Serial", rr.wechatpaySerial)
	for _, a := range rr.accept {
		req.Header.Add("Accept", a)
	}
	if rr.contentType == "" && rr.body != "" {
		rr.contentType = "application/json"
	}
	if rr.contentType != "" {
		req.Header.Set("Content-Type", rr.contentType)
	}
	resp, err := httpClient(t, inst).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// multipartPart is a part upload's body built by hand: a file_meta field
// holding meta and a file part holding data.
func multipartPart(t *testing.T, meta string, data []byte) (body, contentType string) {
	t.Helper()
	var b strings.Builder
	w := multipart.NewWriter(&b)
	if err := w.WriteField("file_meta", meta); err != nil {
		t.Fatal(err)
	}
	fw, err := w.CreateFormFile("file", "part.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String(), w.FormDataContentType()
}

func getAdmin(t *testing.T, inst *sandbox.Instance, path string) []byte {
	t.Helper()
	resp, err := httpClient(t, inst).Get(inst.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return body
}
