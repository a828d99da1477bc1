package docs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/crowdpack/crowdpack/internal/testutil/kubetest"
)

const (
	fieldOwner = "crowdpack-docs-test"
	// kubeVersion is what helm template renders the chart for (a helm built
	// from source assumes 1.20, which the chart's kubeVersion refuses).
	kubeVersion = "v1.37.0"
	// modulePath is how the docs name this repository in kustomize remote
	// resources; the test builds them from the checkout instead.
	modulePath = "github.com/crowdpack/crowdpack/"
)

var (
	kubeOnce sync.Once
	kube     *kubetest.Env
	kubeErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if kube != nil {
		_ = kube.Stop()
	}
	os.Exit(code)
}

// apiServer starts envtest (a real kube-apiserver and etcd with the CRDs)
// the first time a test needs it.
func apiServer(t *testing.T) *kubetest.Env {
	t.Helper()
	kubeOnce.Do(func() { kube, kubeErr = kubetest.Start() })
	if kubeErr != nil {
		t.Fatalf("start the API server: %v", kubeErr)
	}
	return kube
}

// TestYAMLBlocksAreAcceptedByTheAPIServer applies every object of every
// yaml block with a server-side dry run: the API server's schema, defaults,
// CEL rules and admission judge what a reader would apply. A block
// preceded by <!-- helm-values --> is rendered with the chart, and a
// kustomization.yaml is built; what they render is dry-run too.
func TestYAMLBlocksAreAcceptedByTheAPIServer(t *testing.T) {
	n := 0
	for _, p := range pages(t) {
		for _, b := range p.blocks {
			if (b.lang != "yaml" && b.lang != "yml") || b.marker == "not-run" {
				continue
			}
			n++
			where := p.at(b.line)
			objs, err := blockObjects(t, b)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			for _, obj := range objs {
				if err := dryRunApply(t, obj); err != nil {
					t.Errorf("%s: %s is refused by the API server: %v", where, describe(obj), err)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no yaml block found: is the docs parser broken?")
	}
}

// blockObjects turns a yaml block into the objects a reader would apply.
func blockObjects(t *testing.T, b block) ([]*unstructured.Unstructured, error) {
	if b.marker == "helm-values" {
		return renderChart(t, b.text)
	}
	docs, err := kubetest.DecodeObjects([]byte(b.text))
	if err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("an empty yaml block")
	}
	if len(docs) == 1 && isKustomization(docs[0]) {
		return buildKustomization(t, b.text)
	}
	for _, d := range docs {
		if d.GetAPIVersion() == "" || d.GetKind() == "" {
			return nil, fmt.Errorf("a document without apiVersion and kind: make it a whole object, or mark the block <!-- helm-values --> or <!-- not-run: why -->")
		}
	}
	return docs, nil
}

func isKustomization(u *unstructured.Unstructured) bool {
	if u.GetKind() == "Kustomization" {
		return strings.HasPrefix(u.GetAPIVersion(), "kustomize.config.k8s.io/")
	}
	if u.GetKind() != "" {
		return false
	}
	for _, k := range []string{"resources", "components", "patches"} {
		if _, ok := u.Object[k]; ok {
			return true
		}
	}
	return false
}

// buildKustomization builds a kustomization.yaml with the kustomize that
// kubectl has built in, this repository standing in for its remote URL.
func buildKustomization(t *testing.T, text string) ([]*unstructured.Unstructured, error) {
	dir := t.TempDir()
	// kustomize takes other kustomizations by relative path only.
	rel, err := filepath.Rel(dir, root)
	if err != nil {
		return nil, err
	}
	text = strings.ReplaceAll(text, modulePath, filepath.ToSlash(rel)+"/")
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(text), 0o644); err != nil {
		return nil, err
	}
	opts := krusty.MakeDefaultOptions()
	resources, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize: %w", err)
	}
	var out []*unstructured.Unstructured
	for _, r := range resources.Resources() {
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// renderChart renders charts/crowdpack with the block as a values file,
// with the pinned helm; the chart's values.schema.json judges the values.
func renderChart(t *testing.T, values string) ([]*unstructured.Unstructured, error) {
	var v map[string]any
	if err := yaml.Unmarshal([]byte(values), &v); err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	helm := filepath.Join(root, "bin", "helm")
	if _, err := os.Stat(helm); err != nil {
		return nil, fmt.Errorf("bin/helm is missing: run make tools (hack/tools.sh helm)")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(file, []byte(values), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(helm, "template", "crowdpack", "charts/crowdpack", "--namespace", "crowdpack-system",
		"--kube-version", kubeVersion, "--values", file)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+dir, "HELM_CACHE_HOME="+dir, "HELM_DATA_HOME="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm template with these values: %w\n%s", err, stderr.String())
	}
	return kubetest.DecodeObjects(stdout.Bytes())
}

// dryRunApply server-side applies obj with dryRun=All, creating its
// namespace for real first (a dry-run object needs it to exist).
func dryRunApply(t *testing.T, obj *unstructured.Unstructured) error {
	env := apiServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if obj.GetKind() == "Namespace" {
		ensureNamespace(ctx, t, obj.GetName())
	}
	if ns := obj.GetNamespace(); ns != "" {
		ensureNamespace(ctx, t, ns)
	}
	return env.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()),
		client.FieldOwner(fieldOwner), client.ForceOwnership, client.DryRunAll)
}

func ensureNamespace(ctx context.Context, t *testing.T, name string) {
	ns := &corev1.Namespace{}
	ns.Name = name
	if err := apiServer(t).Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

func describe(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", u.GetKind(), ns, u.GetName())
	}
	return fmt.Sprintf("%s %s", u.GetKind(), u.GetName())
}
