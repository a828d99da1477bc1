// Package manifests checks the kustomize output under config/ against a real
// kube-apiserver: everything `make deploy` and `kubectl apply -k
// config/samples` would send must be accepted by the API server's own
// schema, CEL rules and admission, and the manager's Deployment must keep its
// hardening. It needs the envtest binaries in bin/ (make tools).
package manifests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/crowdpack/crowdpack/internal/testutil/kubetest"
	"github.com/crowdpack/crowdpack/internal/testutil/repo"
)

const (
	fieldOwner       = "crowdpack-manifests-test"
	managerNamespace = "crowdpack-system"
	samplesNamespace = "crowdpack-samples"
)

var (
	env  *kubetest.Env
	root string
	// warnings collects the API server's Warning headers (e.g. Pod Security
	// violations of a Deployment's pod template).
	warnings warningRecorder
	// c is a client that records warnings; env.Client logs them instead.
	c client.Client
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if root, err = repo.Root(); err != nil {
		fmt.Fprintln(os.Stderr, "manifests test:", err)
		return 1
	}
	if env, err = kubetest.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "manifests test:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandlerWithContext = &warnings
	if c, err = client.New(cfg, client.Options{Scheme: env.Scheme}); err != nil {
		fmt.Fprintln(os.Stderr, "manifests test:", err)
		return 1
	}
	return m.Run()
}

// render builds a folder under config/ with kustomize (the library that
// `kubectl apply -k`, and so make deploy, has built in) and returns its objects.
func render(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(root, dir))
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range resources.Resources() {
		data, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("kustomize %s: %v", dir, err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			t.Fatalf("kustomize %s: %v", dir, err)
		}
		objs = append(objs, u)
	}
	if len(objs) == 0 {
		t.Fatalf("kustomize %s rendered no objects", dir)
	}
	return objs
}

// ensureNamespace creates a namespace for real (dry-run objects need their
// namespace to exist), with the labels of the rendered Namespace if given.
func ensureNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{}
	ns.Name, ns.Labels = name, labels
	if err := env.Client.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// dryRunApply server-side applies obj with dryRun=All: the API server runs
// defaulting, schema and CEL validation and admission, and stores nothing.
func dryRunApply(obj *unstructured.Unstructured) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()),
		client.FieldOwner(fieldOwner), client.ForceOwnership, client.DryRunAll)
}

func describe(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", u.GetKind(), ns, u.GetName())
	}
	return fmt.Sprintf("%s %s", u.GetKind(), u.GetName())
}

func TestDefaultManifestsAreAcceptedByTheAPIServer(t *testing.T) {
	objs := render(t, "config/default")
	// The Namespace is created for real first, with its Pod Security labels,
	// so the Deployment below is checked against them.
	for _, u := range objs {
		if u.GetKind() == "Namespace" {
			ensureNamespace(t, u.GetName(), u.GetLabels())
		}
	}
	warnings.reset()
	for _, u := range objs {
		if err := dryRunApply(u); err != nil {
			t.Errorf("%s is refused by the API server: %v", describe(u), err)
		}
	}
	if w := warnings.get(); len(w) > 0 {
		t.Errorf("the API server warned about config/default:\n%s", strings.Join(w, "\n"))
	}
}

func TestDefaultManifestsAreNamespacedAndPrefixed(t *testing.T) {
	for _, u := range render(t, "config/default") {
		switch u.GetKind() {
		case "CustomResourceDefinition":
			continue // named after its group; never prefixed
		case "Namespace", "ClusterRole", "ClusterRoleBinding":
			// cluster-scoped
		default:
			if u.GetNamespace() != managerNamespace {
				t.Errorf("%s is not in namespace %s", describe(u), managerNamespace)
			}
		}
		if !strings.HasPrefix(u.GetName(), "crowdpack-") {
			t.Errorf("%s has no crowdpack- name prefix", describe(u))
		}
	}
}

// recommendedLabels are the app.kubernetes.io labels every object of
// config/default and config/prometheus carries.
var recommendedLabels = []string{"name", "instance", "version", "component", "part-of", "managed-by"}

func TestEveryRenderedObjectCarriesTheRecommendedLabels(t *testing.T) {
	for _, dir := range []string{"config/default", "config/prometheus"} {
		t.Run(dir, func(t *testing.T) {
			for _, u := range render(t, dir) {
				for _, l := range recommendedLabels {
					if u.GetLabels()["app.kubernetes.io/"+l] == "" {
						t.Errorf("%s has no app.kubernetes.io/%s label", describe(u), l)
					}
				}
			}
		})
	}
	// The Deployment's selector is immutable: the version label must stay
	// out of it, or an upgrade could not be applied.
	d := managerDeployment(t)
	for k := range d.Spec.Selector.MatchLabels {
		if k == "app.kubernetes.io/version" || k == "app.kubernetes.io/component" {
			t.Errorf("the Deployment's selector has %s, which changes from release to release", k)
		}
	}
	if d.Spec.Template.Labels["app.kubernetes.io/version"] == "" {
		t.Error("the manager's pods do not carry the version label")
	}
}

