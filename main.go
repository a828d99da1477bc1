// Command manager runs the crowdpack operator: it takes the crowd-package
// files UserPackageUploads point at into WeChat Pay's brand marketing API.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	uberzap "go.uber.org/zap"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/crowdpack/crowdpack/controllers"
	"github.com/crowdpack/crowdpack/controllers/managercache"
	"github.com/crowdpack/crowdpack/controllers/uploads"
	"github.com/crowdpack/crowdpack/internal/delta"
	"github.com/crowdpack/crowdpack/internal/lazylog"
	"github.com/crowdpack/crowdpack/internal/memlimit"
	"github.com/crowdpack/crowdpack/internal/metrics"
	"github.com/crowdpack/crowdpack/internal/metricsauth"
	"github.com/crowdpack/crowdpack/internal/scheme"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/version"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// options are the manager's flags.
type options struct {
	wechatpayEndpoint       string
	wechatpayBackup         string
	wechatpayCAFile         string
	wechatpayTimeout        time.Duration
	maxConcurrentReconciles int
	partConcurrency         int
	partMemory              int64
	deltaMemory             resource.QuantityValue
	memoryRequest           string
	retryBaseDelay          time.Duration
	retryMaxDelay           time.Duration
	leaderElect             bool
	leaderElectionNamespace string
	metricsAddr             string
	metricsSecure           bool
	probeAddr               string
	pprofAddr               string
	kubeAPIQPS              float64
	kubeAPIBurst            int
	printVersion            bool
	// Tenancy (see docs/multi-tenancy.md).
	brandSecretNamespace    string
	watchNamespaces         string
	allowAmbientCredentials bool
	sourceDeniedCIDRs       string
	sourceAllowedCIDRs      string
	allowInsecureSources    bool
	sourceIdleTimeout       time.Duration
	sourceMinRate           int64
	maxFileSize             int64
}

