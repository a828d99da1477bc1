package metricsauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// stubReviews knows one token, whose user may get /metrics only.
type stubReviews struct {
	err                error
	tokenAsks, asks    int
	allowPath, goodTok string
}

func (s *stubReviews) Authenticate(_ context.Context, token string) (authenticationv1.UserInfo, bool, error) {
	s.tokenAsks++
	if s.err != nil {
		return authenticationv1.UserInfo{}, false, s.err
	}
	return authenticationv1.UserInfo{Username: "system:serviceaccount:monitoring:prometheus"}, token == s.goodTok, nil
}

func (s *stubReviews) Authorize(_ context.Context, _ authenticationv1.UserInfo, verb, path string) (bool, string, error) {
	s.asks++
	if s.err != nil {
		return false, "", s.err
	}
	return verb == "get" && path == s.allowPath, "", nil
}

func TestFilter(t *testing.T) {
	tests := []struct {
		name   string
		header string
		path   string
		err    error
		want   int
	}{
		{name: "a scrape without a token is unauthorized", want: http.StatusUnauthorized},
		{name: "a scrape with a token the API server does not accept is unauthorized", header: "Bearer forged", want: http.StatusUnauthorized},
		{name: "a token in another scheme is unauthorized", header: "Basic good", want: http.StatusUnauthorized},
		{name: "a user who may not get the path is forbidden", header: "Bearer good", path: "/debug", want: http.StatusForbidden},
		{name: "a user who may get the path is served", header: "Bearer good", want: http.StatusOK},
		{name: "the scheme's case does not matter", header: "bearer good", want: http.StatusOK},
		{name: "an API server that cannot be asked is an error, not a refusal", header: "Bearer good", err: errors.New("connection refused"), want: http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reviews := &stubReviews{err: tt.err, goodTok: "good", allowPath: "/metrics"}
			served := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics")) })
			h, err := Filter(reviews)(logr.Discard(), served)
			if err != nil {
				t.Fatal(err)
			}
			path := tt.path
			if path == "" {
				path = "/metrics"
			}
			req := httptest.NewRequest(http.MethodGet, path, nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("status %d, want %d (%s)", rec.Code, tt.want, rec.Body)
			}
		})
	}
}

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func TestCachedReviews(t *testing.T) {
	user := authenticationv1.UserInfo{Username: "prometheus", Groups: []string{"system:authenticated"}}
	tests := []struct {
		name          string
		after         time.Duration
		path          string
		err           error
		wantTokenAsks int
		wantAsks      int
	}{
		{name: "an allowed scrape is answered from the cache a minute later", after: 59 * time.Second, path: "/metrics", wantTokenAsks: 1, wantAsks: 1},
		{name: "a token is asked about again after a minute", after: 61 * time.Second, path: "/metrics", wantTokenAsks: 2, wantAsks: 1},
		{name: "a denied path is asked about again after 30 seconds", after: 31 * time.Second, path: "/debug", wantTokenAsks: 1, wantAsks: 2},
		{name: "an error is not remembered", path: "/metrics", err: errors.New("connection refused"), wantTokenAsks: 2, wantAsks: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := &stubReviews{err: tt.err, goodTok: "good", allowPath: "/metrics"}
			clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
			c := cachedWithClock(stub, clock)
			for range 2 {
				if _, _, err := c.Authenticate(context.Background(), "good"); err == nil {
					_, _, _ = c.Authorize(context.Background(), user, "get", tt.path)
				}
				clock.now = clock.now.Add(tt.after)
			}
			if stub.tokenAsks != tt.wantTokenAsks || stub.asks != tt.wantAsks {
				t.Errorf("%d token reviews and %d access reviews, want %d and %d", stub.tokenAsks, stub.asks, tt.wantTokenAsks, tt.wantAsks)
			}
		})
	}
}

func TestUnanswered(t *testing.T) {
	gr := schema.GroupResource{Group: "authentication.k8s.io", Resource: "tokenreviews"}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "a connection error is retried", err: errors.New("dial tcp: connection refused"), want: true},
		{name: "a 429 is retried", err: apierrors.NewTooManyRequests("slow down", 1), want: true},
		{name: "a 503 is retried", err: apierrors.NewServiceUnavailable("starting"), want: true},
		{name: "a 500 is retried", err: apierrors.NewInternalError(errors.New("etcd")), want: true},
		{name: "a 403 (no RBAC to review tokens) is not", err: apierrors.NewForbidden(gr, "", errors.New("no")), want: false},
		{name: "a 400 is not", err: apierrors.NewBadRequest("no token"), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unanswered(tt.err); got != tt.want {
				t.Errorf("unanswered(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