func TestSamplesAreAcceptedByTheAPIServer(t *testing.T) {
	ensureNamespace(t, samplesNamespace, nil)
	objs := render(t, "config/samples")
	kinds := map[string]int{}
	for _, u := range objs {
		kinds[u.GetKind()]++
		u.SetNamespace(samplesNamespace)
		if err := dryRunApply(u); err != nil {
			t.Errorf("sample %s is refused by the API server: %v", describe(u), err)
		}
	}
	if kinds["UserPackageUpload"] < 5 || kinds["Secret"] < 2 {
		t.Errorf("config/samples renders %v; want a UserPackageUpload per source and the Secrets they use", kinds)
	}
}

// The dry runs above would pass vacuously if the CRD's rules were not
// enforced on them; this breaks a sample and expects a refusal.
func TestTheAPIServerRefusesABrokenSample(t *testing.T) {
	ensureNamespace(t, samplesNamespace, nil)
	for _, u := range render(t, "config/samples") {
		if u.GetKind() != "UserPackageUpload" {
			continue
		}
		u.SetNamespace(samplesNamespace)
		if err := unstructured.SetNestedField(u.Object, "too short", "spec", "file", "description"); err != nil {
			t.Fatal(err)
		}
		err := dryRunApply(u)
		if !apierrors.IsInvalid(err) {
			t.Fatalf("a sample with a 9-character description: got %v, want Invalid", err)
		}
		return
	}
	t.Fatal("config/samples has no UserPackageUpload")
}

// The RBAC objects are applied for real, then the API server's authorizer is
// asked what the manager's ServiceAccount may do: everything the manager
// needs, and nothing it does not.
func TestManagerServiceAccountHasLeastPrivilege(t *testing.T) {
	objs := render(t, "config/default")
	for _, u := range objs {
		if u.GetKind() == "Namespace" {
			ensureNamespace(t, u.GetName(), u.GetLabels())
		}
	}
	for _, u := range objs {
		switch u.GetKind() {
		case "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding":
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), client.FieldOwner(fieldOwner), client.ForceOwnership)
			cancel()
			if err != nil {
				t.Fatalf("apply %s: %v", describe(u), err)
			}
		}
	}
	const sa = "system:serviceaccount:" + managerNamespace + ":crowdpack-controller-manager"
	const group = "wechatpay.crowdpack.io"
	cases := []struct {
		name  string
		attrs authorizationv1.ResourceAttributes
		want  bool
	}{
		{"the manager can watch UserPackageUploads in every namespace",
			authorizationv1.ResourceAttributes{Verb: "watch", Group: group, Resource: "userpackageuploads"}, true},
		{"the manager can patch a UserPackageUpload's status",
			authorizationv1.ResourceAttributes{Namespace: "marketing", Verb: "patch", Group: group, Resource: "userpackageuploads", Subresource: "status"}, true},
		{"the manager can read a Secret in a UserPackageUpload's namespace",
			authorizationv1.ResourceAttributes{Namespace: "marketing", Verb: "get", Resource: "secrets"}, true},
		{"the manager can record events on a UserPackageUpload",
			authorizationv1.ResourceAttributes{Namespace: "marketing", Verb: "create", Group: "events.k8s.io", Resource: "events"}, true},
		{"the manager can renew its leader election Lease",
			authorizationv1.ResourceAttributes{Namespace: managerNamespace, Verb: "update", Group: "coordination.k8s.io", Resource: "leases"}, true},
		{"the manager can record leader election events in its namespace",
			authorizationv1.ResourceAttributes{Namespace: managerNamespace, Verb: "create", Resource: "events"}, true},
		{"the manager cannot change a UserPackageUpload's spec",
			authorizationv1.ResourceAttributes{Namespace: "marketing", Verb: "update", Group: group, Resource: "userpackageuploads"}, false},
		{"the manager can create and delete UserPackageUploads: a sync's children, made for each revision and pruned past its historyLimit",
			authorizationv1.ResourceAttributes{Namespace: "marketing", Verb: "delete", Group: group, Resource: "userpackageuploads"}, true},
		{"the manager can patch a UserPackageSync's status",
			authorizationv1.ResourceAttributes{Namespace: "marketing", Verb: "patch", Group: group, Resource: "userpackagesyncs", Subresource: "status"}, true},
		{"the manager cannot change a UserPackageSync's spec",
			authorizationv1.ResourceAttributes{Namespace: "marketing", Verb: "update", Group: group, Resource: "userpackagesyncs"}, false},
		{"the manager cannot delete a UserPackageSync",
			authorizationv1.ResourceAttributes{Namespace: "marketing", Verb: "delete", Group: group, Resource: "userpackagesyncs"}, false},
		{"the manager cannot write Secrets",
			authorizationv1.ResourceAttributes{Namespace: "marketing", Verb: "update", Resource: "secrets"}, false},
		{"the manager cannot take Leases outside its namespace",
			authorizationv1.ResourceAttributes{Namespace: "kube-system", Verb: "update", Group: "coordination.k8s.io", Resource: "leases"}, false},
		{"the manager cannot create pods",
			authorizationv1.ResourceAttributes{Namespace: managerNamespace, Verb: "create", Resource: "pods"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			attrs := tc.attrs
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               sa,
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + managerNamespace, "system:authenticated"},
				ResourceAttributes: &attrs,
			}}
			if err := c.Create(context.Background(), sar); err != nil {
				t.Fatalf("SubjectAccessReview: %v", err)
			}
			if sar.Status.Allowed != tc.want {
				t.Errorf("%s: allowed=%v, want %v (%s)", tc.name, sar.Status.Allowed, tc.want, sar.Status.Reason)
			}
		})
	}
}

