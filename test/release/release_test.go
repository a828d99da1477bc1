// Package release tests what a newcomer installs: make release's files
// apply to a real API server (envtest, server-side dry run), the packaged
// chart lints and renders with the release's image, the tree is left as it
// was, binaries built by the Makefile print the version they were stamped
// with, and the supported Kubernetes range is stated alike everywhere.
// It needs bin/ (make tools).
package release

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/crowdpack/crowdpack/internal/testutil/kubetest"
	"github.com/crowdpack/crowdpack/internal/testutil/repo"
)

const (
	version      = "v0.2.0"
	chartVersion = "0.2.0"
	imageRepo    = "registry.example.com/crowdpack"
	namespace    = "crowdpack-system"
)

var (
	root string
	kube *kubetest.Env
	// dist is where make release wrote, in TestMain.
	dist string
	// treeBefore and treeAfter are git status before and after make release.
	treeBefore, treeAfter string
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "release test:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	if root, err = repo.Root(); err != nil {
		return 0, err
	}
	tmp, err := os.MkdirTemp("", "crowdpack-release-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	dist = filepath.Join(tmp, "dist")
	if treeBefore, err = gitStatus(); err != nil {
		return 0, err
	}
	if out, err := makeTarget("release", "VERSION="+version, "IMG="+imageRepo, "DIST="+dist); err != nil {
		return 0, fmt.Errorf("make release: %w\n%s", err, out)
	}
	if treeAfter, err = gitStatus(); err != nil {
		return 0, err
	}
	if kube, err = kubetest.Start(); err != nil {
		return 0, err
	}
	defer kube.Stop()
	return m.Run(), nil
}

func gitStatus() (string, error) {
	cmd := exec.Command("git", "status", "--porcelain", "--untracked-files=all")
	cmd.Dir = root
	out, err := cmd.Output()
	return string(out), err
}

