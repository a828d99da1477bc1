package wechatpay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/crowdpack/crowdpack/internal/bound"
)

const docUploadID = "17587186700323d11ac17d8d3d4c8c4e5a250c3e804977e89af6a05ffa93751d0ec0179ca8"

func validInitiate() InitiateUploadRequest {
	return InitiateUploadRequest{
		Filename: "active_user.csv", Digest: strings.Repeat("ab", 32), PackageType: PackageTypeExposure,
		DataType: DataTypePhone, Description: "2026-11 VIP customers who bought twice", FileSize: 256000,
	}
}

func answering(status int, body string, header http.Header) func(*http.Request, seenRequest) (int, string, http.Header) {
	return func(*http.Request, seenRequest) (int, string, http.Header) { return status, body, header }
}

func TestInitiateUploadSendsTheDocumentedRequest(t *testing.T) {
	fake := newFakeWeChat(t, answering(200, `{"return_message":"success","upload_id":"`+docUploadID+`","file_part_size":10240,"file_part_count":25,"new_field":true}`, nil))
	client := newTestClient(t, fake.URL)

	got, err := client.InitiateUpload(context.Background(), validInitiate())
	if err != nil {
		t.Fatalf("InitiateUpload: %v", err)
	}
	want := &InitiateUploadResponse{ReturnMessage: "success", UploadID: docUploadID, FilePartSize: 10240, FilePartCount: 25}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	seen := fake.requests()[0]
	if seen.Method != "POST" || seen.URI != "/brand/marketing/user-package/uploads" {
		t.Errorf("sent %s %s", seen.Method, seen.URI)
	}
	if !seen.SignatureOK {
		t.Errorf("Authorization %q does not verify by the documented rules", seen.Authorization)
	}
	for header, want := range map[string]string{"Accept": "application/json", "Content-Type": "application/json", "Wechatpay-Serial": testPublicKeyID} {
		if got := seen.Header.Get(header); got != want {
			t.Errorf("%s is %q, want %q", header, got, want)
		}
	}
	if ua := seen.Header.Get("User-Agent"); !strings.HasPrefix(ua, "crowdpack/") || !strings.HasSuffix(ua, "(+https://github.com/crowdpack/crowdpack)") {
		t.Errorf("User-Agent %q", ua)
	}
	var body map[string]map[string]any
	if err := json.Unmarshal(seen.Body, &body); err != nil {
		t.Fatal(err)
	}
	wantBody := map[string]map[string]any{"user_package_file_info": {
		"filename": "active_user.csv", "digest": strings.Repeat("ab", 32), "package_type": "USER_PACKAGE_TYPE_EXPOSURE",
		"data_type": "USER_PACKAGE_DATA_TYPE_PHONE", "description": "2026-11 VIP customers who bought twice", "file_size": float64(256000),
	}}
	if diff := cmp.Diff(wantBody, body); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestInitiateUploadValidatesBeforeSending(t *testing.T) {
	cases := []struct {
		name      string
		mutate    func(*InitiateUploadRequest)
		wantField string
	}{
		{"a filename not ending in .csv is refused", func(r *InitiateUploadRequest) { r.Filename = "users.txt" }, "filename"},
		{"a filename with a slash is refused", func(r *InitiateUploadRequest) { r.Filename = "a/b.csv" }, "filename"},
		{"a filename of 129 characters is refused", func(r *InitiateUploadRequest) { r.Filename = strings.Repeat("a", 125) + ".csv" }, "filename"},
		{"an upper-case digest is refused", func(r *InitiateUploadRequest) { r.Digest = strings.Repeat("AB", 32) }, "digest"},
		{"a short digest is refused", func(r *InitiateUploadRequest) { r.Digest = "abc" }, "digest"},
		{"an unknown package type is refused", func(r *InitiateUploadRequest) { r.PackageType = "Exposure" }, "package_type"},
		{"an unknown data type is refused", func(r *InitiateUploadRequest) { r.DataType = "USER_PACKAGE_DATA_TYPE_EMAIL" }, "data_type"},
		{"a description of 14 characters is refused", func(r *InitiateUploadRequest) { r.Description = strings.Repeat("x", 14) }, "description"},
		{"a description of 129 characters is refused", func(r *InitiateUploadRequest) { r.Description = strings.Repeat("x", 129) }, "description"},
		{"a description with an emoji is refused", func(r *InitiateUploadRequest) { r.Description = "VIP customers 2026 🎉" }, "description"},
		{"a zero file size is refused", func(r *InitiateUploadRequest) { r.FileSize = 0 }, "file_size"},
		{"a description of 15 Chinese characters is accepted", func(r *InitiateUploadRequest) { r.Description = "二〇二六年十一月高价值会员人群包" }, ""},
		{"a filename of exactly 128 characters is accepted", func(r *InitiateUploadRequest) { r.Filename = strings.Repeat("a", 124) + ".csv" }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := validInitiate()
			tc.mutate(&r)
			err := r.Validate()
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.wantField {
				t.Fatalf("error %v, want a *ValidationError on %s", err, tc.wantField)
			}
			fake := newFakeWeChat(t, answering(200, "{}", nil))
			if _, err := newTestClient(t, fake.URL).InitiateUpload(context.Background(), r); Classify(err) != Terminal || len(fake.requests()) != 0 {
				t.Fatalf("InitiateUpload sent %d requests and returned %v, want a Terminal error before sending", len(fake.requests()), err)
			}
		})
	}
}