func parseFlags() (options, zap.Options) {
	var o options
	flag.StringVar(&o.wechatpayEndpoint, "wechatpay-endpoint", wechatpay.DefaultBaseURL,
		"Base URL of WeChat Pay's API, or of a wechatpay-sandbox.")
	flag.StringVar(&o.wechatpayBackup, "wechatpay-backup-endpoint", "",
		"Base URL tried when the endpoint cannot be connected to; with the default endpoint it defaults to "+wechatpay.DefaultBackupURL+".")
	flag.StringVar(&o.wechatpayCAFile, "wechatpay-ca-file", "", "PEM file of extra CAs trusted for the WeChat Pay endpoint.")
	flag.DurationVar(&o.wechatpayTimeout, "wechatpay-timeout", wechatpay.DefaultTimeout, "Timeout of one WeChat Pay API call.")
	flag.IntVar(&o.maxConcurrentReconciles, "max-concurrent-reconciles", controllers.Defaults.MaxConcurrentReconciles, "UserPackageUploads worked on at once; one namespace reads with at most half of them.")
	flag.IntVar(&o.partConcurrency, "part-concurrency", controllers.Defaults.PartConcurrency, "Parts of one upload sent at once.")
	flag.Int64Var(&o.partMemory, "max-part-memory", controllers.Defaults.PartMemory,
		"Bytes of parts held in memory at once, by all uploads together (at least 20 MB, the largest part).")
	o.deltaMemory.Quantity = *resource.NewQuantity(controllers.Defaults.DeltaMemory, resource.BinarySI)
	flag.Var(&o.deltaMemory, "max-delta-memory",
		"Bytes (a quantity such as 64Mi) the comparisons of spec.file.excludeMembersOf hold at once, by all uploads together; a larger base takes more passes over both files.")
	flag.StringVar(&o.memoryRequest, "memory-request", os.Getenv("MEMORY_REQUEST"),
		"The manager's memory request, a quantity such as 128Mi (default: MEMORY_REQUEST, which the chart and manifests set to the container's); the Go heap is kept under it, less room for the binary's code, unless GOMEMLIMIT is set. Empty or 0: no soft limit.")
	flag.DurationVar(&o.retryBaseDelay, "retry-base-delay", controllers.Defaults.RetryBaseDelay, "First delay after a transient error; it doubles on each further one.")
	flag.DurationVar(&o.retryMaxDelay, "retry-max-delay", controllers.Defaults.RetryMaxDelay, "Longest delay after transient errors.")
	flag.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader, so that only one replica works at a time.")
	flag.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the manager's own).")
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "Address of the metrics endpoint; 0 disables it.")
	flag.BoolVar(&o.metricsSecure, "metrics-secure", true,
		"Serve metrics over HTTPS to callers whose token the API server authorizes to get /metrics (ClusterRole crowdpack-metrics-reader); false serves plain HTTP, for local use.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	flag.StringVar(&o.pprofAddr, "pprof-bind-address", "", "Address of Go's pprof endpoints, for profiling; empty disables them.")
	flag.Float64Var(&o.kubeAPIQPS, "kube-api-qps", 200, "Queries per second to the Kubernetes API server.")
	flag.IntVar(&o.kubeAPIBurst, "kube-api-burst", 400, "Burst of queries to the Kubernetes API server.")
	flag.StringVar(&o.brandSecretNamespace, "brand-secret-namespace", os.Getenv("POD_NAMESPACE"),
		"Namespace of the Secrets WeChatPayBrands name (default: the manager's own, from POD_NAMESPACE).")
	flag.StringVar(&o.watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces whose UserPackageUploads and Secrets the manager watches and reads (plus the brand-secret namespace); empty: all.")
	flag.BoolVar(&o.allowAmbientCredentials, "allow-ambient-credentials", false,
		"Lend the manager's own environment and workload identity (IRSA) to s3 sources that ask for it with provider: aws and no secretRef.")
	flag.BoolVar(&o.printVersion, "version", false, "Print the version, commit and Go version, and exit.")
	flag.StringVar(&o.sourceDeniedCIDRs, "source-denied-cidrs", source.DefaultDeniedCIDRs,
		"Networks the manager never connects to for a source, checked on the resolved address of every connection and redirect (comma-separated CIDRs).")
	flag.StringVar(&o.sourceAllowedCIDRs, "source-allowed-cidrs", "",
		"Exceptions to --source-denied-cidrs, e.g. 127.0.0.1/32 for a MinIO on the node's loopback (comma-separated CIDRs).")
	flag.BoolVar(&o.allowInsecureSources, "allow-insecure-sources", false,
		"Allow plain-HTTP sources (s3 insecure: true, http:// URLs), e.g. for an in-cluster MinIO without TLS.")
	flag.DurationVar(&o.sourceIdleTimeout, "source-idle-timeout", source.DefaultIdleTimeout,
		"A read from a source that receives no byte for this long fails and is retried.")
	flag.Int64Var(&o.sourceMinRate, "source-min-rate", source.DefaultMinRate,
		"Slowest read from a source, in bytes per second averaged over 30 s; a slower one fails and is retried. 0 disables the check.")
	flag.Int64Var(&o.maxFileSize, "max-file-size", source.DefaultMaxFileSize,
		"Largest source file in bytes; a larger one stalls as SourceTooLarge before any of it is read.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	return o, zapOpts
}

func main() {
	o, zapOpts := parseFlags()
	if o.printVersion {
		fmt.Println(version.String("manager"))
		return
	}
	// Fields are encoded only for lines that are written (see lazylog).
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts), zap.RawZapOpts(uberzap.WrapCore(lazylog.Core))))
	if err := run(ctrl.SetupSignalHandler(), o); err != nil {
		ctrl.Log.Error(err, "manager stopped")
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	// Flags first: a mistake in them is reported before any connection.
	if err := setSoftMemoryLimit(o.memoryRequest); err != nil {
		return err
	}
	uploads, err := uploadReconciler(o)
	if err != nil {
		return err
	}
	cfg := ctrl.GetConfigOrDie()
	apiServer, err := apiServerAnswers(cfg)
	if err != nil {
		return err
	}
	if err := waitForAPIServer(ctx, apiServer, o.probeAddr); err != nil {
		return err
	}
	mgr, err := newManager(o, cfg)
	if err != nil {
		return err
	}
	if err := controllers.Setup(ctx, mgr, uploads, o.brandSecretNamespace); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("kube-apiserver", apiServer); err != nil {
		return err
	}
	ctrl.Log.Info("starting manager", "version", version.Version, "commit", version.Commit, "wechatpayEndpoint", o.wechatpayEndpoint,
		"brandSecretNamespace", o.brandSecretNamespace, "watchNamespaces", o.watchNamespaces, "allowAmbientCredentials", o.allowAmbientCredentials)
	return mgr.Start(ctx)
}

// newManager is the controller manager the flags describe: API rate
// limits, cache scope, metrics, probes and leader election.
func newManager(o options, cfg *rest.Config) (ctrl.Manager, error) {
	cfg.QPS, cfg.Burst = float32(o.kubeAPIQPS), o.kubeAPIBurst
	// With --watch-namespaces, only those namespaces (and the brand Secrets).
	cacheOpts := controllers.CacheOptions(o.watchNamespaces, o.brandSecretNamespace)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme.New(),
		Metrics:                 metricsOptions(o),
		Cache:                   cacheOpts,
		MapperProvider:          managercache.NewRESTMapper,
		HealthProbeBindAddress:  o.probeAddr,
		PprofBindAddress:        o.pprofAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "crowdpack.wechatpay.crowdpack.io",
		LeaderElectionNamespace: o.leaderElectionNamespace,
		// Stop at once when leadership is lost, so two replicas never work together.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	return mgr, nil
}