// makeTarget runs make in the repository and returns its combined output.
func makeTarget(args ...string) (string, error) {
	cmd := exec.Command("make", append([]string{"-s"}, args...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func helm(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(filepath.Join(root, "bin", "helm"), args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes()
}

func decodeFile(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(path)
	must(t, err)
	return decode(t, raw)
}

func decode(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	objs, err := kubetest.DecodeObjects(data)
	must(t, err)
	return objs
}

// dryRunApply has the API server validate every object (schema, CEL,
// admission) without storing it, as kubectl apply --server-side --dry-run=server.
func dryRunApply(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := kube.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := kube.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
			client.FieldOwner("release-test"), client.ForceOwnership, client.DryRunAll); err != nil {
			t.Errorf("the API server refuses %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

func managerImage(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			if c := c.(map[string]any); c["name"] == "manager" {
				return fmt.Sprint(c["image"])
			}
		}
	}
	t.Fatal("no Deployment with a manager container")
	return ""
}

func TestMakeReleaseChangesNothingInTheTree(t *testing.T) {
	if d := cmp.Diff(treeBefore, treeAfter); d != "" {
		t.Errorf("make release changed the tree (git status -before +after):\n%s", d)
	}
}

func TestMakeReleaseWritesItsFilesAndTheirChecksums(t *testing.T) {
	entries, err := os.ReadDir(dist)
	must(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"SHA256SUMS", "crds.yaml", "crowdpack-" + chartVersion + ".tgz", imageFile, "install.yaml",
		"kubectl-crowdpack-linux-amd64", "kubectl-crowdpack-linux-arm64"}
	if d := cmp.Diff(want, names); d != "" {
		t.Fatalf("dist/ -want +got:\n%s", d)
	}
	sums, err := os.Open(filepath.Join(dist, "SHA256SUMS"))
	must(t, err)
	defer sums.Close()
	var summed []string
	for s := bufio.NewScanner(sums); s.Scan(); {
		sum, name, ok := strings.Cut(s.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q is not as sha256sum writes it", s.Text())
		}
		data, err := os.ReadFile(filepath.Join(dist, name))
		must(t, err)
		if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != sum {
			t.Errorf("SHA256SUMS has the wrong sum for %s", name)
		}
		summed = append(summed, name)
	}
	slices.Sort(summed)
	if d := cmp.Diff(want[1:], summed); d != "" {
		t.Errorf("SHA256SUMS sums -want +got:\n%s", d)
	}
}

// The plugin of this machine's platform runs and says the release's version.
func TestThePluginIsStampedWithTheVersion(t *testing.T) {
	if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
		t.Skipf("no plugin binary is released for %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	out, err := exec.Command(filepath.Join(dist, "kubectl-crowdpack-linux-"+runtime.GOARCH), "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl-crowdpack --version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "kubectl-crowdpack "+version+" ") {
		t.Errorf("kubectl-crowdpack --version = %q, want the release %s", out, version)
	}
}

func TestInstallYAMLIsAcceptedByTheAPIServerWithTheReleaseImageAndLabels(t *testing.T) {
	objs := decodeFile(t, filepath.Join(dist, "install.yaml"))
	kinds := map[string]bool{}
	for _, o := range objs {
		kinds[o.GetKind()] = true
		for _, l := range []string{"name", "instance", "version", "component", "part-of", "managed-by"} {
			if o.GetLabels()["app.kubernetes.io/"+l] == "" {
				t.Errorf("%s %s has no app.kubernetes.io/%s label", o.GetKind(), o.GetName(), l)
			}
		}
		if v := o.GetLabels()["app.kubernetes.io/version"]; v != version {
			t.Errorf("%s %s is labelled version %q, want %s", o.GetKind(), o.GetName(), v, version)
		}
	}
	for _, k := range []string{"CustomResourceDefinition", "Namespace", "Deployment", "ClusterRole", "ServiceAccount"} {
		if !kinds[k] {
			t.Errorf("install.yaml has no %s", k)
		}
	}
	if img := managerImage(t, objs); img != imageRepo+":"+version {
		t.Errorf("install.yaml's manager image is %s, want %s:%s", img, imageRepo, version)
	}
	dryRunApply(t, objs)
}

func TestCRDsYAMLIsTheCRDOfInstallYAML(t *testing.T) {
	crds := decodeFile(t, filepath.Join(dist, "crds.yaml"))
	var fromInstall []*unstructured.Unstructured
	for _, o := range decodeFile(t, filepath.Join(dist, "install.yaml")) {
		if o.GetKind() == "CustomResourceDefinition" {
			fromInstall = append(fromInstall, o)
		}
	}
	if len(crds) == 0 {
		t.Fatal("crds.yaml is empty")
	}
	if d := cmp.Diff(fromInstall, crds); d != "" {
		t.Errorf("crds.yaml differs from install.yaml's CRDs -install +crds:\n%s", d)
	}
	dryRunApply(t, crds)
}

func TestThePackagedChartLintsAndRendersTheRelease(t *testing.T) {
	tgz := filepath.Join(dist, "crowdpack-"+chartVersion+".tgz")
	helm(t, "lint", tgz, "--strict", "--namespace", namespace, "--kube-version", "v1.28.0")
	var chart struct {
		Version, AppVersion string
	}
	must(t, yaml.Unmarshal(helm(t, "show", "chart", tgz), &chart))
	if chart.Version != chartVersion || chart.AppVersion != version {
		t.Errorf("the packaged chart is version %s, appVersion %s; want %s, %s", chart.Version, chart.AppVersion, chartVersion, version)
	}
	objs := decode(t, helm(t, "template", "crowdpack", tgz, "--namespace", namespace, "--kube-version", "v1.28.0"))
	if img := managerImage(t, objs); img != imageRepo+":"+version {
		t.Errorf("the packaged chart's manager image is %s, want %s:%s", img, imageRepo, version)
	}
	if !slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == "CustomResourceDefinition" }) {
		t.Error("the packaged chart renders no CRD")
	}
	dryRunApply(t, objs)
}

func TestMakeReleaseRefusesWhatIsNoRelease(t *testing.T) {
	cases := []struct {
		name, version, image, want string
	}{
		{"a version without its v", "0.2.0", imageRepo, "is not vMAJOR.MINOR.PATCH"},
		{"a version that is no semantic version", "v0.2", imageRepo, "is not vMAJOR.MINOR.PATCH"},
		{"an image with a tag", version, imageRepo + ":latest", "without tag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := makeTarget("release", "VERSION="+tc.version, "IMG="+tc.image, "DIST="+t.TempDir())
			if err == nil || !strings.Contains(out, tc.want) {
				t.Errorf("make release VERSION=%s IMG=%s: %v, output:\n%s\nwant a refusal saying %q", tc.version, tc.image, err, out, tc.want)
			}
		})
	}
}

// make build stamps internal/version; both binaries print it.
func TestBinariesBuiltByTheMakefilePrintTheirVersion(t *testing.T) {
	bin := t.TempDir()
	if out, err := makeTarget("build", "BIN="+bin, "VERSION=v9.8.7-test", "COMMIT=abc1234"); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	for _, program := range []string{"manager", "wechatpay-sandbox"} {
		t.Run(program, func(t *testing.T) {
			out, err := exec.Command(filepath.Join(bin, program), "--version").CombinedOutput()
			if err != nil {
				t.Fatalf("%s --version: %v\n%s", program, err, out)
			}
			want := regexp.MustCompile(`^` + program + ` v9\.8\.7-test \(commit abc1234, go1\.[0-9.]+\)\n$`)
			if !want.Match(out) {
				t.Errorf("%s --version printed %q", program, out)
			}
		})
	}
}

// The Dockerfile stamps the same variables as the Makefile.
func TestTheDockerfileStampsTheVersion(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	must(t, err)
	for _, stamp := range []string{
		"-X github.com/crowdpack/crowdpack/internal/version.Version=${VERSION}",
		"-X github.com/crowdpack/crowdpack/internal/version.Commit=${COMMIT}",
	} {
		if !strings.Contains(string(raw), stamp) {
			t.Errorf("the Dockerfile does not stamp %s", stamp)
		}
	}
}

// toolsVersion is NAME=VALUE's value in hack/tools.sh.
func toolsVersion(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "hack", "tools.sh"))
	must(t, err)
	m := regexp.MustCompile(`(?m)^` + name + `=(v1\.([0-9]+)\.[0-9]+)$`).FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatalf("hack/tools.sh sets no %s=v1.X.Y", name)
	}
	return m[1]
}