func TestAnswersAreClassified(t *testing.T) {
	otherKey := privateKey(t, "other_key.pem")
	httpDate := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		name           string
		status         int
		body           string
		header         http.Header
		wantClass      Class
		wantCode       string
		wantRetryAfter time.Duration // 0 when not checked; negative: want between 80s and 90s
		wantMayReach   bool
		wantVerifyErr  bool
	}{
		{name: "a verified 200 is a success", status: 200, body: `{"resource_id":"R1"}`},
		{name: "a 200 signed by another key is refused, never a success, and may have been processed", status: 200, body: `{"resource_id":"R1"}`, header: signedHeaders(t, otherKey, time.Now(), `{"resource_id":"R1"}`), wantClass: Terminal, wantVerifyErr: true, wantMayReach: true},
		{name: "a 200 without a signature is refused and may have been processed", status: 200, body: `{}`, header: http.Header{"Wechatpay-Signature": {""}}, wantClass: Terminal, wantVerifyErr: true, wantMayReach: true},
		{name: "a verified 202 is retried as accepted but not processed", status: 202, body: "", wantClass: Retryable, wantMayReach: true},
		{name: "a 400 PARAM_ERROR stops with WeChat Pay's message", status: 400, body: `{"code":"PARAM_ERROR","message":"filename invalid"}`, wantClass: Terminal, wantCode: "PARAM_ERROR"},
		{name: "a 400 INVALID_REQUEST stops", status: 400, body: `{"code":"INVALID_REQUEST","message":"Wechatpay-Serial wrong"}`, wantClass: Terminal, wantCode: "INVALID_REQUEST"},
		{name: "a 401 SIGN_ERROR stops", status: 401, body: `{"code":"SIGN_ERROR","message":"bad signature"}`, wantClass: Terminal, wantCode: "SIGN_ERROR"},
		{name: "a 403 NO_AUTH stops", status: 403, body: `{"code":"NO_AUTH","message":"not yours"}`, wantClass: Terminal, wantCode: "NO_AUTH"},
		{name: "a 404 NOT_FOUND stops", status: 404, body: `{"code":"NOT_FOUND","message":"no upload"}`, wantClass: Terminal, wantCode: "NOT_FOUND"},
		{name: "a 429 with Retry-After is retried after the given delay", status: 429, body: `{"code":"RATELIMIT_EXCEEDED","message":"slow down"}`, header: http.Header{"Retry-After": {"7"}}, wantClass: Retryable, wantCode: "RATELIMIT_EXCEEDED", wantRetryAfter: 7 * time.Second},
		{name: "a 429 with an HTTP-date Retry-After is retried at that time", status: 429, body: `{"code":"RATELIMIT_EXCEEDED","message":"slow down"}`, header: http.Header{"Retry-After": {httpDate}}, wantClass: Retryable, wantCode: "RATELIMIT_EXCEEDED", wantRetryAfter: -1},
		{name: "a 500 SYSTEM_ERROR is retried and may have been processed", status: 500, body: `{"code":"SYSTEM_ERROR","message":"busy"}`, wantClass: Retryable, wantCode: "SYSTEM_ERROR", wantMayReach: true},
		{name: "a 503 is retried later", status: 503, body: `{"code":"SERVICE_UNAVAILABLE","message":"offline"}`, wantClass: Retryable, wantCode: "SERVICE_UNAVAILABLE", wantMayReach: true},
		{name: "a 502 with an HTML body is retried", status: 502, body: `<html>bad gateway</html>`, wantClass: Retryable, wantMayReach: true},
		{name: "a 3xx is no success and may have been processed", status: 302, body: ``, wantClass: Terminal, wantMayReach: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeWeChat(t, answering(tc.status, tc.body, tc.header))
			got, err := newTestClient(t, fake.URL).MergeParts(context.Background(), docUploadID)
			if tc.status == 200 && !tc.wantVerifyErr {
				if err != nil || got.ResourceID != "R1" {
					t.Fatalf("MergeParts = %+v, %v; want resource R1", got, err)
				}
				return
			}
			if got != nil || err == nil {
				t.Fatalf("MergeParts = %+v, %v; want an error", got, err)
			}
			if c := Classify(err); c != tc.wantClass {
				t.Errorf("Classify = %v, want %v (%v)", c, tc.wantClass, err)
			}
			if errors.Is(err, ErrVerification) != tc.wantVerifyErr {
				t.Errorf("errors.Is(ErrVerification) = %v, want %v", !tc.wantVerifyErr, tc.wantVerifyErr)
			}
			if MayHaveReachedServer(err) != tc.wantMayReach {
				t.Errorf("MayHaveReachedServer = %v, want %v", !tc.wantMayReach, tc.wantMayReach)
			}
			var api *APIError
			if errors.As(err, &api) && api.Code != tc.wantCode {
				t.Errorf("code %q, want %q", api.Code, tc.wantCode)
			}
			if api != nil && api.RequestID == "" {
				t.Errorf("no request id in %v", err)
			}
			switch ra := RetryAfter(err); {
			case tc.wantRetryAfter > 0 && ra != tc.wantRetryAfter:
				t.Errorf("RetryAfter = %v, want %v", ra, tc.wantRetryAfter)
			case tc.wantRetryAfter < 0 && (ra < 80*time.Second || ra > 90*time.Second):
				t.Errorf("RetryAfter = %v, want about 90s", ra)
			}
		})
	}
}

