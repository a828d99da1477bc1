package wechatpay_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crowdpack/crowdpack/internal/sandbox"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// fuzzIdentity is a sandbox identity with the keys of testdata rather than
// new ones: RSA key generation takes seconds, and every fuzz worker process
// would pay for it.
var fuzzIdentity = sync.OnceValues(func() (*sandbox.Identity, error) {
	key := func(name string) (*rsa.PrivateKey, error) {
		pemData, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			return nil, err
		}
		return wechatpay.ParsePrivateKeyPEM(pemData)
	}
	brandKey, err := key("brand_key.pem")
	if err != nil {
		return nil, err
	}
	wechatPayKey, err := key("wechatpay_key.pem")
	if err != nil {
		return nil, err
	}
	return &sandbox.Identity{
		BrandID:             "1000000000001",
		CertificateSerialNo: "5157F09EFDC096DE15EBE81A47057A72AB12CD34",
		BrandKey:            brandKey,
		PublicKeyID:         "PUB_KEY_ID_0114232134912410000000000000000001",
		WechatPayKey:        wechatPayKey,
	}, nil
})

// signedServer answers every call with status and body, signed with the
// identity's WeChat Pay key over exactly the body sent.
type signedServer struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	body   []byte
}

func newSignedServer(t testing.TB, id *sandbox.Identity) *signedServer {
	s := &signedServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		status, body := s.status, s.body
		s.mu.Unlock()
		if !bodyAllowed(status) {
			body = nil // what the client will see; sign that
		}
		timestamp, nonce := strconv.FormatInt(time.Now().Unix(), 10), "c5ac7061fccab6bf3e254dcf98995b8c"
		sig, err := wechatpay.Sign(id.WechatPayKey, wechatpay.ResponseMessage(timestamp, nonce, body))
		if err != nil {
			panic(err)
		}
		h := w.Header()
		h.Set(wechatpay.HeaderTimestamp, timestamp)
		h.Set(wechatpay.HeaderNonce, nonce)
		h.Set(wechatpay.HeaderSignature, sig)
		h.Set(wechatpay.HeaderSerial, id.PublicKeyID)
		h.Set(wechatpay.HeaderSignatureType, wechatpay.SignatureType)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *signedServer) answer(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

// bodyAllowed mirrors net/http: 1xx (sent as the final status here, since
// the handler writes nothing before it), 204 and 304 carry no body.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

func newFuzzClient(t testing.TB, s *signedServer, id *sandbox.Identity) *wechatpay.Client {
	t.Helper()
	creds, err := id.Credentials()
	if err != nil {
		t.Fatal(err)
	}
	c, err := wechatpay.New(creds, wechatpay.Config{BaseURL: s.URL, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func initiateRequest(fileSize int64) wechatpay.InitiateUploadRequest {
	return wechatpay.InitiateUploadRequest{
		Filename:    "vip.csv",
		Digest:      strings.Repeat("ab", 32),
		PackageType: wechatpay.PackageTypeExposure,
		DataType:    wechatpay.DataTypePhone,
		Description: "2026-11 VIP customers who bought twice",
		FileSize:    fileSize,
	}
}

// validPlan is the oracle: the answer a client may accept for a file of
// fileSize bytes.
func validPlan(body []byte, fileSize int64) (*wechatpay.InitiateUploadResponse, bool) {
	var r wechatpay.InitiateUploadResponse
	if json.Unmarshal(body, &r) != nil {
		return nil, false
	}
	ok := r.UploadID != "" && len(r.UploadID) <= wechatpay.MaxUploadIDLength &&
		r.FilePartSize > 0 && r.FilePartSize <= wechatpay.MaxPartSize && r.FilePartCount > 0 && r.FilePartCount <= wechatpay.MaxPartCount &&
		// the parts cover the file, and none is empty
		r.FilePartCount-1 < (fileSize+r.FilePartSize-1)/r.FilePartSize &&
		r.FilePartCount >= (fileSize-1)/r.FilePartSize+1
	return &r, ok
}

// FuzzInitiateUploadResponse answers initiate upload with any status and
// body, correctly signed: the client never panics, succeeds only on a 2xx
// (not 202) whose body is a part plan that fits the file, and then returns
// exactly that plan; a 4xx or 5xx is an *APIError classified by its status.
func FuzzInitiateUploadResponse(f *testing.F) {
	id, err := fuzzIdentity()
	if err != nil {
		f.Fatal(err)
	}
	srv := newSignedServer(f, id)
	client := newFuzzClient(f, srv, id)
	for _, seed := range []struct {
		status   int
		body     string
		fileSize int64
	}{
		{200, `{"return_message":"success","upload_id":"1795722154380dbeb6fce8277f31b916","file_part_size":10240,"file_part_count":25}`, 256000},
		{200, `{"upload_id":"u","file_part_size":10240,"file_part_count":25,"new_field":{"a":[1,2]}}`, 250000},
		{201, `{"upload_id":"u","file_part_size":1,"file_part_count":1}`, 1},
		{200, `{"upload_id":"","file_part_size":10240,"file_part_count":25}`, 256000},
		{200, `{"upload_id":"u","file_part_size":0,"file_part_count":25}`, 256000},
		{200, `{"upload_id":"u","file_part_size":10240,"file_part_count":0}`, 256000},
		{200, `{"upload_id":"u","file_part_size":-10240,"file_part_count":-25}`, 256000},
		{200, `{"upload_id":"u","file_part_size":10240,"file_part_count":24}`, 256000},
		{200, `{"upload_id":"u","file_part_size":10240,"file_part_count":26}`, 256000},
		{200, `{"upload_id":"u","file_part_size":9223372036854775807,"file_part_count":9223372036854775807}`, 256000},
		{200, `{"upload_id":"u","file_part_size":1e3,"file_part_count":256}`, 256000},
		{200, `{"upload_id":"u","file_part_size":"10240","file_part_count":25}`, 256000},
		{200, `{"upload_id":"` + strings.Repeat("x", 129) + `","file_part_size":10240,"file_part_count":25}`, 256000},
		{200, `{"upload_id":"u","file_part_size":20971521,"file_part_count":1}`, 20971521},
		{200, `{"UPLOAD_ID":"u","file_part_size":10240,"file_part_count":25,"upload_id":"v"}`, 256000},
		{200, `null`, 256000},
		{200, `[]`, 256000},
		{200, ``, 256000},
		{200, `{"upload_id":"u"`, 256000},
		{202, ``, 256000},
		{204, ``, 256000},
		{100, `{"upload_id":"u","file_part_size":10240,"file_part_count":25}`, 256000},
		{101, ``, 256000},
		{302, `{}`, 256000},
		{400, `{"code":"PARAM_ERROR","message":"filename vip.csv already exists"}`, 256000},
		{401, `{"code":"SIGN_ERROR","message":"签名错误"}`, 256000},
		{404, `<html>not found</html>`, 256000},
		{429, `{"code":"RATELIMIT_EXCEEDED"}`, 256000},
		{500, `{"code":"SYSTEM_ERROR","message":"` + strings.Repeat("\x00\xff", 300) + `"}`, 256000},
		{503, ``, 256000},
		{599, `{}`, 256000},
	} {
		f.Add(seed.status, []byte(seed.body), seed.fileSize)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, fileSize int64) {
		status = 100 + int(uint(status-100)%500)         // 100..599; seeds keep theirs
		fileSize = int64(uint64(fileSize-1)%(1<<40)) + 1 // what Validate accepts, up to 1 TiB
		if status == http.StatusSwitchingProtocols || status == http.StatusContinue {
			// net/http handles these itself (protocol switch, Expect);
			// a real server would not send them as an answer.
			status = http.StatusOK
		}
		srv.answer(status, body)
		got, err := client.InitiateUpload(context.Background(), initiateRequest(fileSize))

		sent := body
		if !bodyAllowed(status) {
			sent = nil
		}
		if status >= 100 && status <= 199 {
			// Informational: net/http follows it with a 200 (with no body,
			// since the handler wrote none).
			status = http.StatusOK
		}
		want, valid := validPlan(sent, fileSize)
		success := status >= 200 && status <= 299 && status != http.StatusAccepted && valid
		switch {
		case err == nil && !success:
			t.Fatalf("HTTP %d %q for a file of %d bytes was accepted as %+v", status, body, fileSize, *got)
		case err == nil && *got != *want:
			t.Fatalf("HTTP %d %q: answer %+v, want %+v", status, body, *got, *want)
		case err != nil && success:
			t.Fatalf("HTTP %d %q for a file of %d bytes was refused: %v", status, body, fileSize, err)
		}
		if status >= 400 {
			var api *wechatpay.APIError
			if !errors.As(err, &api) || api.StatusCode != status {
				t.Fatalf("HTTP %d: error %v is not an *APIError of that status", status, err)
			}
			retryable := status == http.StatusTooManyRequests || status >= 500
			if (wechatpay.Classify(err) == wechatpay.Retryable) != retryable {
				t.Fatalf("HTTP %d: classified %s", status, wechatpay.Classify(err))
			}
		}
	})
}

// TestInitiateUploadRefusesAPlanThatDoesNotFitTheFile covers the answers
// the client used to accept.
func TestInitiateUploadRefusesAPlanThatDoesNotFitTheFile(t *testing.T) {
	id, err := fuzzIdentity()
	if err != nil {
		t.Fatal(err)
	}
	srv := newSignedServer(t, id)
	client := newFuzzClient(t, srv, id)
	tests := []struct {
		name, body string
		wantErr    string
	}{
		{"a plan whose parts fall short of the file is refused",
			`{"upload_id":"u","file_part_size":10240,"file_part_count":24}`, "does not fit the file's 256000 bytes"},
		{"a plan with an empty last part is refused",
			`{"upload_id":"u","file_part_size":10240,"file_part_count":26}`, "does not fit"},
		{"a plan of parts larger than 20 MB is refused",
			`{"upload_id":"u","file_part_size":20971521,"file_part_count":1}`, "larger than 20971520"},
		{"a plan of more than 10000 parts is refused",
			`{"upload_id":"u","file_part_size":25,"file_part_count":10240}`, "more than 10000 parts"},
		{"an upload_id of 129 characters is refused",
			`{"upload_id":"` + strings.Repeat("x", 129) + `","file_part_size":10240,"file_part_count":25}`, "more than 128"},
		{"an empty upload_id is refused",
			`{"upload_id":"","file_part_size":10240,"file_part_count":25}`, "lacks upload_id"},
		{"a plan that fits is accepted",
			`{"upload_id":"u","file_part_size":10240,"file_part_count":25}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.answer(200, []byte(tt.body))
			_, err := client.InitiateUpload(context.Background(), initiateRequest(256000))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
			}
		})
	}
}
