// Package cli_test runs every kubectl-crowdpack command against a real
// kube-apiserver and etcd (envtest), MinIO and the WeChat Pay sandbox, with
// the operator's reconcilers running in the test process as the manager runs
// them.
package cli_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
	ctrlmgr "sigs.k8s.io/controller-runtime"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers"
	"github.com/crowdpack/crowdpack/controllers/uploads"
	"github.com/crowdpack/crowdpack/internal/cli"
	"github.com/crowdpack/crowdpack/internal/metrics"
	"github.com/crowdpack/crowdpack/internal/sandbox"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/testutil/kubetest"
	"github.com/crowdpack/crowdpack/internal/testutil/miniotest"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

const (
	brandID = "1000000000001"
	// brandNamespace is where the manager reads WeChatPayBrand Secrets.
	brandNamespace = "crowdpack-system"
	// partSize keeps parts small, so that a test file has several.
	partSize = 8 << 10
)

var (
	kube       *kubetest.Env
	storage    *miniotest.Server
	identity   *sandbox.Identity
	kubeconfig string
	nsSeq      atomic.Int32
)

func TestMain(m *testing.M) {
	flag.Parse()
	log.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	if testing.Short() {
		os.Exit(m.Run())
	}
	code, err := runSuite(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runSuite(m *testing.M) (int, error) {
	var err error
	if identity, err = sandbox.NewIdentity(brandID); err != nil {
		return 0, err
	}
	if kube, err = kubetest.Start(); err != nil {
		return 0, err
	}
	defer kube.Stop()
	if storage, err = miniotest.Start(); err != nil {
		if errors.Is(err, miniotest.ErrNoBinary) && os.Getenv("CI") == "" {
			fmt.Fprintln(os.Stderr, "skipping test/cli: no MinIO binary (make tools)")
			return 0, nil
		}
		return 0, err
	}
	defer storage.Stop()
	dir, err := os.MkdirTemp("", "crowdpack-cli-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	if kubeconfig, err = kube.AdminKubeconfig(dir, "platform-admin"); err != nil {
		return 0, err
	}
	api, err := startSandbox()
	if err != nil {
		return 0, err
	}
	defer api.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, err := startManager(ctx, api.URL)
	if err != nil {
		return 0, err
	}
	code := m.Run()
	cancel()
	<-done
	return code, nil
}

func startSandbox() (*sandbox.Instance, error) {
	cfg := identity.Config()
	cfg.PartSize = partSize
	cfg.Seed = 42
	s, err := sandbox.New(cfg)
	if err != nil {
		return nil, err
	}
	return s.Listen(sandbox.ListenOptions{})
}

// startManager runs the operator's reconcilers for uploads and brands, as
// main.go wires them, against the sandbox.
func startManager(ctx context.Context, weChatPayURL string) (<-chan error, error) {
	if err := kube.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: brandNamespace}}); err != nil {
		return nil, err
	}
	mgr, err := ctrlmgr.NewManager(kube.Config, ctrlmgr.Options{
		Scheme:                 kube.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controllers.CacheOptions("", brandNamespace),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, err
	}
	guard := source.DefaultGuard()
	guard.AllowInsecure = true
	guard.Allowed = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	r := &uploads.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("crowdpack"),
		NewWeChatPay: func(creds *wechatpay.Credentials) (wechatpay.API, error) {
			c, err := wechatpay.New(creds, wechatpay.Config{BaseURL: weChatPayURL, Timeout: 5 * time.Second})
			if err != nil {
				return nil, err
			}
			return metrics.InstrumentWeChatPay(c), nil
		},
		MaxConcurrentReconciles: 2,
		RetryBaseDelay:          50 * time.Millisecond,
		RetryMaxDelay:           2 * time.Second,
		BrandSecretNamespace:    brandNamespace,
		SourceGuard:             guard,
	}
	if err := controllers.Setup(ctx, mgr, r, brandNamespace); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return done, nil
}

// result is what one run of the plugin printed and returned.
type result struct {
	out, errOut string
	err         error
	code        int
}