func TestExpandPackage(t *testing.T) {
	t.Run("a verified 204 without body is a success", func(t *testing.T) {
		fake := newFakeWeChat(t, answering(204, "", nil))
		got, err := newTestClient(t, fake.URL).ExpandPackage(context.Background(), "01000100010000000007", docUploadID)
		if err != nil || len(got.Raw) != 0 {
			t.Fatalf("ExpandPackage = %+v, %v", got, err)
		}
		seen := fake.requests()[0]
		if seen.URI != "/brand/marketing/user-package/user-packages/01000100010000000007/expand" || string(seen.Body) != `{"upload_id":"`+docUploadID+`"}` || !seen.SignatureOK {
			t.Fatalf("sent %s %s, signature ok %v", seen.URI, seen.Body, seen.SignatureOK)
		}
	})
	t.Run("a user_package_id of 19 digits is refused before sending", func(t *testing.T) {
		fake := newFakeWeChat(t, answering(204, "", nil))
		_, err := newTestClient(t, fake.URL).ExpandPackage(context.Background(), "0100010001000000000", docUploadID)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != "user_package_id" || len(fake.requests()) != 0 {
			t.Fatalf("error %v after %d requests", err, len(fake.requests()))
		}
	})
}

// TestEveryCallMeetsTheStrictRequestRules checks what the strict sandbox
// refuses, call by call: Accept: application/json, a nonce_str of at most 32
// characters, a timestamp of plain decimal digits and a signature in
// canonical standard Base64 (verifyByHand decodes strictly).
func TestEveryCallMeetsTheStrictRequestRules(t *testing.T) {
	part := []byte("0123456789abcdef\n")
	sum := sha256.Sum256(part)
	calls := []struct {
		name string
		call func(*Client) error
	}{
		{"initiate upload", func(c *Client) error {
			_, err := c.InitiateUpload(context.Background(), validInitiate())
			return err
		}},
		{"upload part", func(c *Client) error {
			_, err := c.UploadPart(context.Background(), Part{UploadID: docUploadID, Number: 1, Filename: "active_user.csv",
				Size: int64(len(part)), Digest: hex.EncodeToString(sum[:]),
				Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(part))), nil }})
			return err
		}},
		{"merge parts", func(c *Client) error {
			_, err := c.MergeParts(context.Background(), docUploadID)
			return err
		}},
		{"expand package", func(c *Client) error {
			_, err := c.ExpandPackage(context.Background(), "01000100010000000007", docUploadID)
			return err
		}},
	}
	for _, tc := range calls {
		t.Run(tc.name+" meets the strict request rules", func(t *testing.T) {
			fake := newFakeWeChat(t, answering(400, `{"code":"PARAM_ERROR","message":"any"}`, nil))
			_ = tc.call(newTestClient(t, fake.URL)) // only the request matters
			seen := fake.requests()
			if len(seen) != 1 {
				t.Fatalf("%d requests sent, want 1", len(seen))
			}
			if got := seen[0].Header.Values("Accept"); len(got) != 1 || got[0] != "application/json" {
				t.Errorf("Accept %q, want exactly application/json", got)
			}
			m := authPattern.FindStringSubmatch(seen[0].Authorization)
			if m == nil || len(m[2]) > 32 {
				t.Fatalf("Authorization %q: want a nonce_str of at most 32 characters and a decimal timestamp", seen[0].Authorization)
			}
			if !seen[0].SignatureOK {
				t.Errorf("signature %q is not canonical Base64 or does not verify", m[3])
			}
		})
	}
}

