package uploads

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

// TestARestartedManagerWritesAndCallsNothingForFinishedUploads: an upgrade
// stops the manager and starts a new one; for uploads that are finished
// (merged and expanded) the new manager reconciles each once and makes no
// status write, raises no event, calls WeChat Pay not once and reads
// nothing from object storage. Each is watched from outside the manager:
// the objects' resource versions, the namespace's events, the sandbox's
// records and a proxy in front of MinIO that counts every request.
func TestARestartedManagerWritesAndCallsNothingForFinishedUploads(t *testing.T) {
	const n = 20
	h := newHarness(t, harnessOptions{})
	proxy := newCountingProxy(t, storage.Endpoint)
	for i := range n {
		h.put(fmt.Sprintf("restart-%02d.csv", i), phoneFile(i*10, 10))
		u := h.object(fmt.Sprintf("restart-%02d", i), fmt.Sprintf("restart-%02d.csv", i))
		u.Spec.Source.S3.Endpoint = proxy.endpoint
		u.Spec.UserPackageID = loadPackageID(i)
		h.create(u)
	}
	for i := range n {
		u := h.waitReady(fmt.Sprintf("restart-%02d", i))
		if !conditionIs(u, upv1.ConditionExpanded, "True") {
			t.Fatalf("restart-%02d is Ready but not expanded:\n%s", i, describe(u))
		}
	}
	h.waitIdle()
	h.stopManager()
	time.Sleep(500 * time.Millisecond) // events are sent asynchronously
	before := h.snapshot()
	if before.storageRequests = proxy.requests.Load(); before.storageRequests == 0 {
		t.Fatal("the counting proxy saw no storage request: the objects do not read through it")
	}

	_, reconcilesBefore := managerActivity(t)
	h.startManager(nil)
	waitReconciles(t, reconcilesBefore+n, 30*time.Second)
	h.waitIdle()
	time.Sleep(500 * time.Millisecond) // an event would be sent asynchronously
	after := h.snapshot()
	after.storageRequests = proxy.requests.Load()

	if changed := before.changedObjects(after); len(changed) > 0 {
		t.Errorf("the restarted manager wrote %d objects: %v", len(changed), changed)
	}
	if d := after.events - before.events; d != 0 {
		t.Errorf("the restarted manager raised %d events, want none", d)
	}
	if d := after.weChatPayCalls - before.weChatPayCalls; d != 0 {
		t.Errorf("the restarted manager made %d WeChat Pay calls, want none: %v", d, h.sandbox.Records()[before.weChatPayCalls:])
	}
	if d := after.storageRequests - before.storageRequests; d != 0 {
		t.Errorf("the restarted manager made %d requests to object storage, want none", d)
	}
}

// worldSnapshot is what an upload's life leaves outside the manager: the
// objects' versions, the events, the WeChat Pay calls and the requests to
// object storage.
type worldSnapshot struct {
	versions        map[string]string
	events          int
	weChatPayCalls  int
	storageRequests int64
}

// snapshot takes the test namespace's objects' resource versions, its
// events and the sandbox's calls.
func (h *harness) snapshot() worldSnapshot {
	h.t.Helper()
	var list upv1.UserPackageUploadList
	must(h.t, kube.Client.List(h.ctx, &list, client.InNamespace(h.ns)))
	s := worldSnapshot{versions: make(map[string]string, len(list.Items))}
	for _, u := range list.Items {
		s.versions[u.Name] = u.ResourceVersion
	}
	s.events = len(h.eventsOfNamespace())
	s.weChatPayCalls = len(h.sandbox.Records())
	return s
}

// changedObjects names the objects whose resource version differs in
// later: every write, status or not, changes it.
func (s worldSnapshot) changedObjects(later worldSnapshot) []string {
	var changed []string
	for name, v := range s.versions {
		if later.versions[name] != v {
			changed = append(changed, name)
		}
	}
	return changed
}

// loadPackageID is the crowd package the i-th object of a test expands:
// one each, so that no expand waits for another's turn.
func loadPackageID(i int) string { return fmt.Sprintf("%020d", 10_000_000+i) }

// countingProxy forwards HTTP requests to an object store and counts and
// notes them, so that a test sees every read the manager makes, whatever
// its client.
type countingProxy struct {
	endpoint string // host:port, plain HTTP
	requests atomic.Int64
	mu       sync.Mutex
	log      []countedRequest
}

type countedRequest struct {
	at                  time.Time
	method, path, query string
}

// newCountingProxy listens on a loopback port in front of target
// (host:port). The Host header is passed on as it came: S3 signatures
// cover it.
func newCountingProxy(t testing.TB, target string) *countingProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	p := &countingProxy{endpoint: l.Addr().String()}
	forward := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		p.mu.Lock()
		p.log = append(p.log, countedRequest{at: time.Now(), method: r.Method, path: r.URL.Path, query: r.URL.RawQuery})
		p.mu.Unlock()
		forward.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

// between is the requests that arrived in [start, end).
func (p *countingProxy) between(start, end time.Time) []countedRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []countedRequest
	for _, r := range p.log {
		if !r.at.Before(start) && r.at.Before(end) {
			out = append(out, r)
		}
	}
	return out
}

// waitReconciles waits until the controller's reconcile counter (the
// package's, which its tests share one at a time) reaches want.
func waitReconciles(t testing.TB, want float64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, got := managerActivity(t)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v reconciles after %s, want %v", got, timeout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
