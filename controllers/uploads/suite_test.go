package uploads

import (
	"bytes"
	"cmp"
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/brands"
	"github.com/crowdpack/crowdpack/controllers/managercache"
	"github.com/crowdpack/crowdpack/controllers/secrets"
	"github.com/crowdpack/crowdpack/controllers/syncs"
	"github.com/crowdpack/crowdpack/internal/metrics"
	"github.com/crowdpack/crowdpack/internal/metricsauth"
	"github.com/crowdpack/crowdpack/internal/sandbox"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/testutil/kubetest"
	"github.com/crowdpack/crowdpack/internal/testutil/miniotest"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// The suite runs against real parts: kube-apiserver and etcd (envtest),
// MinIO, and the WeChat Pay sandbox over HTTP. Each test gets its own
// namespace, bucket, sandbox and manager (watching only that namespace), so
// tests can stop and restart "their" operator without disturbing others.
var (
	kube     *kubetest.Env
	storage  *miniotest.Server
	identity *sandbox.Identity
	nsSeq    atomic.Int64
	// managerLogs collects what every manager of the suite logged.
	managerLogs syncBuffer
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const brandID = "1000000000001"

func TestMain(m *testing.M) {
	code, err := runSuite(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runSuite(m *testing.M) (int, error) {
	ctrl.SetLogger(zap.New(zap.WriteTo(&managerLogs)))
	var err error
	if identity, err = sandbox.NewIdentity(brandID); err != nil {
		return 0, err
	}
	flag.Parse()
	if testing.Short() {
		// The unit tier: fakes only; every test that needs the API server,
		// MinIO or the sandbox skips (newHarness, requireCluster).
		return m.Run(), nil
	}
	if kube, err = kubetest.Start(); err != nil {
		return 0, err
	}
	defer kube.Stop()
	if storage, err = miniotest.Start(); err != nil {
		return 0, err
	}
	defer storage.Stop()
	// Managers run as a user with exactly config/rbac's rights (rbac_test.go).
	if err := setupManagerUser(context.Background()); err != nil {
		return 0, err
	}
	code := m.Run()
	if managerBinaryDir != "" {
		_ = os.RemoveAll(managerBinaryDir)
	}
	// Nothing a test run wrote may hold a secret (leaks_test.go).
	if err := checkNoSecretLeaks(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = cmp.Or(code, 1)
	}
	return code, nil
}

// harness is one test's world.
type harness struct {
	// tenancy are the multi-team options of the managers (brands_test.go).
	tenancy tenancyOptions

	t       testing.TB
	ctx     context.Context
	ns      string
	bucket  string
	sandbox *sandbox.Server
	api     *sandbox.Instance
	// managers are the managers started for this test, oldest first.
	managers []*runningManager
	// leaderElection makes managers elect a leader in the test's namespace.
	leaderElection bool
	// metricsAddr is where the manager serves /metrics ("0": nowhere).
	metricsAddr string
	// weChatPayURL, when set, replaces the sandbox as the brand API.
	weChatPayURL string
	// otherNamespaces are more tenants the test's managers watch, each with
	// the same Secrets as ns.
	otherNamespaces []string
	// guard adjusts the source guard of the test's managers.
	guard func(*source.Guard)
	// maxConcurrentReconciles replaces the suite's 2 workers.
	maxConcurrentReconciles int
	// secureMetrics serves metrics as main.go does by default: HTTPS, for
	// tokens the API server authorizes only.
	secureMetrics bool
	// syncs runs the UserPackageSync reconciler too.
	syncs bool
	// wrapAPIReader, when set, comes between the upload reconciler and its
	// reads past the cache (Secrets).
	wrapAPIReader func(client.Reader) client.Reader
	// reconcilers are the reconcilers of managers, in start order.
	reconcilers []*Reconciler
}

type harnessOptions struct {
	// tenancy runs the managers as a multi-team install does.
	tenancy tenancyOptions

	partSize int64
	// wrapClient lets a test put itself between the reconciler and the API server.
	wrapClient func(client.Client) client.Client
	noManager  bool
	// metricsAddr is the manager's metrics bind address; empty means none.
	metricsAddr string
	// leaderElection makes every manager of the test elect a leader first,
	// as main.go does with --leader-elect (failover_test.go).
	leaderElection bool
	// weChatPayURL, when set, replaces the sandbox as the brand API.
	weChatPayURL string
	// otherNamespaces is the number of more tenants the manager watches.
	otherNamespaces int
	// guard adjusts the suite's source guard (testGuard).
	guard func(*source.Guard)
	// maxConcurrentReconciles replaces the suite's 2 workers.
	maxConcurrentReconciles int
	// secureMetrics serves metrics over HTTPS to authorized tokens only.
	secureMetrics bool
	// syncs runs the UserPackageSync reconciler too.
	syncs bool
}

// testGuard is the source guard every manager of the suite runs with, as
// make demo does: MinIO and the tests' file servers listen on 127.0.0.1
// over plain HTTP, so that one address and plain HTTP are allowed; every
// other loopback address stays denied, which the SSRF tests use.
func testGuard() *source.Guard {
	g := source.DefaultGuard()
	g.Allowed = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	g.AllowInsecure = true
	return g
}

// requireCluster skips a test in the unit tier (go test -short).
func requireCluster(t testing.TB) {
	t.Helper()
	if kube == nil {
		t.Skip("needs the API server, MinIO and the sandbox: run without -short")
	}
}

func newHarness(t testing.TB, opts harnessOptions) *harness {
	t.Helper()
	requireCluster(t)
	h := &harness{t: t, ctx: context.Background(), metricsAddr: cmp.Or(opts.metricsAddr, "0"), leaderElection: opts.leaderElection, weChatPayURL: opts.weChatPayURL,
		guard: opts.guard, maxConcurrentReconciles: cmp.Or(opts.maxConcurrentReconciles, 2), secureMetrics: opts.secureMetrics, syncs: opts.syncs}
	h.tenancy = opts.tenancy
	h.ns = fmt.Sprintf("t%d", nsSeq.Add(1))
	h.bucket = "crowd-" + h.ns
	must(t, storage.MakeBucket(h.ctx, h.bucket))
	h.makeTenant(h.ns)
	for i := 0; i < opts.otherNamespaces; i++ {
		ns := fmt.Sprintf("%s-%d", h.ns, i+1)
		h.makeTenant(ns)
		h.otherNamespaces = append(h.otherNamespaces, ns)
	}
	cfg := identity.Config()
	cfg.PartSize = opts.partSize
	cfg.Seed = 42
	var err error
	h.sandbox, err = sandbox.New(cfg)
	must(t, err)
	h.api, err = h.sandbox.Listen(sandbox.ListenOptions{})
	must(t, err)
	t.Cleanup(func() { _ = h.api.Close() })
	if !opts.noManager {
		h.startManager(opts.wrapClient)
	}
	return h
}

// makeTenant creates namespace ns with the brand and storage Secrets.
func (h *harness) makeTenant(ns string) {
	t := h.t
	must(t, kube.Client.Create(h.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	must(t, kube.Client.Create(h.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "wechatpay-brand", Namespace: ns},
		Data:       identity.SecretData(),
	}))
	must(t, kube.Client.Create(h.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "storage", Namespace: ns},
		StringData: map[string]string{secrets.KeyAccessKey: storage.AccessKey, secrets.KeySecretKey: storage.SecretKey},
	}))
}

// startManager runs the operator for this test's namespace until the test
// ends or stopManager is called. It runs as the restricted manager user; it
// may be called again while others run (with leader election, one works).
func (h *harness) startManager(wrap func(client.Client) client.Client) *runningManager {
	t := h.t
	cacheOpts := managercache.CacheOptions()
	cacheOpts.DefaultNamespaces = map[string]cache.Config{h.ns: {}}
	for _, ns := range h.otherNamespaces {
		cacheOpts.DefaultNamespaces[ns] = cache.Config{}
	}
	opts := ctrl.Options{
		Scheme:                 kube.Scheme,
		Metrics:                metricsserver.Options{BindAddress: h.metricsAddr},
		HealthProbeBindAddress: "0",
		Cache:                  cacheOpts,
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	}
	if h.secureMetrics {
		opts.Metrics.SecureServing = true
		opts.Metrics.FilterProvider = metricsauth.WithAuthenticationAndAuthorization
	}
	if h.leaderElection {
		h.electLeader(&opts)
	}
	restConfig := managerConfig()
	if tn := h.tenancy; len(tn.watchNamespaces) > 0 || tn.restConfig != nil {
		watch := tn.watchNamespaces
		if len(watch) == 0 {
			watch = []string{h.ns}
		}
		opts.Cache = managercache.WatchNamespaces(managercache.CacheOptions(), watch, tn.brandSecretNamespace)
		restConfig = cmp.Or(tn.restConfig, restConfig)
	}
	mgr, err := ctrl.NewManager(restConfig, opts)
	must(t, err)
	c := mgr.GetClient()
	if wrap != nil {
		c = wrap(c)
	}
	baseURL := cmp.Or(h.weChatPayURL, h.api.URL)
	r := &Reconciler{
		Client:    c,
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("crowdpack"),
		NewWeChatPay: func(creds *wechatpay.Credentials) (wechatpay.API, error) {
			c, err := wechatpay.New(creds, wechatpay.Config{BaseURL: baseURL, Timeout: 5 * time.Second})
			if err != nil {
				return nil, err
			}
			return metrics.InstrumentWeChatPay(c), nil // as main.go does
		},
		MaxConcurrentReconciles: h.maxConcurrentReconciles,
		RetryBaseDelay:          50 * time.Millisecond,
		RetryMaxDelay:           2 * time.Second,
		BrandSecretNamespace:    h.tenancy.brandSecretNamespace,
		AllowAmbientCredentials: h.tenancy.allowAmbientCredentials,
		SourceGuard:             testGuard(),
	}
	if h.guard != nil {
		h.guard(r.SourceGuard)
	}
	if h.wrapAPIReader != nil {
		r.APIReader = h.wrapAPIReader(r.APIReader)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	must(t, r.SetupWithManager(ctx, mgr))
	h.reconcilers = append(h.reconcilers, r)
	if h.syncs {
		s := &syncs.Reconciler{Client: c, APIReader: mgr.GetAPIReader(), Recorder: r.Recorder, Sources: r.SourceOpener()}
		must(t, s.SetupWithManager(mgr))
	}
	if h.tenancy.brandSecretNamespace != "" {
		brands := &brands.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), SecretNamespace: h.tenancy.brandSecretNamespace}
		must(t, brands.SetupWithManager(mgr))
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	m := &runningManager{t: t, mgr: mgr, cancel: cancel, done: done}
	h.managers = append(h.managers, m)
	t.Cleanup(m.stop)
	return m
}

// stopManager stops every manager of the test.
func (h *harness) stopManager() {
	for _, m := range h.managers {
		m.stop()
	}
}

// put stores data in the test's bucket.
func (h *harness) put(key string, data []byte) {
	h.t.Helper()
	_, err := storage.PutBytes(h.ctx, h.bucket, key, data)
	must(h.t, err)
}

// object is a UserPackageUpload of key in the test's bucket.
func (h *harness) object(name, key string) *upv1.UserPackageUpload {
	return &upv1.UserPackageUpload{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: upv1.UserPackageUploadSpec{
			Source: upv1.Source{S3: &upv1.S3Source{
				Endpoint:  storage.Endpoint,
				Bucket:    h.bucket,
				Key:       key,
				Insecure:  true,
				SecretRef: &upv1.SecretReference{Name: "storage"},
			}},
			File: upv1.FileSpec{
				PackageType: upv1.PackageTypeExposure,
				DataType:    upv1.DataTypePhone,
				Description: "customers who bought twice in 90 days",
			},
			CredentialsRef: &upv1.SecretReference{Name: "wechatpay-brand"},
		},
	}
}

func (h *harness) create(u *upv1.UserPackageUpload) {
	h.t.Helper()
	must(h.t, kube.Client.Create(h.ctx, u))
}

// update applies change to the latest version of the object.
func (h *harness) update(name string, change func(*upv1.UserPackageUpload)) {
	h.t.Helper()
	for {
		u := h.get(name)
		change(u)
		err := kube.Client.Update(h.ctx, u)
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "modified") {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) get(name string) *upv1.UserPackageUpload {
	h.t.Helper()
	u := &upv1.UserPackageUpload{}
	must(h.t, kube.Client.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: name}, u))
	return u
}

// waitFor polls the object until ok says yes, failing after timeout with
// the last status seen.
func (h *harness) waitFor(name string, timeout time.Duration, what string, ok func(*upv1.UserPackageUpload) bool) *upv1.UserPackageUpload {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		u := h.get(name)
		if ok(u) {
			return u
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: not %s after %s; status:\n%s", name, what, timeout, describe(u))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h *harness) waitReady(name string) *upv1.UserPackageUpload {
	h.t.Helper()
	return h.waitFor(name, 60*time.Second, "Ready", func(u *upv1.UserPackageUpload) bool {
		return conditionIs(u, upv1.ConditionReady, metav1.ConditionTrue) && u.Status.ObservedGeneration == u.Generation
	})
}

func (h *harness) waitStalled(name, reason string) *upv1.UserPackageUpload {
	h.t.Helper()
	return h.waitFor(name, 60*time.Second, "Stalled/"+reason, func(u *upv1.UserPackageUpload) bool {
		c := findCondition(u, upv1.ConditionStalled)
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == reason
	})
}

// waitIdle waits until the manager has no object to work on: no worker
// busy and no reconcile finished over three looks 50 ms apart (the suite's
// retry base delay: an object wrongly requeued after an error would be
// reconciled again by then). A check that nothing more happens follows
// it, instead of a guessed sleep. (Queue depth is not looked at: a stopped
// manager of an earlier test may have left it non-zero.)
func (h *harness) waitIdle() {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last := -1.0
	for quiet := 0; quiet < 3; {
		time.Sleep(50 * time.Millisecond)
		busy, reconciles := managerActivity(h.t)
		quiet++
		if busy || reconciles != last {
			quiet, last = 0, reconciles
		}
		if time.Now().After(deadline) {
			h.t.Fatal("the manager did not become idle in 30 s")
		}
	}
}

// managerActivity reports whether the UserPackageUpload controller has a
// worker busy, and how many reconciles it finished, from controller-runtime's
// own metrics.
func managerActivity(t testing.TB) (busy bool, reconciles float64) {
	t.Helper()
	fams, err := crmetrics.Registry.Gather()
	must(t, err)
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			if !labelIs(m, "controller", "userpackageupload") {
				continue
			}
			switch f.GetName() {
			case "controller_runtime_active_workers":
				busy = busy || m.GetGauge().GetValue() > 0
			case "controller_runtime_reconcile_total":
				reconciles += m.GetCounter().GetValue()
			}
		}
	}
	return busy, reconciles
}

