package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestGuardPermits(t *testing.T) {
	cases := []struct {
		name    string
		allowed string
		addr    string
		want    bool
	}{
		{name: "a public address is permitted", addr: "203.0.113.7", want: true},
		{name: "a private in-cluster address is permitted", addr: "10.96.0.10", want: true},
		{name: "loopback is denied", addr: "127.0.0.1", want: false},
		{name: "any loopback address is denied", addr: "127.0.0.2", want: false},
		{name: "IPv6 loopback is denied", addr: "::1", want: false},
		{name: "IPv4-mapped loopback is denied", addr: "::ffff:127.0.0.1", want: false},
		{name: "the cloud metadata address is denied", addr: "169.254.169.254", want: false},
		{name: "Aliyun's metadata address is denied", addr: "100.100.100.200", want: false},
		{name: "its neighbour is permitted", addr: "100.100.100.201", want: true},
		{name: "IPv6 link-local is denied", addr: "fe80::1", want: false},
		{name: "0.0.0.0 is denied", addr: "0.0.0.0", want: false},
		{name: "the IPv6 unspecified address is denied", addr: "::", want: false},
		{name: "an allowed address wins over the denied network", allowed: "127.0.0.1/32", addr: "127.0.0.1", want: true},
		{name: "an allowed address leaves the rest of the denied network denied", allowed: "127.0.0.1/32", addr: "127.0.0.2", want: false},
		{name: "a bare allowed address is a network of one", allowed: "127.0.0.1", addr: "127.0.0.1", want: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := DefaultGuard()
			allowed, err := ParseCIDRs(tc.allowed)
			if err != nil {
				t.Fatal(err)
			}
			g.Allowed = allowed
			if got := g.Permits(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Errorf("Permits(%s) = %v, want %v", tc.addr, got, tc.want)
			}
		})
	}
}

func TestParseCIDRsRefusesGarbage(t *testing.T) {
	for _, list := range []string{"10.0.0.0/33", "not-an-address", "10.0.0.0/8,,fe80::/ten"} {
		if _, err := ParseCIDRs(list); err == nil {
			t.Errorf("ParseCIDRs(%q) = nil error", list)
		}
	}
}

// listener accepts connections on addr and counts them; the SSRF tests
// assert it saw none.
type listener struct {
	net.Listener
	accepted atomic.Int64
}

func listen(t *testing.T, addr string) *listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	l := &listener{Listener: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.accepted.Add(1)
			fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nETag: \"secret\"\r\n\r\nsecret")
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return l
}

func port(l net.Listener) string {
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

// testGuard is the suite's policy: 127.0.0.1 allowed (where the test
// servers listen), plain HTTP allowed, every other loopback denied.
func testGuard() *Guard {
	g := DefaultGuard()
	g.Allowed, _ = ParseCIDRs("127.0.0.1/32")
	g.AllowInsecure = true
	g.LookupIP = func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "sneaky.example":
			return []netip.Addr{netip.MustParseAddr("127.0.0.2")}, nil
		case "files.example", "other.example":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return g
}

func TestSourcesNeverConnectToADeniedAddress(t *testing.T) {
	ln := listen(t, "127.0.0.2:0")
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	cases := []struct {
		name string
		open func() (Source, error)
		host string
	}{
		{name: "an http URL on another loopback address", host: "127.0.0.2", open: func() (Source, error) {
			return NewHTTP(HTTPConfig{URL: "http://127.0.0.2:" + port + "/vip.csv", Insecure: true, Guard: testGuard()})
		}},
		{name: "a host name that resolves to another loopback address", host: "sneaky.example", open: func() (Source, error) {
			return NewHTTP(HTTPConfig{URL: "http://sneaky.example:" + port + "/vip.csv", Insecure: true, Guard: testGuard()})
		}},
		{name: "the cloud metadata service", host: "169.254.169.254", open: func() (Source, error) {
			return NewHTTP(HTTPConfig{URL: "http://169.254.169.254/latest/meta-data/iam", Insecure: true, Guard: testGuard()})
		}},
		{name: "an S3 endpoint on another loopback address, asked for its bucket's region first", host: "127.0.0.2", open: func() (Source, error) {
			return NewS3(S3Config{Endpoint: "127.0.0.2:" + port, Bucket: "bkt", Key: "k.csv", Insecure: true,
				AccessKey: "a", SecretKey: "s", Guard: testGuard()})
		}},
		{name: "an S3 endpoint on another loopback address", host: "127.0.0.2", open: func() (Source, error) {
			return NewS3(S3Config{Endpoint: "127.0.0.2:" + port, Bucket: "bkt", Key: "k.csv", Insecure: true,
				AccessKey: "a", SecretKey: "s", Region: "us-east-1", Guard: testGuard()})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := tc.open()
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = src.Open(context.Background())
			assertClassified(t, err, ErrAddressDenied)
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprintf("%q", tc.host)) || !strings.Contains(msg, "--source-allowed-cidrs") {
				t.Errorf("message %q names neither the host %q nor the flag", msg, tc.host)
			}
			if tc.host != "127.0.0.2" && strings.Contains(msg, "127.0.0.2") {
				t.Errorf("message %q names the resolved address", msg)
			}
			if strings.Contains(msg, "secret") {
				t.Errorf("message %q holds what the listener would answer", msg)
			}
		})
	}
	if n := ln.accepted.Load(); n != 0 {
		t.Errorf("the denied listener saw %d connections", n)
	}
}

