package cli

import (
	"fmt"

	"golang.org/x/term"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/scheme"
)

// clients are the connections to the cluster a command needs.
type clients struct {
	rest      *rest.Config
	client    client.Client
	discovery discovery.DiscoveryInterface
	// namespace is -n, or the kubeconfig context's, or "default".
	namespace string
}

var cliScheme = func() *runtime.Scheme {
	s := scheme.New()
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

// connect builds the clients from the kubeconfig flags.
func (o *options) connect() (*clients, error) {
	cfg, err := o.config.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "kubectl-crowdpack"
	c, err := client.New(cfg, client.Options{Scheme: cliScheme})
	if err != nil {
		return nil, err
	}
	d, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ns, _, err := o.config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, err
	}
	return &clients{rest: cfg, client: c, discovery: d, namespace: ns}, nil
}

// served reports whether the API server serves resource (a plural) in
// crowdpack's group and version, by discovery.
func (c *clients) served(resource string) (bool, error) {
	list, err := c.discovery.ServerResourcesForGroupVersion(upv1.GroupVersion.String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover %s: %w", upv1.GroupVersion, err)
	}
	for _, r := range list.APIResources {
		if r.Name == resource {
			return true, nil
		}
	}
	return false, nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}
