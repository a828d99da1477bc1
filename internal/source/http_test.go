package source

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crowdpack/crowdpack/internal/linecheck"
)

// fileServer serves one file with http.ServeContent, which implements Range,
// If-Match and If-Unmodified-Since, after checking the Authorization header.
type fileServer struct {
	content      []byte
	etag         string // empty: no ETag header
	modified     time.Time
	wantAuth     string // empty: no check
	ignoreRanges bool
	status       int // non-zero: answer only this status
}

func (f *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case f.status != 0:
		http.Error(w, "injected", f.status)
		return
	case f.wantAuth != "" && r.Header.Get("Authorization") != f.wantAuth:
		http.Error(w, "who are you", http.StatusUnauthorized)
		return
	}
	if f.etag != "" {
		w.Header().Set("ETag", f.etag)
	}
	if f.ignoreRanges {
		r.Header.Del("Range")
	}
	http.ServeContent(w, r, "file.csv", f.modified, bytes.NewReader(f.content))
}

func newFileServer(content string) *fileServer {
	return &fileServer{content: []byte(content), etag: `"v1"`, modified: time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)}
}

const secretQuery = "X-Amz-Signature=topsecretsignature"

func TestHTTPDigestAndRanges(t *testing.T) {
	content := strings.Repeat(md5Hex+"\n", 100)
	cases := []struct {
		name   string
		server func() *fileServer
		config func(url string) HTTPConfig
	}{
		{
			name:   "a bearer token is sent",
			server: func() *fileServer { f := newFileServer(content); f.wantAuth = "Bearer tok3n"; return f },
			config: func(url string) HTTPConfig { return HTTPConfig{URL: url, Insecure: true, BearerToken: "tok3n"} },
		},
		{
			name:   "basic credentials are sent",
			server: func() *fileServer { f := newFileServer(content); f.wantAuth = "Basic dXNlcjpwYXNz"; return f },
			config: func(url string) HTTPConfig {
				return HTTPConfig{URL: url, Insecure: true, Username: "user", Password: "pass"}
			},
		},
		{
			name:   "a presigned URL's query string is kept in requests",
			server: func() *fileServer { return newFileServer(content) },
			config: func(url string) HTTPConfig { return HTTPConfig{URL: url + "?" + secretQuery, Insecure: true} },
		},
		{
			name:   "a file without ETag is pinned by Last-Modified",
			server: func() *fileServer { f := newFileServer(content); f.etag = ""; return f },
			config: func(url string) HTTPConfig { return HTTPConfig{URL: url, Insecure: true} },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.server())
			defer srv.Close()
			src := mustNewHTTP(t, tc.config(srv.URL+"/exports/vip.csv"))
			check, _ := linecheck.New(linecheck.Phone)

			got, err := Digest(context.Background(), src, check)
			if err != nil {
				t.Fatalf("Digest: %v", err)
			}
			if want := sha256Hex(strings.NewReader(content)); got.Digest != want || got.Version.Size != int64(len(content)) {
				t.Errorf("Digest = %s of %d bytes, want %s of %d", got.Digest, got.Version.Size, want, len(content))
			}
			if diff := cmp.Diff(linecheck.Report{Lines: 100}, got.Report); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			if part := readRange(t, src, got.Version, 33, 66); string(part) != content[33:99] {
				t.Errorf("range [33, 99) = %q", part)
			}
		})
	}
}

func TestHTTPErrorsAreClassifiedAndKeepSecretsOut(t *testing.T) {
	cases := []struct {
		name   string
		server func(*fileServer)
		config func(*HTTPConfig)
		want   error // nil: transient
	}{
		{"404 is not found", func(f *fileServer) { f.status = 404 }, nil, ErrNotFound},
		{"403 is access denied", func(f *fileServer) { f.status = 403 }, nil, ErrAccessDenied},
		{"a wrong bearer token is access denied", func(f *fileServer) { f.wantAuth = "Bearer right" },
			func(c *HTTPConfig) { c.BearerToken = "wrong-token" }, ErrAccessDenied},
		{"a wrong password is access denied", func(f *fileServer) { f.wantAuth = "Basic x" },
			func(c *HTTPConfig) { c.Username, c.Password = "user", "wrong-password" }, ErrAccessDenied},
		{"503 is transient", func(f *fileServer) { f.status = 503 }, nil, nil},
		{"429 is transient", func(f *fileServer) { f.status = 429 }, nil, nil},
		{"400 is a config problem", func(f *fileServer) { f.status = 400 }, nil, ErrInvalidConfig},
		{"a file that cannot be pinned is refused", func(f *fileServer) { f.etag, f.modified = "", time.Time{} },
			nil, ErrInvalidConfig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFileServer("data\n")
			tc.server(f)
			srv := httptest.NewServer(f)
			defer srv.Close()
			cfg := HTTPConfig{URL: userinfoURL(srv.URL) + "/f.csv?" + secretQuery, Insecure: true}
			if tc.config != nil {
				tc.config(&cfg)
			}

			_, _, err := mustNewHTTP(t, cfg).Open(context.Background())
			assertClassified(t, err, tc.want)
			assertNoSecrets(t, err, cfg)
		})
	}
}

func TestHTTPAnUnreachableServerIsTransientAndKeepsSecretsOut(t *testing.T) {
	cfg := HTTPConfig{URL: "http://user:hunter2@127.0.0.1:1/f.csv?" + secretQuery, Insecure: true}
	_, _, err := mustNewHTTP(t, cfg).Open(context.Background())
	assertClassified(t, err, nil)
	assertNoSecrets(t, err, cfg)
}