func TestManagerDeploymentIsHardened(t *testing.T) {
	d := managerDeployment(t)
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("the Deployment has %d containers, want 1", len(pod.Containers))
	}
	m := pod.Containers[0]
	sc := m.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	podSC := pod.SecurityContext
	if podSC == nil {
		podSC = &corev1.PodSecurityContext{}
	}

	cases := []struct {
		name string
		ok   bool
	}{
		{"the manager runs as a non-root user",
			isTrue(sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && isTrue(podSC.RunAsNonRoot))},
		{"the manager's root filesystem is read-only", isTrue(sc.ReadOnlyRootFilesystem)},
		{"the manager cannot escalate its privileges",
			sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation},
		{"the manager drops every Linux capability",
			sc.Capabilities != nil && slices.Contains(sc.Capabilities.Drop, "ALL") && len(sc.Capabilities.Add) == 0},
		{"the manager runs under the runtime's default seccomp profile",
			(sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault) ||
				(sc.SeccompProfile == nil && podSC.SeccompProfile != nil && podSC.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault)},
		{"the liveness probe asks /healthz on port 8081", probes(m.LivenessProbe, "/healthz", m.Ports)},
		{"the readiness probe asks /readyz on port 8081", probes(m.ReadinessProbe, "/readyz", m.Ports)},
		{"the manager requests and limits CPU and memory",
			!m.Resources.Requests.Cpu().IsZero() && !m.Resources.Requests.Memory().IsZero() &&
				!m.Resources.Limits.Cpu().IsZero() && !m.Resources.Limits.Memory().IsZero()},
		{"the manager's memory limit is at least its request",
			m.Resources.Limits.Memory().Cmp(*m.Resources.Requests.Memory()) >= 0},
		{"the manager keeps its heap under its memory request", passesMemoryRequest(m.Env)},
		{"the manager elects a leader", slices.Contains(m.Args, "--leader-elect")},
		{"the manager serves metrics on :8443", slices.Contains(m.Args, "--metrics-bind-address=:8443")},
		{"the manager serves probes on :8081", slices.Contains(m.Args, "--health-probe-bind-address=:8081")},
		{"the manager runs as its own ServiceAccount", pod.ServiceAccountName == "crowdpack-controller-manager"},
		{"the image is the tree's, which make deploy and make release pin", m.Image == "ghcr.io/crowdpack/crowdpack:dev"},
		{"the pod has time to drain in-flight calls on shutdown",
			pod.TerminationGracePeriodSeconds != nil && *pod.TerminationGracePeriodSeconds >= 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.ok {
				t.Errorf("config/default: it is not true that %s", tc.name)
			}
		})
	}
}

func managerDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	for _, u := range render(t, "config/default") {
		if u.GetKind() == "Deployment" && u.GetName() == "crowdpack-controller-manager" {
			d := &appsv1.Deployment{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d); err != nil {
				t.Fatalf("decode the Deployment: %v", err)
			}
			return d
		}
	}
	t.Fatal("config/default renders no Deployment crowdpack-controller-manager")
	return nil
}

func isTrue(b *bool) bool { return b != nil && *b }

// passesMemoryRequest is true when env gives the manager its container's
// memory request as MEMORY_REQUEST, and sets no GOMEMLIMIT that would
// override the soft limit the manager takes from it.
func passesMemoryRequest(env []corev1.EnvVar) bool {
	request := slices.ContainsFunc(env, func(e corev1.EnvVar) bool {
		return e.Name == "MEMORY_REQUEST" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil &&
			e.ValueFrom.ResourceFieldRef.Resource == "requests.memory"
	})
	return request && !slices.ContainsFunc(env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })
}

// probes is true when p is an HTTP GET of path on port 8081, named or not.
func probes(p *corev1.Probe, path string, ports []corev1.ContainerPort) bool {
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
		return false
	}
	port := p.HTTPGet.Port
	if port.StrVal == "" {
		return port.IntVal == 8081
	}
	for _, cp := range ports {
		if cp.Name == port.StrVal {
			return cp.ContainerPort == 8081
		}
	}
	return false
}

// warningRecorder is a rest.WarningHandlerWithContext that keeps warnings.
type warningRecorder struct {
	mu   sync.Mutex
	list []string
}

func (w *warningRecorder) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warningRecorder) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = nil
}

func (w *warningRecorder) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.list)
}
