package uploads

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/secrets"
	"github.com/crowdpack/crowdpack/internal/source"
)

// deniedListener stands for what a tenant must not reach (the metadata
// service, the manager's own ports, in-cluster services): it listens on
// 127.0.0.2, which the suite's guard denies, and counts connections.
type deniedListener struct {
	net.Listener
	accepted atomic.Int64
}

// deniedAnswer is what the denied listener would answer; status must never show it.
const deniedAnswer = "metadata-token-7f3a"

func listenDenied(t *testing.T) *deniedListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	l := &deniedListener{Listener: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.accepted.Add(1)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nETag: \"x\"\r\n\r\n%s", len(deniedAnswer), deniedAnswer)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return l
}

func (l *deniedListener) port() string {
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// withNames makes the guard resolve a few test names: sneaky.example to a
// denied address, example.com (a name httptest's certificate holds) to
// 127.0.0.1; others as the system resolves them.
func withNames(g *source.Guard) {
	g.LookupIP = func(ctx context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "sneaky.example":
			return []netip.Addr{netip.MustParseAddr("127.0.0.2")}, nil
		case "example.com":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
}

// trustTLS stores the CA of httptest's TLS servers as Secret "files-ca".
func (h *harness) trustTLS(ns string, srv *httptest.Server) {
	h.t.Helper()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	must(h.t, kube.Client.Create(h.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "files-ca", Namespace: ns},
		Data:       map[string][]byte{secrets.KeyCACert: ca},
	}))
}

func TestATenantsSourceCannotReachDeniedAddresses(t *testing.T) {
	denied := listenDenied(t)
	var tokenElsewhere atomic.Bool
	data := phoneFile(0, 100)
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			tokenElsewhere.Store(true)
		}
		http.ServeContent(w, r, "vip.csv", time.Unix(1_700_000_000, 0), strings.NewReader(string(data)))
	}))
	defer other.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenElsewhere.Store(tokenElsewhere.Load() || r.Header.Get("Authorization") != "")
		fmt.Fprint(w, deniedAnswer)
	}))
	defer plain.Close()
	_, otherPort, _ := net.SplitHostPort(other.Listener.Addr().String())
	redirects := map[string]string{
		"/to-denied/vip.csv": "https://127.0.0.2:" + denied.port() + "/vip.csv",
		"/to-sneaky/vip.csv": "https://sneaky.example:" + denied.port() + "/vip.csv",
		"/to-plain/vip.csv":  plain.URL + "/vip.csv",
		"/to-other/vip.csv":  "https://example.com:" + otherPort + "/vip.csv",
	}
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, redirects[r.URL.Path], http.StatusFound)
	}))
	defer origin.Close()

	h := newHarness(t, harnessOptions{guard: withNames})
	h.trustTLS(h.ns, origin)
	must(t, kube.Client.Create(h.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "files-token", Namespace: h.ns},
		StringData: map[string]string{secrets.KeyToken: httpBearerToken},
	}))
	httpsVia := func(path string) upv1.Source {
		return upv1.Source{HTTP: &upv1.HTTPSource{URL: origin.URL + path,
			SecretRef: &upv1.SecretReference{Name: "files-token"}, CertSecretRef: &upv1.SecretReference{Name: "files-ca"}}}
	}
	cases := []struct {
		name   string
		source upv1.Source
		reason string
	}{
		{name: "plain http to another loopback address", reason: upv1.ReasonSourceAddressDenied,
			source: upv1.Source{HTTP: &upv1.HTTPSource{URL: "http://127.0.0.2:" + denied.port() + "/vip.csv", Insecure: true}}},
		{name: "an s3 endpoint on another loopback address", reason: upv1.ReasonSourceAddressDenied,
			source: upv1.Source{S3: &upv1.S3Source{Endpoint: "127.0.0.2:" + denied.port(), Bucket: h.bucket, Key: "vip.csv", Region: "us-east-1",
				Insecure: true, SecretRef: &upv1.SecretReference{Name: "storage"}}}},
		{name: "the cloud metadata service", reason: upv1.ReasonSourceAddressDenied,
			source: upv1.Source{HTTP: &upv1.HTTPSource{URL: "http://169.254.169.254/latest/meta-data/iam/security-credentials/vip.csv", Insecure: true}}},
		{name: "a host name that resolves to another loopback address", reason: upv1.ReasonSourceAddressDenied,
			source: upv1.Source{HTTP: &upv1.HTTPSource{URL: "http://sneaky.example:" + denied.port() + "/vip.csv", Insecure: true}}},
		{name: "a redirect from an allowed https host to a denied address", reason: upv1.ReasonSourceAddressDenied, source: httpsVia("/to-denied/vip.csv")},
		{name: "a redirect to a name that resolves to a denied address", reason: upv1.ReasonSourceAddressDenied, source: httpsVia("/to-sneaky/vip.csv")},
		{name: "a redirect from https to plain http", reason: upv1.ReasonInsecureSourceDenied, source: httpsVia("/to-plain/vip.csv")},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("ssrf-%d", i)
			u := h.object(name, "vip.csv")
			u.Spec.Source = tc.source
			h.create(u)
			u = h.waitStalled(name, tc.reason)
			if u.Status.Source != nil {
				t.Errorf("status.source %+v: the denied host's answer shows", *u.Status.Source)
			}
			raw, _ := json.Marshal(u.Status)
			texts := []string{string(raw)}
			for _, e := range h.events(name) {
				texts = append(texts, e.Note)
			}
			for _, text := range texts {
				if strings.Contains(text, deniedAnswer) || (!strings.Contains(tc.name, "another loopback") && strings.Contains(text, "127.0.0.2")) {
					t.Errorf("status or an event shows what only the denied host knows:\n%s", text)
				}
			}
			if c := findCondition(u, upv1.ConditionStalled); !strings.Contains(c.Message, "--source-") && !strings.Contains(c.Message, "https to plain http") {
				t.Errorf("message %q names no way out", c.Message)
			}
		})
	}

	t.Run("a redirect to another host does not carry the bearer token", func(t *testing.T) {
		u := h.object("to-other", "vip.csv")
		u.Spec.Source = httpsVia("/to-other/vip.csv")
		h.create(u)
		h.waitReady("to-other")
	})
	if tokenElsewhere.Load() {
		t.Error("the bearer token reached a second host")
	}
	if n := denied.accepted.Load(); n != 0 {
		t.Errorf("the denied listener saw %d connections", n)
	}
}