// run runs the plugin with args as the platform admin, like
// "kubectl crowdpack ARGS".
func run(t *testing.T, args ...string) result {
	t.Helper()
	return runAs(t, kubeconfig, false, args...)
}

func runAs(t *testing.T, config string, terminal bool, args ...string) result {
	t.Helper()
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	cmd := cli.NewCommand(streams, cli.WithTerminal(terminal))
	shown := strings.Join(args, " ")
	if config != "" {
		args = append([]string{"--kubeconfig", config}, args...)
	}
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	r := result{out: out.String(), errOut: errOut.String(), err: err, code: cli.ExitCode(err)}
	t.Logf("kubectl crowdpack %s\n%s%s(exit %d, %v)", shown, r.out, r.errOut, r.code, err)
	return r
}

// tenant is a namespace with the brand and storage Secrets and a bucket.
type tenant struct {
	t      *testing.T
	ns     string
	bucket string
}

func newTenant(t *testing.T) *tenant {
	t.Helper()
	ctx := context.Background()
	tn := &tenant{t: t, ns: fmt.Sprintf("cli%d", nsSeq.Add(1))}
	tn.bucket = "crowd-" + tn.ns
	must(t, storage.MakeBucket(ctx, tn.bucket))
	must(t, kube.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tn.ns}}))
	must(t, kube.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "wechatpay-brand", Namespace: tn.ns},
		Data:       identity.SecretData(),
	}))
	must(t, kube.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "storage", Namespace: tn.ns},
		StringData: map[string]string{"accesskey": storage.AccessKey, "secretkey": storage.SecretKey},
	}))
	return tn
}

func (tn *tenant) put(key string, data []byte) {
	tn.t.Helper()
	_, err := storage.PutBytes(context.Background(), tn.bucket, key, data)
	must(tn.t, err)
}

// upload is a UserPackageUpload of key in the tenant's bucket.
func (tn *tenant) upload(name, key string, file upv1.FileSpec) *upv1.UserPackageUpload {
	file.PackageType = upv1.PackageTypeExposure
	file.Description = "customers who bought twice in 90 days"
	return &upv1.UserPackageUpload{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: tn.ns},
		Spec: upv1.UserPackageUploadSpec{
			Source: upv1.Source{S3: &upv1.S3Source{
				Endpoint: storage.Endpoint, Bucket: tn.bucket, Key: key, Insecure: true,
				SecretRef: &upv1.SecretReference{Name: "storage"},
			}},
			File:           file,
			CredentialsRef: &upv1.SecretReference{Name: "wechatpay-brand"},
			UserPackageID:  "01000100010000000007",
		},
	}
}

func (tn *tenant) create(u *upv1.UserPackageUpload) {
	tn.t.Helper()
	must(tn.t, kube.Client.Create(context.Background(), u))
}

func (tn *tenant) get(name string) *upv1.UserPackageUpload {
	tn.t.Helper()
	u := &upv1.UserPackageUpload{}
	must(tn.t, kube.Client.Get(context.Background(), ctrl.ObjectKey{Namespace: tn.ns, Name: name}, u))
	return u
}

// waitFor polls the object until ok holds.
func (tn *tenant) waitFor(name, what string, ok func(*upv1.UserPackageUpload) bool) *upv1.UserPackageUpload {
	tn.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		u := tn.get(name)
		if ok(u) {
			return u
		}
		if time.Now().After(deadline) {
			tn.t.Fatalf("%s/%s never %s; status: %+v", tn.ns, name, what, u.Status.Conditions)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (tn *tenant) waitReady(name string) *upv1.UserPackageUpload {
	tn.t.Helper()
	return tn.waitFor(name, "Ready", func(u *upv1.UserPackageUpload) bool {
		return condition(u, upv1.ConditionReady) == metav1.ConditionTrue && u.Status.ObservedGeneration == u.Generation
	})
}

func condition(u *upv1.UserPackageUpload, typ string) metav1.ConditionStatus {
	for _, c := range u.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
