// Package kubetest starts a real kube-apiserver and etcd (envtest) with the
// crowdpack CRDs installed, for tests that need the API server's own
// admission, storage and watch behaviour.
package kubetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	crowdscheme "github.com/crowdpack/crowdpack/internal/scheme"
	"github.com/crowdpack/crowdpack/internal/testutil/repo"
)

// stopTimeout is how long kube-apiserver and etcd get to stop before they
// are killed.
const stopTimeout = 5 * time.Second

// startTimeout is how long kube-apiserver and etcd get to become ready.
const startTimeout = 2 * time.Minute

// Env is a running API server with the CRDs installed.
type Env struct {
	Config *rest.Config
	Client client.Client
	Scheme *runtime.Scheme
	env    *envtest.Environment
	// certDir holds kube-apiserver's serving certificates. It is ours, not
	// envtest's temporary one, so that a restarted API server keeps them
	// (envtest makes new ones in a new directory, which clients would not trust).
	certDir string
	// etcdDir holds etcd's data. It is ours too, so that a restarted etcd
	// (RestartEtcd) keeps every object: envtest removes a directory it made.
	etcdDir string
}

// Start starts etcd and kube-apiserver from KUBEBUILDER_ASSETS (or the
// repository's bin/) and installs config/crd/bases.
func Start() (*Env, error) {
	root, err := repo.Root()
	if err != nil {
		return nil, err
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin")
	}
	if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); err != nil {
		return nil, fmt.Errorf("kube-apiserver not found in %s: run 'make tools' (hack/tools.sh) first", assets)
	}
	scheme := crowdscheme.New()
	certDir, err := os.MkdirTemp("", "crowdpack-apiserver-")
	if err != nil {
		return nil, err
	}
	etcdDir, err := os.MkdirTemp("", "crowdpack-etcd-")
	if err != nil {
		_ = os.RemoveAll(certDir)
		return nil, err
	}
	removeDirs := func() { _ = os.RemoveAll(certDir); _ = os.RemoveAll(etcdDir) }
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
		// A restarted API server (RestartAPIServer) is killed after this.
		ControlPlaneStopTimeout: stopTimeout,
		// On a loaded machine a restarted kube-apiserver takes longer to
		// be ready than envtest's 20 s default.
		ControlPlaneStartTimeout: startTimeout,
	}
	env.ControlPlane.APIServer = &envtest.APIServer{CertDir: certDir}
	env.ControlPlane.Etcd = &envtest.Etcd{DataDir: etcdDir}
	cfg, err := env.Start()
	if err != nil {
		removeDirs()
		return nil, fmt.Errorf("start envtest: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		removeDirs()
		return nil, fmt.Errorf("client for envtest: %w", err)
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, env: env, certDir: certDir, etcdDir: etcdDir}, nil
}

// Stop stops kube-apiserver and etcd.
func (e *Env) Stop() error {
	defer os.RemoveAll(e.etcdDir)
	defer os.RemoveAll(e.certDir)
	return e.env.Stop()
}

// RestartEtcd stops etcd, waits down, and starts it again on the same
// address with the same data: kube-apiserver loses its storage meanwhile
// and carries on once etcd is back. Like RestartAPIServer, it kills etcd
// when it has not stopped after stopTimeout.
func (e *Env) RestartEtcd(down time.Duration) error {
	etcd := e.env.ControlPlane.Etcd
	if err := etcd.Stop(); err != nil {
		if !strings.Contains(err.Error(), "timeout waiting for process") {
			return fmt.Errorf("stop etcd: %w", err)
		}
		time.Sleep(500 * time.Millisecond) // SIGKILLed: give it a moment to exit
	}
	time.Sleep(down)
	if err := etcd.Start(); err != nil {
		return fmt.Errorf("restart etcd: %w", err)
	}
	return nil
}

// RestartAPIServer stops kube-apiserver, waits down, and starts it again on
// the same port with the same certificates and etcd, so that existing
// clients and users carry on once it is back (Start waits for /healthz).
// It asks kube-apiserver to stop (SIGTERM) and kills it when it has not
// stopped after stopTimeout: with requests in flight it drains them for a
// long while. killed says it had to be killed.
func (e *Env) RestartAPIServer(down time.Duration) (killed bool, err error) {
	apiServer := e.env.ControlPlane.GetAPIServer()
	if err = apiServer.Stop(); err != nil {
		if !strings.Contains(err.Error(), "timeout waiting for process") {
			return false, fmt.Errorf("stop kube-apiserver: %w", err)
		}
		killed = true // SIGKILLed: give it a moment to exit
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(down)
	if err := apiServer.Start(); err != nil {
		return killed, fmt.Errorf("restart kube-apiserver: %w", err)
	}
	return killed, nil
}

// Environment is the underlying envtest environment, for tests that add
// users or restart the control plane.
func (e *Env) Environment() *envtest.Environment { return e.env }