func TestPlainHTTPSourcesNeedThePlatformsConsent(t *testing.T) {
	h := newHarness(t, harnessOptions{guard: func(g *source.Guard) { g.AllowInsecure = false }})
	h.put("vip.csv", phoneFile(0, 10))
	h.create(h.object("minio", "vip.csv")) // insecure: true
	u := h.waitStalled("minio", upv1.ReasonInsecureSourceDenied)
	if msg := findCondition(u, upv1.ConditionStalled).Message; !strings.Contains(msg, "--allow-insecure-sources") {
		t.Errorf("message %q does not name the flag", msg)
	}
}

func TestAnObjectLargerThanTheLimitStallsBeforeItIsRead(t *testing.T) {
	h := newHarness(t, harnessOptions{guard: func(g *source.Guard) { g.MaxFileSize = 1000 }})
	h.put("vip.csv", phoneFile(0, 100)) // 3,300 bytes
	h.create(h.object("big", "vip.csv"))
	u := h.waitStalled("big", upv1.ReasonSourceTooLarge)
	if u.Status.Source != nil {
		t.Errorf("status.source %+v, want none: the file was not to be read", *u.Status.Source)
	}
}

// dripServer serves data over HTTPS: a whole GET (the digest) at once, a
// ranged GET (a part) one byte a second, as a tenant's slow or hostile
// source would once its file was accepted.
func dripServer(t *testing.T, data []byte) *httptest.Server {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"drip"`)
		var from, to int
		if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &from, &to); err != nil {
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			_, _ = w.Write(data)
			return
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to, len(data)))
		w.Header().Set("Content-Length", fmt.Sprint(to-from+1))
		w.WriteHeader(http.StatusPartialContent)
		for i := from; i <= to; i++ {
			if _, err := w.Write(data[i : i+1]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Second):
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestASlowTenantDoesNotHoldAnotherTenantsUpload(t *testing.T) {
	const slowObjects = 20
	// 8.25 MB: 4 parts of 2 MiB and a short one, so that the slow tenant's
	// 5 read slots (half of 10 workers) would hold 40 MiB of parts at once,
	// more than its half of the 64 MiB part memory budget.
	drip := dripServer(t, phoneFile(0, 250_000))
	h := newHarness(t, harnessOptions{
		otherNamespaces:         1,
		maxConcurrentReconciles: 10,
		partSize:                2 << 20,
		// A shorter window than production's 30 s keeps the test short.
		guard: func(g *source.Guard) { g.RateWindow = 2 * time.Second },
	})
	h.trustTLS(h.ns, drip)
	begin := time.Now()
	for i := range slowObjects {
		u := h.object(fmt.Sprintf("slow-%d", i), "vip.csv")
		u.Spec.Source = upv1.Source{HTTP: &upv1.HTTPSource{URL: drip.URL + "/vip.csv", CertSecretRef: &upv1.SecretReference{Name: "files-ca"}}}
		u.Spec.File.Filename = fmt.Sprintf("slow-%d.csv", i) // WeChat Pay takes a filename once per brand
		h.create(u)
	}

	// The slow tenant's parts hold part memory while they drip, but never
	// more than half the budget.
	budget := h.reconcilers[0].parts.memory
	const total = 64 << 20
	deadline := time.Now().Add(30 * time.Second)
	for budget.TryAcquire(total) {
		budget.Release(total)
		if time.Now().After(deadline) {
			t.Fatal("the slow tenant's parts never took part memory")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !budget.TryAcquire(total / 2) {
		t.Error("the slow tenant holds more than half of the part memory budget")
	} else {
		budget.Release(total / 2)
	}

	other := h.otherNamespaces[0]
	h.put("normal.csv", phoneFile(0, 1_000))
	u := h.object("normal", "normal.csv")
	u.Namespace = other
	start := time.Now()
	h.create(u)
	slowNamespace := h.ns
	h.ns = other // waitFor looks in the harness's namespace
	h.waitFor("normal", 15*time.Second, "Ready", func(u *upv1.UserPackageUpload) bool {
		return conditionIs(u, upv1.ConditionReady, metav1.ConditionTrue)
	})
	t.Logf("the other tenant's object was Ready %s after it was created, with %d slow objects reading", time.Since(start).Round(time.Millisecond), slowObjects)
	h.ns = slowNamespace

	for i := range slowObjects {
		name := fmt.Sprintf("slow-%d", i)
		u := h.waitFor(name, 90*time.Second, "retrying for its rate", func(u *upv1.UserPackageUpload) bool {
			c := findCondition(u, upv1.ConditionReady)
			return c != nil && c.Reason == upv1.ReasonSourceTooSlow
		})
		if msg := findCondition(u, upv1.ConditionReady).Message; !strings.Contains(msg, "B/s over the last") || !strings.Contains(msg, "--source-min-rate") {
			t.Errorf("%s: message %q does not say how fast the read was", name, msg)
		}
	}
	t.Logf("all %d slow objects were retrying for their rate %s after the first was created", slowObjects, time.Since(begin).Round(time.Second))
}

func TestAPlanForgedIntoStatusIsNeverAllocated(t *testing.T) {
	h := newHarness(t, harnessOptions{partSize: 16 << 10})
	h.put("vip.csv", phoneFile(0, 1_000))
	u := h.object("forged", "vip.csv")
	u.Spec.UploadParts = ptr.To(false)
	h.create(u)
	u = h.waitReady("forged")

	// An administrator (or anyone with status rights) writes a plan of
	// 10^9 parts of a 10^15-byte file, consistent with itself.
	u.Status.Source.Size = 1_000_000_000_000_000
	up := firstUpload(u)
	up.End, up.Size = u.Status.Source.Size, u.Status.Source.Size
	up.PartSize = 1_000_000
	up.PartCount = 1_000_000_000
	up.Key = uploadKey(u, up, brandID)
	must(t, kube.Client.Status().Update(h.ctx, u))

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	h.update("forged", func(u *upv1.UserPackageUpload) { u.Spec.UploadParts = ptr.To(true) })
	u = h.waitStalled("forged", upv1.ReasonInvalidPlan)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("the process allocated %.1f MiB in all while the forged plan was handled", float64(allocated)/(1<<20))
	if allocated > 16<<20 {
		t.Errorf("the process allocated %d bytes while the forged plan was handled, want a few MiB", allocated)
	}
	if msg := findCondition(u, upv1.ConditionStalled).Message; !strings.Contains(msg, "1000000000 parts") || !strings.Contains(msg, "at most 10000 parts") {
		t.Errorf("message %q does not say what is wrong with the plan", msg)
	}
}
