package source

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// A sync's check of an HTTP export is one HEAD on condition that the file
// changed since the last check: a 304 is the same revision.
func TestAnHTTPCheckAsksOnConditionThatTheFileChanged(t *testing.T) {
	modified := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		etag       string
		lastOf     func(first Revision) *Revision
		change     bool
		wantHeader string
		wantSame   bool
	}{
		{name: "a file with a strong ETag is asked for with If-None-Match, and a 304 is the same revision", etag: `"v1"`,
			lastOf: same, wantHeader: "If-None-Match", wantSame: true},
		{name: "a file with only Last-Modified is asked for with If-Modified-Since, and a 304 is the same revision",
			lastOf: same, wantHeader: "If-Modified-Since", wantSame: true},
		{name: "a changed file is a new revision", etag: `"v1"`, lastOf: same, change: true, wantHeader: "If-None-Match"},
		{name: "the revision of another URL asks for nothing", etag: `"v1"`,
			lastOf: func(first Revision) *Revision { first.Key = "https://elsewhere.example/vip.csv"; return &first }, wantSame: true},
		{name: "without a last revision the HEAD asks for nothing", etag: `"v1"`, lastOf: func(Revision) *Revision { return nil }, wantSame: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var heads []http.Header
			etag, at, body := tt.etag, modified, []byte("13800000000\n")
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				heads = append(heads, r.Header.Clone())
				tag, mod, data := etag, at, body
				mu.Unlock()
				if tag != "" {
					w.Header().Set("ETag", tag)
				}
				http.ServeContent(w, r, "vip.csv", mod, bytes.NewReader(data))
			}))
			defer srv.Close()
			revisions, err := NewHTTPRevisions(HTTPConfig{URL: srv.URL + "/vip.csv", Insecure: true})
			must(t, err)
			first, err := revisions.Current(context.Background(), nil)
			must(t, err)
			if tt.change {
				mu.Lock()
				etag, at, body = `"v2"`, modified.Add(time.Hour), []byte("13900000000\n")
				mu.Unlock()
			}
			got, err := revisions.Current(context.Background(), tt.lastOf(first))
			must(t, err)
			if len(heads) != 2 {
				t.Fatalf("%d requests for two checks, want one each", len(heads))
			}
			for _, h := range []string{"If-None-Match", "If-Modified-Since"} {
				if sent := heads[1].Get(h) != ""; sent != (h == tt.wantHeader) {
					t.Errorf("the second check sent %s: %q; want it only as %q", h, heads[1].Get(h), tt.wantHeader)
				}
			}
			if (got.ID == first.ID) != tt.wantSame {
				t.Errorf("the second check found %s after %s; want the same: %v", got.ID, first.ID, tt.wantSame)
			}
		})
	}
}

func same(first Revision) *Revision { return &first }

// A sync's check of one key is one stat: the bucket's region, asked of the
// store before the first request of a client that names none, is asked
// once, although every check makes a client of its own.
func TestACheckOfAKeyIsOneRequestOnceTheRegionIsKnown(t *testing.T) {
	s := minioServer(t)
	bucket := newBucket(t, s, false)
	if _, err := s.PutBytes(context.Background(), bucket, "vip.csv", []byte("13800000000\n")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var requests []string
	target, err := url.Parse("http://" + s.Endpoint)
	must(t, err)
	forward := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Method+" "+r.URL.RequestURI())
		mu.Unlock()
		forward.ServeHTTP(w, r)
	}))
	defer proxy.Close()

	cfg := s3Config(s, bucket, "vip.csv")
	cfg.Endpoint = strings.TrimPrefix(proxy.URL, "http://")
	for check := range 3 {
		revisions, err := NewS3Revisions(cfg, false) // as the operator does, a client per check
		must(t, err)
		if _, err := revisions.Current(context.Background(), nil); err != nil {
			t.Fatalf("check %d: %v", check, err)
		}
	}
	if len(requests) != 4 {
		t.Errorf("three checks made %d requests, want the region once and a stat each: %v", len(requests), requests)
	}
	for _, r := range requests[len(requests)-2:] {
		if !strings.HasPrefix(r, http.MethodHead+" ") {
			t.Errorf("a check after the first sent %s, want only a HEAD", r)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