func TestMergePicksTheResourceID(t *testing.T) {
	cases := []struct {
		name   string
		fields map[string]any
		want   string
	}{
		{"resource_id wins over other ids", map[string]any{"file_id": "F", "resource_id": "R", "upload_id": "U"}, "R"},
		{"another *_id is used when resource_id is absent, in name order", map[string]any{"zz_id": "Z", "media_id": "M", "upload_id": "U"}, "M"},
		{"upload_id alone is not a resource id", map[string]any{"upload_id": "U", "return_message": "success"}, ""},
		{"a numeric *_id is ignored", map[string]any{"file_id": 12, "x_id": "X"}, "X"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := resourceID(tc.fields); got != tc.want {
				t.Fatalf("resourceID = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUploadPartStreamsTheDocumentedMultipart(t *testing.T) {
	part := []byte(strings.Repeat("0123456789abcdef0123456789abcdef\n", 100))
	sum := sha256.Sum256(part)
	digest := hex.EncodeToString(sum[:])
	fake := newFakeWeChat(t, answering(200, `{"return_message":"success"}`, nil))
	client := newTestClient(t, fake.URL)
	opened := 0
	p := Part{UploadID: docUploadID, Number: 3, Filename: "active_user.csv", Size: int64(len(part)), Digest: digest,
		Open: func() (io.ReadCloser, error) {
			opened++
			return io.NopCloser(onlyReader{strings.NewReader(string(part))}), nil
		}}

	got, err := client.UploadPart(context.Background(), p)
	if err != nil {
		t.Fatalf("UploadPart: %v", err)
	}
	if got.Raw["return_message"] != "success" || opened != 1 {
		t.Fatalf("answer %+v after %d opens", got, opened)
	}
	seen := fake.requests()[0]
	if seen.Method != "PUT" || seen.URI != "/brand/marketing/user-package/uploads/"+docUploadID+"/3" {
		t.Errorf("sent %s %s", seen.Method, seen.URI)
	}
	if want := `{"filename":"active_user.csv","digest":"` + digest + `"}`; string(seen.Meta) != want {
		t.Errorf("file_meta %s, want %s", seen.Meta, want)
	}
	if string(seen.File) != string(part) {
		t.Errorf("file field differs from the part")
	}
	if !seen.SignatureOK {
		t.Errorf("the signature does not cover the meta JSON")
	}
	if cl := seen.Header.Get("Content-Length"); cl != fmt.Sprint(len(seen.Body)) {
		t.Errorf("Content-Length %s for a %d-byte body", cl, len(seen.Body))
	}

	t.Run("a part reader shorter than the announced size fails the call", func(t *testing.T) {
		short := p
		short.Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("short")), nil }
		if _, err := client.UploadPart(context.Background(), short); err == nil {
			t.Fatal("a short part was accepted")
		}
	})
	t.Run("an error opening the part is returned wrapped", func(t *testing.T) {
		broken := p
		sourceErr := errors.New("object storage unavailable")
		broken.Open = func() (io.ReadCloser, error) { return nil, sourceErr }
		if _, err := client.UploadPart(context.Background(), broken); !errors.Is(err, sourceErr) {
			t.Fatalf("error %v does not wrap the source error", err)
		}
	})
}

// onlyReader hides every method but Read, so nothing can be buffered by type.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestPartBounds(t *testing.T) {
	cases := []struct {
		name                 string
		fileSize, partSize   int64
		n                    int
		wantOffset, wantSize int64
	}{
		{"the first part is a full part", 25, 10, 1, 0, 10},
		{"the last part is the remainder", 25, 10, 3, 20, 5},
		{"a file of exact parts ends with a full part", 20, 10, 2, 10, 10},
		{"a part beyond the file is empty", 20, 10, 3, 20, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if off, size := PartBounds(tc.fileSize, tc.partSize, tc.n); off != tc.wantOffset || size != tc.wantSize {
				t.Fatalf("PartBounds = %d, %d; want %d, %d", off, size, tc.wantOffset, tc.wantSize)
			}
		})
	}
}

