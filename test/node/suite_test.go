//go:build e2enode

// Package node tests the release on a real single-node cluster: the image
// of make release run as a Pod by a kubelet, installed with the Helm chart
// and then with install.yaml, with the sandbox and MinIO running on the host
// and reached from the pod. make e2e-node builds the release and runs this
// suite through hack/node, which brings the node up and tears it down; the
// suite fails (never skips) when run without it.
package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatpayv1alpha1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/testutil/repo"
)

// release is one build of make release: its version and dist folder.
type release struct {
	version, dist string
}

func (r release) chart() string {
	return filepath.Join(r.dist, "crowdpack-"+r.version[1:]+".tgz")
}

func (r release) installYAML() string { return filepath.Join(r.dist, "install.yaml") }

func (r release) imageTar() string {
	return filepath.Join(r.dist, "crowdpack-image-"+r.version+"-linux-amd64.tar")
}

var (
	// first is the release under test; second, a later build that helm
	// upgrade moves to.
	first, second release
	imageRepo     string
	hostIP        string
	kubeconfig    string
	root          string
	kube          client.Client
	clientset     *kubernetes.Clientset
	world         *services // the sandbox and MinIO, on the host
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e-node:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// required reads the variables make e2e-node and hack/node set; without
// them the suite cannot run, and says so by failing.
func required() error {
	vars := map[string]*string{
		"KUBECONFIG":                    &kubeconfig,
		"CROWDPACK_E2E_NODE_HOST_IP":    &hostIP,
		"CROWDPACK_E2E_NODE_VERSION":    &first.version,
		"CROWDPACK_E2E_NODE_DIST":       &first.dist,
		"CROWDPACK_E2E_NODE_VERSION_2":  &second.version,
		"CROWDPACK_E2E_NODE_DIST_2":     &second.dist,
		"CROWDPACK_E2E_NODE_IMAGE_REPO": &imageRepo,
	}
	var missing []string
	for name, v := range vars {
		if *v = os.Getenv(name); *v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 || os.Getenv("CROWDPACK_E2E_NODE") != "1" {
		return fmt.Errorf("run through make e2e-node (hack/node brings up the node): %v not set", missing)
	}
	return nil
}

func run(m *testing.M) (int, error) {
	if err := required(); err != nil {
		return 0, err
	}
	var err error
	if root, err = repo.Root(); err != nil {
		return 0, err
	}
	if err := connect(); err != nil {
		return 0, err
	}
	if world, err = startServices(hostIP); err != nil {
		return 0, err
	}
	defer world.stop()
	return m.Run(), nil
}

func connect() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("read %s: %w", kubeconfig, err)
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), wechatpayv1alpha1.AddToScheme(scheme)); err != nil {
		return err
	}
	if kube, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	clientset, err = kubernetes.NewForConfig(cfg)
	return err
}

// eventually polls check every second until it passes or timeout, then
// fails t with what it last said.
func eventually(t *testing.T, timeout time.Duration, what string, check func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		if last = check(ctx); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s: %v", what, timeout, last)
		case <-time.After(time.Second):
		}
	}
}