func TestHTTPOpenRangeFailsOnceTheFileChanged(t *testing.T) {
	cases := []struct {
		name   string
		etag   string // at Open; empty pins by Last-Modified
		change func(*fileServer)
		offset int64
	}{
		{"a new ETag fails If-Match", `"v1"`, func(f *fileServer) { f.etag = `"v2"` }, 5},
		{"a newer Last-Modified fails If-Unmodified-Since", "", func(f *fileServer) {
			f.modified = f.modified.Add(time.Hour)
		}, 5},
		{"a deleted file has changed", `"v1"`, func(f *fileServer) { f.status = 404 }, 5},
		{"a server that ignores ranges cannot serve a later part", `"v1"`, func(f *fileServer) {
			f.ignoreRanges = true
		}, 5},
		{"a server that ignores ranges still must have the same file", `"v1"`, func(f *fileServer) {
			f.ignoreRanges, f.etag = true, `"v2"`
		}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFileServer("0123456789")
			f.etag = tc.etag
			srv := httptest.NewServer(f)
			defer srv.Close()
			src := mustNewHTTP(t, HTTPConfig{URL: srv.URL, Insecure: true})
			v := openVersion(t, src)
			tc.change(f)

			_, err := src.OpenRange(context.Background(), v, tc.offset, 3)
			if !errors.Is(err, ErrChanged) {
				t.Fatalf("OpenRange error = %v, want ErrChanged", err)
			}
		})
	}
}

func TestHTTPServerIgnoringRangesStillServesTheFirstPart(t *testing.T) {
	f := newFileServer("0123456789")
	f.ignoreRanges = true
	srv := httptest.NewServer(f)
	defer srv.Close()
	src := mustNewHTTP(t, HTTPConfig{URL: srv.URL, Insecure: true})
	if got := readRange(t, src, openVersion(t, src), 0, 4); string(got) != "0123" {
		t.Errorf("first part = %q, want 0123", got)
	}
}

func TestHTTPSTrustsTheCABundle(t *testing.T) {
	srv := httptest.NewUnstartedServer(newFileServer("data\n"))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	t.Run("with the CA bundle the file is read", func(t *testing.T) {
		src := mustNewHTTP(t, HTTPConfig{URL: srv.URL, CABundle: caBundle})
		if _, err := Digest(context.Background(), src, nil); err != nil {
			t.Fatalf("Digest: %v", err)
		}
	})
	t.Run("without it the certificate is a config problem", func(t *testing.T) {
		_, _, err := mustNewHTTP(t, HTTPConfig{URL: srv.URL}).Open(context.Background())
		assertClassified(t, err, ErrInvalidConfig)
	})
}

func TestNewHTTPValidatesTheConfig(t *testing.T) {
	cases := []struct {
		name    string
		config  HTTPConfig
		wantErr bool
	}{
		{"an https URL is accepted", HTTPConfig{URL: "https://files.example.com/vip.csv"}, false},
		{"an http URL is refused", HTTPConfig{URL: "http://files.example.com/vip.csv?" + secretQuery}, true},
		{"an http URL is accepted when insecure", HTTPConfig{URL: "http://minio:9000/b/vip.csv", Insecure: true}, false},
		{"another scheme is refused", HTTPConfig{URL: "ftp://files.example.com/vip.csv"}, true},
		{"a URL without host is refused", HTTPConfig{URL: "https:///vip.csv"}, true},
		{"a bearer token and a password together are refused",
			HTTPConfig{URL: "https://h/f.csv", BearerToken: "bearer-secret", Username: "u", Password: "hunter2"}, true},
		{"a CA bundle without certificates is refused", HTTPConfig{URL: "https://h/f.csv", CABundle: []byte("x")}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewHTTP(tc.config)
			if tc.wantErr != (err != nil) {
				t.Fatalf("NewHTTP error = %v, want error: %t", err, tc.wantErr)
			}
			if err != nil {
				assertClassified(t, err, ErrInvalidConfig)
				assertNoSecrets(t, err, tc.config)
			}
		})
	}
}

const md5Hex = "e10adc3949ba59abbe56e057f20f883e"

func mustNewHTTP(t testing.TB, cfg HTTPConfig) Source {
	t.Helper()
	src, err := NewHTTP(cfg)
	if err != nil {
		t.Fatalf("NewHTTP: %v", err)
	}
	return src
}

// userinfoURL puts a user and password into a server URL.
func userinfoURL(serverURL string) string {
	return strings.Replace(serverURL, "://", "://user:hunter2@", 1)
}

// assertClassified checks err is want, or transient when want is nil.
func assertClassified(t testing.TB, err, want error) {
	t.Helper()
	t.Logf("error: %v", err)
	switch {
	case err == nil:
		t.Fatalf("no error, want %v", want)
	case want == nil && isTerminal(err):
		t.Errorf("error %q is terminal, want transient", err)
	case want != nil && !errors.Is(err, want):
		t.Errorf("error %q, want %v", err, want)
	}
}

func assertNoSecrets(t testing.TB, err error, cfg HTTPConfig) {
	t.Helper()
	for _, secret := range []string{"topsecretsignature", "hunter2", cfg.BearerToken, cfg.Password} {
		if secret != "" && strings.Contains(err.Error(), secret) {
			t.Errorf("error %q contains secret %q", err, secret)
		}
	}
}