// closedURL is an http URL nothing listens on.
func closedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestTransportFailures(t *testing.T) {
	t.Run("a host that refuses connections fails over to the backup", func(t *testing.T) {
		backup := newFakeWeChat(t, answering(200, `{"resource_id":"R1"}`, nil))
		client := newTestClient(t, closedURL(t), func(c *Config) { c.BackupURL = backup.URL })
		if _, err := client.MergeParts(context.Background(), docUploadID); err != nil || len(backup.requests()) != 1 {
			t.Fatalf("MergeParts: %v after %d backup requests", err, len(backup.requests()))
		}
	})
	t.Run("a refused connection without backup is retryable and reached no server", func(t *testing.T) {
		_, err := newTestClient(t, closedURL(t)).MergeParts(context.Background(), docUploadID)
		if Classify(err) != Retryable || MayHaveReachedServer(err) {
			t.Fatalf("error %v: class %v, may have reached %v", err, Classify(err), MayHaveReachedServer(err))
		}
	})
	t.Run("a connection dropped after sending may have reached the server and does not fail over", func(t *testing.T) {
		primary := newFakeWeChat(t, answering(0, "", nil))
		backup := newFakeWeChat(t, answering(200, `{}`, nil))
		client := newTestClient(t, primary.URL, func(c *Config) { c.BackupURL = backup.URL })
		_, err := client.InitiateUpload(context.Background(), validInitiate())
		if Classify(err) != Retryable || !MayHaveReachedServer(err) || len(backup.requests()) != 0 {
			t.Fatalf("error %v: class %v, may have reached %v, backup requests %d", err, Classify(err), MayHaveReachedServer(err), len(backup.requests()))
		}
	})
	t.Run("a call slower than the timeout is retryable", func(t *testing.T) {
		slow := newFakeWeChat(t, func(r *http.Request, _ seenRequest) (int, string, http.Header) {
			<-r.Context().Done()
			return 0, "", nil
		})
		client := newTestClient(t, slow.URL, func(c *Config) { c.Timeout = 100 * time.Millisecond })
		_, err := client.MergeParts(context.Background(), docUploadID)
		if Classify(err) != Retryable || !MayHaveReachedServer(err) {
			t.Fatalf("error %v: class %v, may have reached %v", err, Classify(err), MayHaveReachedServer(err))
		}
	})
	t.Run("the caller's cancellation is returned as such, not as retryable", func(t *testing.T) {
		slow := newFakeWeChat(t, func(r *http.Request, _ seenRequest) (int, string, http.Header) {
			<-r.Context().Done()
			return 0, "", nil
		})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := newTestClient(t, slow.URL).MergeParts(ctx, docUploadID)
		if !errors.Is(err, context.DeadlineExceeded) || Classify(err) != Canceled || !MayHaveReachedServer(err) {
			t.Fatalf("error %v classified %v (may have reached %v), want the context's own error, Canceled, sent", err, Classify(err), MayHaveReachedServer(err))
		}
	})
}