func minorOf(v string) string {
	return strings.Join(strings.Split(strings.TrimPrefix(v, "v"), ".")[:2], ".")
}

// The oldest supported Kubernetes is the one make test-oldest runs
// against, the chart's kubeVersion floor and the docs' (README.md and
// docs/install.md).
func TestTheSupportedKubernetesRangeIsStatedAlike(t *testing.T) {
	oldest, newest := toolsVersion(t, "OLDEST_KUBERNETES_VERSION"), toolsVersion(t, "KUBERNETES_VERSION")
	for _, c := range []struct{ assets, want string }{{"bin/k8s-oldest", oldest}, {"bin", newest}} {
		out, err := exec.Command(filepath.Join(root, c.assets, "kube-apiserver"), "--version").Output()
		if err != nil {
			t.Fatalf("%s/kube-apiserver --version: %v (make tools)", c.assets, err)
		}
		if got := strings.TrimSpace(string(out)); got != "Kubernetes "+c.want {
			t.Errorf("%s/kube-apiserver is %q, want Kubernetes %s", c.assets, got, c.want)
		}
	}
	var chart struct{ KubeVersion string }
	raw, err := os.ReadFile(filepath.Join(root, "charts", "crowdpack", "Chart.yaml"))
	must(t, err)
	must(t, yaml.Unmarshal(raw, &chart))
	if want := ">=" + minorOf(oldest) + ".0-0"; chart.KubeVersion != want {
		t.Errorf("Chart.yaml kubeVersion %q, want %q", chart.KubeVersion, want)
	}
	for _, page := range []string{"README.md", "docs/install.md"} {
		text, err := os.ReadFile(filepath.Join(root, page))
		must(t, err)
		if want := fmt.Sprintf("Kubernetes %s to %s", minorOf(oldest), minorOf(newest)); !strings.Contains(string(text), want) {
			t.Errorf("%s does not state the supported range as %q", page, want)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// One kubectl apply of install.yaml must work on an empty cluster: the
// Namespace and the CRD come before anything that lives in them.
func TestInstallYAMLListsNamespacesAndCRDsFirst(t *testing.T) {
	seenNamespaces := map[string]bool{}
	seenCRD := false
	for _, o := range decodeFile(t, filepath.Join(dist, "install.yaml")) {
		switch {
		case o.GetKind() == "Namespace":
			seenNamespaces[o.GetName()] = true
		case o.GetKind() == "CustomResourceDefinition":
			seenCRD = true
		case o.GetNamespace() != "" && !seenNamespaces[o.GetNamespace()]:
			t.Errorf("%s %s comes before its Namespace %s", o.GetKind(), o.GetName(), o.GetNamespace())
		case o.GetKind() == "Deployment" && !seenCRD:
			t.Errorf("the Deployment comes before the CRD")
		}
	}
}

// make undeploy removes the manager but keeps the CRD and the uploads, and
// says what deleting them would destroy; UNINSTALL_CRDS=1 deletes them. It
// runs last: the namespace it deletes stays Terminating in envtest (no
// namespace controller).
func TestMakeUndeployKeepsTheCRDUnlessAsked(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl is not installed; make undeploy needs it")
	}
	ctx := context.Background()
	objs := decodeFile(t, filepath.Join(dist, "install.yaml"))
	for _, o := range objs {
		must(t, kube.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
			client.FieldOwner("release-test"), client.ForceOwnership))
	}
	upload := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "wechatpay.crowdpack.io/v1alpha1", "kind": "UserPackageUpload",
		"metadata": map[string]any{"name": "kept", "namespace": "default"},
		"spec": map[string]any{
			"source":         map[string]any{"http": map[string]any{"url": "https://files.example.com/vip.csv"}},
			"file":           map[string]any{"packageType": "Exposure", "dataType": "Phone", "description": "VIP customers who bought twice"},
			"credentialsRef": map[string]any{"name": "wechatpay-brand"},
		},
	}}
	must(t, kube.Client.Create(ctx, upload))
	kubectl := "kubectl --kubeconfig " + adminKubeconfig(t)

	out, err := makeTarget("undeploy", "KUBECTL="+kubectl)
	if err != nil {
		t.Fatalf("make undeploy: %v\n%s", err, out)
	}
	for _, want := range []string{"Kept the CRD", "deletes all 1 UserPackageUpload(s)", "upload id", "UNINSTALL_CRDS=1"} {
		if !strings.Contains(out, want) {
			t.Errorf("make undeploy does not say %q:\n%s", want, out)
		}
	}
	if err := kube.Client.Get(ctx, client.ObjectKeyFromObject(upload), upload.DeepCopy()); err != nil {
		t.Fatalf("after make undeploy the UserPackageUpload is gone: %v", err)
	}
	deployment := &unstructured.Unstructured{}
	deployment.SetAPIVersion("apps/v1")
	deployment.SetKind("Deployment")
	if err := kube.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "crowdpack-controller-manager"}, deployment); !apierrors.IsNotFound(err) {
		t.Errorf("after make undeploy the manager's Deployment: %v, want not found", err)
	}

	if out, err := makeTarget("undeploy", "KUBECTL="+kubectl, "UNINSTALL_CRDS=1"); err != nil {
		t.Fatalf("make undeploy UNINSTALL_CRDS=1: %v\n%s", err, out)
	}
	if err := kube.Client.Get(ctx, client.ObjectKeyFromObject(upload), upload.DeepCopy()); err == nil {
		t.Error("after make undeploy UNINSTALL_CRDS=1 the UserPackageUpload is still there")
	}
}

// adminKubeconfig is a kubeconfig file of a cluster-admin of the envtest API server.
func adminKubeconfig(t *testing.T) string {
	t.Helper()
	path, err := kube.AdminKubeconfig(t.TempDir(), "release-test")
	must(t, err)
	return path
}