func TestRedirectsAreFollowedOnlyWhereTheGuardAllows(t *testing.T) {
	denied := listen(t, "127.0.0.2:0")
	var tokenSeenElsewhere atomic.Bool
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			tokenSeenElsewhere.Store(true)
		}
		http.ServeContent(w, r, "vip.csv", time.Unix(1_700_000_000, 0), strings.NewReader("13800000000\n"))
	}))
	defer other.Close()
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	redirectTo := map[string]string{
		"/to-denied": "https://" + denied.Addr().String() + "/vip.csv",
		"/to-sneaky": "https://sneaky.example:" + port(denied) + "/vip.csv",
		"/to-plain":  plain.URL + "/vip.csv",
		"/to-other":  other.URL + "/vip.csv",
		"/loop":      "/loop",
	}
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, redirectTo[r.URL.Path], http.StatusFound)
	}))
	defer origin.Close()
	client := origin.Client().Transport.(*http.Transport)

	cases := []struct {
		name string
		path string
		want error
	}{
		{name: "a redirect to a denied address is refused", path: "/to-denied", want: ErrAddressDenied},
		{name: "a redirect to a name that resolves to a denied address is refused", path: "/to-sneaky", want: ErrAddressDenied},
		{name: "a redirect from https to http is refused", path: "/to-plain", want: ErrInsecureDenied},
		{name: "an endless redirect loop is refused", path: "/loop", want: ErrInvalidConfig},
		{name: "a redirect to another host gets no credentials", path: "/to-other"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := testGuard()
			transport := NewTransport(g)
			transport.TLSClientConfig = client.TLSClientConfig.Clone()
			src := mustNewHTTP(t, HTTPConfig{URL: origin.URL + tc.path, BearerToken: "tenant-token", Guard: g, Transport: transport})
			_, _, err := src.Open(context.Background())
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			assertClassified(t, err, tc.want)
			if strings.Contains(err.Error(), "127.0.0.2") {
				t.Errorf("message %q names the denied address", err)
			}
		})
	}
	if tokenSeenElsewhere.Load() {
		t.Error("the bearer token reached a second host")
	}
	if n := denied.accepted.Load(); n != 0 {
		t.Errorf("the denied listener saw %d connections", n)
	}
}

func TestPlainHTTPNeedsThePlatformsConsent(t *testing.T) {
	g := DefaultGuard()
	_, err := NewHTTP(HTTPConfig{URL: "http://files.example/vip.csv", Insecure: true, Guard: g})
	assertClassified(t, err, ErrInsecureDenied)
	_, err = NewS3(S3Config{Endpoint: "minio.storage:9000", Bucket: "b", Key: "k.csv", Insecure: true, Guard: g})
	assertClassified(t, err, ErrInsecureDenied)
	if !strings.Contains(err.Error(), "--allow-insecure-sources") {
		t.Errorf("message %q does not name the flag", err)
	}
}

// dripServer sends its header at once and then body bytes every interval.
func dripServer(t *testing.T, size int, interval time.Duration) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		w.Header().Set("ETag", `"drip"`)
		w.WriteHeader(http.StatusOK)
		for i := 0; i < size; i++ {
			if _, err := w.Write([]byte("1")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(interval):
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSlowReadsFailAsTransient(t *testing.T) {
	cases := []struct {
		name     string
		interval time.Duration
		guard    func(*Guard)
		want     string
	}{
		{name: "a source that stops sending fails after the idle timeout", interval: time.Hour,
			guard: func(g *Guard) { g.IdleTimeout = 300 * time.Millisecond }, want: "no byte arrived for 300ms"},
		{name: "a source that drips fails below the minimum rate and says how fast it was", interval: 20 * time.Millisecond,
			guard: func(g *Guard) { g.MinRate, g.RateWindow = 1<<10, 500*time.Millisecond }, want: "B/s over the last"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := dripServer(t, 1000, tc.interval)
			g := testGuard()
			tc.guard(g)
			start := time.Now()
			_, err := Digest(context.Background(), mustNewHTTP(t, HTTPConfig{URL: srv.URL, Insecure: true, Guard: g}), nil)
			if !errors.Is(err, ErrTooSlow) || isTerminal(err) {
				t.Fatalf("error %v, want a transient ErrTooSlow", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("message %q does not say %q", err, tc.want)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("the slow read took %s to fail", took)
			}
		})
	}
}

func TestAnObjectLargerThanAllowedFailsBeforeItsBytesAreRead(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.Header().Set("ETag", `"big"`)
		for i := 0; i < 1000; i++ {
			n, err := w.Write(make([]byte, 1000))
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	g := testGuard()
	g.MaxFileSize = 999_999
	_, _, err := mustNewHTTP(t, HTTPConfig{URL: srv.URL, Insecure: true, Guard: g}).Open(context.Background())
	assertClassified(t, err, ErrTooLarge)
	if !strings.Contains(err.Error(), "--max-file-size") {
		t.Errorf("message %q does not name the flag", err)
	}
}

func TestABodyLongerThanAnnouncedFails(t *testing.T) {
	g := testGuard()
	body := g.watch(io.NopCloser(strings.NewReader("0123456789")), "test", 5)
	_, err := io.ReadAll(body)
	if err == nil || !strings.Contains(err.Error(), "more bytes than it announced") {
		t.Fatalf("ReadAll = %v, want an overrun error", err)
	}
}

func TestTimeBeforeTheFirstReadIsNotCountedAgainstTheSource(t *testing.T) {
	g := testGuard()
	g.IdleTimeout = 100 * time.Millisecond
	body := g.watch(io.NopCloser(strings.NewReader("0123456789")), "test", 10)
	time.Sleep(300 * time.Millisecond) // e.g. waiting for part memory
	if data, err := io.ReadAll(body); err != nil || string(data) != "0123456789" {
		t.Fatalf("ReadAll = %q, %v; want the whole body", data, err)
	}
}