func TestErrorsNeverCarrySecrets(t *testing.T) {
	otherKey := privateKey(t, "other_key.pem")
	answers := []struct {
		name   string
		answer func(*http.Request, seenRequest) (int, string, http.Header)
	}{
		{"a refusal", answering(400, `{"code":"PARAM_ERROR","message":"bad"}`, nil)},
		{"an unverifiable success", answering(200, `{}`, signedHeaders(t, otherKey, time.Now(), `{}`))},
		{"a dropped connection", answering(0, "", nil)},
	}
	for _, a := range answers {
		t.Run(a.name+" does not reveal the Authorization header, signature or body", func(t *testing.T) {
			fake := newFakeWeChat(t, a.answer)
			_, err := newTestClient(t, fake.URL).InitiateUpload(context.Background(), validInitiate())
			if err == nil {
				t.Fatal("no error")
			}
			seen := fake.requests()[0]
			signature := authPattern.FindStringSubmatch(seen.Authorization)[3]
			for _, secret := range []string{seen.Authorization, signature, string(seen.Body), validInitiate().Description} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q reveals %q", err, secret)
				}
			}
			assertNoKeyMaterial(t, err.Error(), testdata(t, "brand_key.pem"))
		})
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want Class
	}{
		{"a network error is retryable", &TransportError{Err: errors.New("connection reset")}, Retryable},
		{"a wrapped 429 is retryable", fmt.Errorf("merge: %w", &APIError{StatusCode: 429}), Retryable},
		{"a 409 is terminal", &APIError{StatusCode: 409}, Terminal},
		{"a validation error is terminal", &ValidationError{Field: "filename"}, Terminal},
		{"bad credentials are terminal", &CredentialsError{Reason: "empty"}, Terminal},
		{"a verification failure is terminal", &VerificationError{Reason: "x"}, Terminal},
		{"the caller's cancellation is canceled", fmt.Errorf("merge: %w", context.Canceled), Canceled},
		{"an unknown error is terminal", errors.New("something else"), Terminal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.err); got != tc.want {
				t.Fatalf("Classify = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	creds := testCredentials(t)
	t.Run("the zero config talks to WeChat Pay with its backup host", func(t *testing.T) {
		c, err := New(creds, Config{})
		if err != nil || !cmp.Equal(c.hosts, []string{DefaultBaseURL, DefaultBackupURL}) || c.timeout != DefaultTimeout {
			t.Fatalf("New = %v, %v", c, err)
		}
	})
	t.Run("the default endpoint named explicitly keeps its backup host", func(t *testing.T) {
		c, err := New(creds, Config{BaseURL: DefaultBaseURL})
		if err != nil || !cmp.Equal(c.hosts, []string{DefaultBaseURL, DefaultBackupURL}) {
			t.Fatalf("New = %v, %v", c, err)
		}
	})
	t.Run("a backup given with the default endpoint replaces the default backup", func(t *testing.T) {
		c, err := New(creds, Config{BaseURL: DefaultBaseURL, BackupURL: "https://backup.example"})
		if err != nil || !cmp.Equal(c.hosts, []string{DefaultBaseURL, "https://backup.example"}) {
			t.Fatalf("New = %v, %v", c, err)
		}
	})
	t.Run("a client aimed at a sandbox never fails over to production", func(t *testing.T) {
		c, err := New(creds, Config{BaseURL: "https://127.0.0.1:8443/"})
		if err != nil || !cmp.Equal(c.hosts, []string{"https://127.0.0.1:8443"}) {
			t.Fatalf("New = %v, %v", c, err)
		}
	})
	for _, bad := range []Config{
		{BaseURL: "ftp://x"}, {BaseURL: "https://x/prefix"}, {BaseURL: "https://x?q=1"},
		{HTTPClient: http.DefaultClient, CABundle: []byte("x")}, {CABundle: []byte("no certificate here")},
	} {
		if _, err := New(creds, bad); err == nil {
			t.Errorf("New accepted %+v", bad)
		}
	}
	t.Run("a CA bundle makes an HTTPS server trusted", func(t *testing.T) {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for k, v := range signedHeaders(t, privateKey(t, "wechatpay_key.pem"), time.Now(), "") {
				w.Header()[k] = v
			}
			w.WriteHeader(204)
		}))
		defer srv.Close()
		ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		shared, err := NewHTTPClient(ca)
		if err != nil {
			t.Fatal(err)
		}
		for _, cfg := range []Config{{BaseURL: srv.URL, CABundle: ca}, {BaseURL: srv.URL, HTTPClient: shared}} {
			c, err := New(creds, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.ExpandPackage(context.Background(), "01000100010000000007", docUploadID); err != nil {
				t.Fatalf("over HTTPS: %v", err)
			}
		}
	})
}

func TestALongChineseMessageIsCutToTheRemoteBoundOnACharacter(t *testing.T) {
	long := strings.Repeat("上传任务已合并，请勿重复提交。", 40)
	body := `{"code":"INVALID_REQUEST","message":"` + long + `"}`
	fake := newFakeWeChat(t, answering(400, body, nil))
	_, err := newTestClient(t, fake.URL).MergeParts(context.Background(), docUploadID)
	var api *APIError
	if !errors.As(err, &api) {
		t.Fatalf("MergeParts returned %v, want an *APIError", err)
	}
	if len(api.Message) > bound.Remote || !utf8.ValidString(api.Message) || !strings.HasPrefix(long, strings.TrimSuffix(api.Message, "…")) {
		t.Errorf("message of %d bytes (valid UTF-8: %v), want a prefix of WeChat Pay's message within %d bytes",
			len(api.Message), utf8.ValidString(api.Message), bound.Remote)
	}
}