func labelIs(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

// eventsOfNamespace returns the events of the test's namespace.
func (h *harness) eventsOfNamespace() []eventsv1.Event {
	h.t.Helper()
	var list eventsv1.EventList
	must(h.t, kube.Client.List(h.ctx, &list, client.InNamespace(h.ns)))
	return list.Items
}

// events returns the events about an object, oldest first.
func (h *harness) events(name string) []eventsv1.Event {
	h.t.Helper()
	var out []eventsv1.Event
	for _, e := range h.eventsOfNamespace() {
		if e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// expectNoWarnings fails the test if the object raised a Warning event.
func (h *harness) expectNoWarnings(name string) {
	h.t.Helper()
	for _, e := range h.events(name) {
		if e.Type == corev1.EventTypeWarning {
			h.t.Errorf("Warning %s about %s: %s", e.Reason, name, e.Note)
		}
	}
}

// waitEvent waits for an event with reason about the object.
func (h *harness) waitEvent(name, eventType, reason string) eventsv1.Event {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, e := range h.events(name) {
			if e.Type == eventType && e.Reason == reason {
				return e
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no %s event %s about %s", eventType, reason, name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kstatus computes what Flux and kstatus-based tools see.
func kstatus(t *testing.T, u *upv1.UserPackageUpload) status.Status {
	t.Helper()
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(u)
	must(t, err)
	res, err := status.Compute(&unstructured.Unstructured{Object: raw})
	must(t, err)
	return res.Status
}

func findCondition(u *upv1.UserPackageUpload, typ string) *metav1.Condition {
	for i := range u.Status.Conditions {
		if u.Status.Conditions[i].Type == typ {
			return &u.Status.Conditions[i]
		}
	}
	return nil
}

func conditionIs(u *upv1.UserPackageUpload, typ string, s metav1.ConditionStatus) bool {
	c := findCondition(u, typ)
	return c != nil && c.Status == s && c.ObservedGeneration == u.Generation
}

func describe(u *upv1.UserPackageUpload) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  generation %d, observed %d\n", u.Generation, u.Status.ObservedGeneration)
	for _, c := range u.Status.Conditions {
		fmt.Fprintf(&b, "  %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	if up := firstUpload(u); up != nil {
		fmt.Fprintf(&b, "  upload %+v\n", *up)
	}
	return b.String()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tenancyOptions run a manager as a multi-team install does (brands_test.go).
type tenancyOptions struct {
	// brandSecretNamespace, when set, is where brand Secrets are read from,
	// and the WeChatPayBrand controller runs too.
	brandSecretNamespace string
	// watchNamespaces replaces the test's namespace as what the manager
	// watches (with the brand-secret namespace, as --watch-namespaces does).
	watchNamespaces []string
	// allowAmbientCredentials is --allow-ambient-credentials.
	allowAmbientCredentials bool
	// restConfig, when set, replaces the restricted manager user.
	restConfig *rest.Config
}

// firstUpload is the upload of the file's first chunk (of the only one, for
// a file under the lines limit), or nil before there is one.
func firstUpload(u *upv1.UserPackageUpload) *upv1.UploadStatus {
	if len(u.Status.Uploads) == 0 {
		return nil
	}
	return &u.Status.Uploads[0]
}