// uploadReconciler is the UserPackageUpload reconciler the flags describe,
// still without the manager's clients.
func uploadReconciler(o options) (*uploads.Reconciler, error) {
	newWeChatPay, err := weChatPayClients(o)
	if err != nil {
		return nil, err
	}
	guard, err := sourceGuard(o)
	if err != nil {
		return nil, err
	}
	deltaMemory := o.deltaMemory.Value()
	if deltaMemory <= 0 {
		return nil, fmt.Errorf("--max-delta-memory must be positive, not %s", o.deltaMemory.String())
	}
	return &uploads.Reconciler{
		NewWeChatPay:            newWeChatPay,
		DeltaPool:               delta.NewPool(deltaMemory),
		PartConcurrency:         o.partConcurrency,
		PartMemory:              o.partMemory,
		MaxConcurrentReconciles: o.maxConcurrentReconciles,
		RetryBaseDelay:          o.retryBaseDelay,
		RetryMaxDelay:           o.retryMaxDelay,
		BrandSecretNamespace:    o.brandSecretNamespace,
		AllowAmbientCredentials: o.allowAmbientCredentials,
		SourceGuard:             guard,
	}, nil
}

// weChatPayClients returns what builds a brand's API client: on the flags'
// endpoints, sharing one keep-alive HTTP client, instrumented.
func weChatPayClients(o options) (func(*wechatpay.Credentials) (wechatpay.API, error), error) {
	httpClient, err := wechatPayHTTPClient(o.wechatpayCAFile)
	if err != nil {
		return nil, err
	}
	api := wechatpay.Config{BaseURL: o.wechatpayEndpoint, BackupURL: o.wechatpayBackup, HTTPClient: httpClient, Timeout: o.wechatpayTimeout}
	return func(creds *wechatpay.Credentials) (wechatpay.API, error) {
		c, err := wechatpay.New(creds, api)
		if err != nil {
			return nil, err
		}
		// Counted and timed in crowdpack_wechatpay_* (served on --metrics-bind-address).
		return metrics.InstrumentWeChatPay(c), nil
	}, nil
}

// metricsOptions serves metrics as kubebuilder v4 scaffolds it: HTTPS
// (a self-signed certificate) to callers whose token the API server
// authenticates and authorizes (TokenReview, SubjectAccessReview for
// nonResourceURL /metrics), unless --metrics-secure=false.
func metricsOptions(o options) metricsserver.Options {
	opts := metricsserver.Options{BindAddress: o.metricsAddr, SecureServing: o.metricsSecure}
	if o.metricsSecure {
		opts.FilterProvider = metricsauth.WithAuthenticationAndAuthorization
		// HTTP/2 off, as kubebuilder scaffolds it (HTTP/2 Rapid Reset, CVE-2023-44487).
		opts.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	}
	return opts
}

// sourceGuard is the platform's policy for tenants' sources, from the flags.
func sourceGuard(o options) (*source.Guard, error) {
	denied, err := source.ParseCIDRs(o.sourceDeniedCIDRs)
	if err != nil {
		return nil, fmt.Errorf("--source-denied-cidrs: %w", err)
	}
	allowed, err := source.ParseCIDRs(o.sourceAllowedCIDRs)
	if err != nil {
		return nil, fmt.Errorf("--source-allowed-cidrs: %w", err)
	}
	return &source.Guard{
		Denied:        denied,
		Allowed:       allowed,
		AllowInsecure: o.allowInsecureSources,
		IdleTimeout:   o.sourceIdleTimeout,
		MinRate:       o.sourceMinRate,
		RateWindow:    source.DefaultRateWindow,
		MaxFileSize:   o.maxFileSize,
	}, nil
}

// wechatPayHTTPClient is the one keep-alive HTTP client every brand's API
// client shares.
func wechatPayHTTPClient(caFile string) (*http.Client, error) {
	var bundle []byte
	if caFile != "" {
		var err error
		if bundle, err = os.ReadFile(caFile); err != nil {
			return nil, fmt.Errorf("read --wechatpay-ca-file: %w", err)
		}
	}
	return wechatpay.NewHTTPClient(bundle)
}

// setSoftMemoryLimit keeps the Go heap inside the memory request (a
// quantity; empty for none), unless GOMEMLIMIT says otherwise.
func setSoftMemoryLimit(request string) error {
	var bytes int64
	if request != "" {
		q, err := resource.ParseQuantity(request)
		if err != nil {
			return fmt.Errorf("--memory-request (or MEMORY_REQUEST) %q: %w", request, err)
		}
		bytes = q.Value()
	}
	ctrl.Log.Info("soft memory limit", "limit", memlimit.Apply(bytes, os.Getenv("GOMEMLIMIT")))
	return nil
}
