// Package helm tests the Helm chart in charts/crowdpack: it renders it with
// the pinned helm (bin/helm, built by hack/tools.sh helm), lints it, checks
// it stays equivalent to config/ (CRDs, RBAC, alerts, the manager's security
// settings), that its schema refuses bad values, has a real API server
// (envtest) accept every rendered object with a server-side dry run, and
// installs, upgrades and uninstalls it there for real.
package helm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/crowdpack/crowdpack/internal/testutil/kubetest"
	"github.com/crowdpack/crowdpack/internal/testutil/repo"
)

const namespace = "crowdpack-system"

// kubeVersion is the Kubernetes version charts are rendered for (helm built
// from source assumes v1.20 otherwise, which the chart's kubeVersion refuses).
const kubeVersion = "v1.37.0"

var (
	kube *kubetest.Env
	root string
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	if root, err = repo.Root(); err != nil {
		return 0, err
	}
	if kube, err = kubetest.Start(); err != nil {
		return 0, err
	}
	defer kube.Stop()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := kube.Client.Create(context.Background(), ns); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// helm runs the pinned helm binary and returns its standard output.
func helm(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := tryHelm(t, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tryHelm runs the pinned helm binary with extra environment env; the error
// carries helm's output.
func tryHelm(t *testing.T, env []string, args ...string) ([]byte, error) {
	t.Helper()
	bin := filepath.Join(root, "bin", "helm")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s not found: run 'hack/tools.sh helm' (or 'make tools') first", bin)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	// Keep helm away from the user's own helm configuration and caches.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes(), nil
}

// nonDefaultValues sets every value the chart documents to something other
// than its default.
const nonDefaultValues = `
image:
  repository: registry.example.com/platform/crowdpack
  tag: v1.2.3
  pullPolicy: Always
imagePullSecrets:
- name: registry-credentials
crds:
  enabled: true
  keep: false
serviceAccount:
  create: true
  name: uploads-operator
  annotations:
    example.com/role: crowdpack
rbac:
  create: true
wechatpay:
  endpoint: https://wechatpay-sandbox.crowdpack-system.svc:8443
  timeout: 45s
  caBundle: |
    -----BEGIN CERTIFICATE-----
    MIIBdummyCAForTheChartTestOnly
    -----END CERTIFICATE-----
leaderElection:
  enabled: false
replicaCount: 1
maxConcurrentReconciles: 3
partConcurrency: 2
extraArgs:
- --zap-log-level=debug
extraEnv:
- name: HTTPS_PROXY
  value: http://proxy.example.com:3128
- name: NO_PROXY
  value: .svc,.cluster.local,10.0.0.0/8
metrics:
  enabled: true
  port: 9090
serviceMonitor:
  enabled: true
  labels:
    release: kube-prometheus-stack
  interval: 1m
prometheusRule:
  enabled: true
  labels:
    release: kube-prometheus-stack
grafanaDashboard:
  enabled: true
podDisruptionBudget:
  enabled: true
  minAvailable: null
  maxUnavailable: 1
resources:
  requests:
    cpu: 50m
    memory: 64Mi
  limits:
    cpu: "1"
    memory: 512Mi
nodeSelector:
  kubernetes.io/os: linux
tolerations:
- key: dedicated
  operator: Equal
  value: operators
  effect: NoSchedule
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
      - matchExpressions:
        - key: kubernetes.io/arch
          operator: In
          values: [amd64, arm64]
topologySpreadConstraints:
- maxSkew: 1
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: ScheduleAnyway
podAnnotations:
  example.com/team: marketing-platform
podLabels:
  example.com/cost-center: growth
priorityClassName: system-cluster-critical
`

// rendered is the output of helm template, by kind/name.
type rendered struct {
	objects []*unstructured.Unstructured
}

func (r rendered) find(kind, nameSuffix string) *unstructured.Unstructured {
	for _, o := range r.objects {
		if o.GetKind() == kind && strings.HasSuffix(o.GetName(), nameSuffix) {
			return o
		}
	}
	return nil
}

func (r rendered) kinds() []string {
	var ks []string
	for _, o := range r.objects {
		ks = append(ks, o.GetKind())
	}
	slices.Sort(ks)
	return ks
}

func (r rendered) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	u := r.find("Deployment", "controller-manager")
	if u == nil {
		t.Fatal("no Deployment rendered")
	}
	var d appsv1.Deployment
	must(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d))
	return &d
}

func render(t *testing.T, release, values string) rendered {
	t.Helper()
	return renderChart(t, "charts/crowdpack", release, values)
}

// renderChart is helm template of chart (a folder or a packaged .tgz).
func renderChart(t *testing.T, chart, release, values string) rendered {
	t.Helper()
	args := []string{"template", release, chart, "--namespace", namespace, "--kube-version", kubeVersion}
	if values != "" {
		f := filepath.Join(t.TempDir(), "values.yaml")
		must(t, os.WriteFile(f, []byte(values), 0o600))
		args = append(args, "--values", f)
	}
	return rendered{objects: decodeAll(t, helm(t, args...))}
}

func decodeAll(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	objs, err := kubetest.DecodeObjects(data)
	must(t, err)
	return objs
}

func TestTheChartRendersAndTheAPIServerAcceptsEveryObject(t *testing.T) {
	cases := []struct {
		name    string
		release string
		values  string
		check   func(t *testing.T, r rendered)
	}{
		{
			name:    "the default values render the manager of config/default",
			release: "crowdpack",
			check: func(t *testing.T, r rendered) {
				// ClusterRoles: the manager's, the three for people (user-roles.yaml) and the two of
				// the secure metrics endpoint (metrics-rbac.yaml); CRDs: uploads and brands.
				kinds := []string{"ClusterRole", "ClusterRole", "ClusterRole", "ClusterRole", "ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding",
					"CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition", "Deployment", "Role", "RoleBinding", "Service", "ServiceAccount"}
				if d := cmp.Diff(kinds, r.kinds()); d != "" {
					t.Errorf("kinds -want +got:\n%s", d)
				}
				d := r.deployment(t)
				c := d.Spec.Template.Spec.Containers[0]
				wantArgs := []string{"--leader-elect", "--metrics-bind-address=:8443", "--metrics-secure=true", "--health-probe-bind-address=:8081",
					"--max-concurrent-reconciles=32", "--part-concurrency=4"}
				if diff := cmp.Diff(wantArgs, c.Args); diff != "" {
					t.Errorf("args -want +got:\n%s", diff)
				}
				if want := "ghcr.io/crowdpack/crowdpack:" + chartField(t, "appVersion"); c.Image != want {
					t.Errorf("image %s, want %s (repository:appVersion)", c.Image, want)
				}
				crd := r.find("CustomResourceDefinition", "wechatpay.crowdpack.io")
				if crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
					t.Errorf("the CRD's annotations %v lack helm.sh/resource-policy: keep", crd.GetAnnotations())
				}
				if d := cmp.Diff(generatedCRDs(t), withoutChartMetadata(r.crds())); d != "" {
					t.Errorf("the chart's CRDs differ from config/crd/bases but for labels and annotations -generated +chart:\n%s", d)
				}
				// Same names as config/default, so the two are interchangeable.
				for kind, name := range map[string]string{
					"Deployment": "crowdpack-controller-manager", "ServiceAccount": "crowdpack-controller-manager",
					"Service": "crowdpack-controller-manager-metrics", "ClusterRole": "crowdpack-manager-role",
				} {
					if r.find(kind, name) == nil || r.find(kind, name).GetName() != name {
						t.Errorf("no %s named %s", kind, name)
					}
				}
				// And the same pod as config/manager/manager.yaml, but for labels.
				kd := kustomizeDeployment(t)
				want, got := &kd.Spec.Template.Spec, &d.Spec.Template.Spec
				for _, x := range []struct {
					what      string
					want, got any
				}{
					{"pod securityContext", want.SecurityContext, got.SecurityContext},
					{"container securityContext", want.Containers[0].SecurityContext, c.SecurityContext},
					{"liveness probe", want.Containers[0].LivenessProbe, c.LivenessProbe},
					{"readiness probe", want.Containers[0].ReadinessProbe, c.ReadinessProbe},
					{"resources", want.Containers[0].Resources, c.Resources},
					{"env", want.Containers[0].Env, c.Env},
					{"ports", want.Containers[0].Ports, c.Ports},
					{"command", want.Containers[0].Command, c.Command},
					{"terminationGracePeriodSeconds", want.TerminationGracePeriodSeconds, got.TerminationGracePeriodSeconds},
				} {
					if diff := cmp.Diff(toJSON(t, x.want), toJSON(t, x.got)); diff != "" {
						t.Errorf("%s differs from config/manager -kustomize +chart:\n%s", x.what, diff)
					}
				}
			},
		},
		{
			name:    "non-default values render a CA-trusting, proxied manager without leader election, with monitoring and a disruption budget",
			release: "uploads",
			values:  nonDefaultValues,
			check: func(t *testing.T, r rendered) {
				// ClusterRoles: the manager's, the three for people (user-roles.yaml) and the two of
				// the secure metrics endpoint (metrics-rbac.yaml); CRDs: uploads and brands.
				want := []string{"ClusterRole", "ClusterRole", "ClusterRole", "ClusterRole", "ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding", "ConfigMap", "ConfigMap",
					"CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition", "Deployment",
					"PodDisruptionBudget", "PrometheusRule", "Service", "ServiceAccount", "ServiceMonitor"}
				if d := cmp.Diff(want, r.kinds()); d != "" {
					t.Errorf("kinds -want +got:\n%s", d)
				}
				d := r.deployment(t)
				pod := d.Spec.Template.Spec
				c := pod.Containers[0]
				wantArgs := []string{"--metrics-bind-address=:9090", "--metrics-secure=true", "--health-probe-bind-address=:8081",
					"--max-concurrent-reconciles=3", "--part-concurrency=2",
					"--wechatpay-endpoint=https://wechatpay-sandbox.crowdpack-system.svc:8443", "--wechatpay-timeout=45s",
					"--wechatpay-ca-file=/etc/crowdpack/wechatpay-ca/ca.crt", "--zap-log-level=debug"}
				if diff := cmp.Diff(wantArgs, c.Args); diff != "" {
					t.Errorf("args -want +got:\n%s", diff)
				}
				if c.Image != "registry.example.com/platform/crowdpack:v1.2.3" || c.ImagePullPolicy != corev1.PullAlways {
					t.Errorf("image %s (%s)", c.Image, c.ImagePullPolicy)
				}
				if c.Resources.Limits.Memory().String() != "512Mi" {
					t.Errorf("memory limit %s, want 512Mi", c.Resources.Limits.Memory())
				}
				cm := r.find("ConfigMap", "wechatpay-ca")
				if cm == nil {
					t.Fatal("no CA bundle ConfigMap")
				}
				if ca, _, _ := unstructured.NestedString(cm.Object, "data", "ca.crt"); !strings.HasPrefix(ca, "-----BEGIN CERTIFICATE-----\n") {
					t.Errorf("ca.crt = %q", ca)
				}
				if len(pod.Volumes) != 1 || pod.Volumes[0].ConfigMap == nil || pod.Volumes[0].ConfigMap.Name != cm.GetName() {
					t.Errorf("volumes %+v, want the CA ConfigMap %s", pod.Volumes, cm.GetName())
				}
				if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/crowdpack/wechatpay-ca" {
					t.Errorf("volume mounts %+v", c.VolumeMounts)
				}
				if pod.NodeSelector["kubernetes.io/os"] != "linux" || len(pod.Tolerations) != 1 || pod.Affinity == nil || pod.PriorityClassName == "" {
					t.Errorf("scheduling not rendered: %v %v %v %q", pod.NodeSelector, pod.Tolerations, pod.Affinity, pod.PriorityClassName)
				}
				meta := d.Spec.Template.ObjectMeta
				if meta.Annotations["example.com/team"] != "marketing-platform" || meta.Annotations["checksum/wechatpay-ca"] == "" {
					t.Errorf("pod annotations %v", meta.Annotations)
				}
				if meta.Labels["example.com/cost-center"] != "growth" {
					t.Errorf("pod labels %v", meta.Labels)
				}
				sm := r.find("ServiceMonitor", "metrics")
				if sm.GetLabels()["release"] != "kube-prometheus-stack" {
					t.Errorf("ServiceMonitor labels %v", sm.GetLabels())
				}
				if rule := r.find("PrometheusRule", "alerts"); rule.GetLabels()["release"] != "kube-prometheus-stack" {
					t.Errorf("PrometheusRule labels %v", rule.GetLabels())
				}
				if pod.ServiceAccountName != "uploads-operator" || r.find("ServiceAccount", "uploads-operator") == nil {
					t.Errorf("the pod runs as %q; want the ServiceAccount uploads-operator, created", pod.ServiceAccountName)
				}
				if binding := r.find("ClusterRoleBinding", "manager-rolebinding"); !strings.Contains(fmt.Sprint(binding.Object["subjects"]), "uploads-operator") {
					t.Errorf("the ClusterRoleBinding's subjects %v do not name uploads-operator", binding.Object["subjects"])
				}
				env := map[string]string{}
				for _, e := range c.Env {
					env[e.Name] = e.Value
				}
				if env["HTTPS_PROXY"] != "http://proxy.example.com:3128" || env["NO_PROXY"] == "" || !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "MEMORY_REQUEST" }) {
					t.Errorf("env %v, want MEMORY_REQUEST and the proxy variables", c.Env)
				}
				if len(pod.TopologySpreadConstraints) != 1 || pod.TopologySpreadConstraints[0].LabelSelector == nil ||
					pod.TopologySpreadConstraints[0].LabelSelector.MatchLabels["control-plane"] != "controller-manager" {
					t.Errorf("topologySpreadConstraints %+v, want one spreading the manager's pods", pod.TopologySpreadConstraints)
				}
				pdb := r.find("PodDisruptionBudget", "controller-manager")
				if u, _, _ := unstructured.NestedFieldNoCopy(pdb.Object, "spec", "maxUnavailable"); fmt.Sprint(u) != "1" {
					t.Errorf("PodDisruptionBudget spec %v, want maxUnavailable: 1", pdb.Object["spec"])
				}
				if _, ok := r.find("CustomResourceDefinition", "wechatpay.crowdpack.io").GetAnnotations()["helm.sh/resource-policy"]; ok {
					t.Error("crds.keep: false still renders helm.sh/resource-policy on the CRD")
				}
				svc := r.find("Service", "metrics")
				if port, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports"); len(port) != 1 || fmt.Sprint(port[0].(map[string]any)["port"]) != "9090" {
					t.Errorf("Service ports %v", port)
				}
			},
		},
		{
			name:    "an existing ServiceAccount, RBAC and CRD managed elsewhere render only the manager",
			release: "crowdpack",
			values:  "serviceAccount: {create: false, name: platform-operator}\nrbac: {create: false}\ncrds: {enabled: false}\n",
			check: func(t *testing.T, r rendered) {
				if d := cmp.Diff([]string{"Deployment", "Service"}, r.kinds()); d != "" {
					t.Errorf("kinds -want +got:\n%s", d)
				}
				if sa := r.deployment(t).Spec.Template.Spec.ServiceAccountName; sa != "platform-operator" {
					t.Errorf("the pod runs as %q, want platform-operator", sa)
				}
			},
		},
		{
			name:    "disabling metrics renders neither the Service nor the ServiceMonitor",
			release: "crowdpack",
			values:  "metrics: {enabled: false}\nserviceMonitor: {enabled: true}\n",
			check: func(t *testing.T, r rendered) {
				if r.find("Service", "metrics") != nil || r.find("ServiceMonitor", "metrics") != nil {
					t.Errorf("kinds %v, want no Service or ServiceMonitor", r.kinds())
				}
				c := r.deployment(t).Spec.Template.Spec.Containers[0]
				if !slices.Contains(c.Args, "--metrics-bind-address=0") {
					t.Errorf("args %v, want --metrics-bind-address=0", c.Args)
				}
				if len(c.Ports) != 1 || c.Ports[0].Name != "health" {
					t.Errorf("ports %v, want only health", c.Ports)
				}
			},
		},
		{
			name:    "networkPolicy.enabled fences the manager in, with the storage ports listed",
			release: "crowdpack",
			values:  "networkPolicy: {enabled: true, storagePorts: [9000]}\n",
			check: func(t *testing.T, r rendered) {
				np := r.find("NetworkPolicy", "controller-manager")
				if np == nil {
					t.Fatalf("kinds %v, want a NetworkPolicy", r.kinds())
				}
				b, err := json.Marshal(np.Object["spec"])
				must(t, err)
				raw := string(b)
				for _, want := range []string{`"port":9000`, `"port":443`, `"port":53`, `"port":8443`, `"port":8081`, `"169.254.0.0/16"`, `"100.100.100.200/32"`} {
					if !strings.Contains(raw, want) {
						t.Errorf("the NetworkPolicy lacks %s:\n%s", want, raw)
					}
				}
			},
		},
		{
			name:    "metrics.secure=false serves plain HTTP without the auth RBAC",
			release: "crowdpack",
			values:  "metrics: {secure: false}\nserviceMonitor: {enabled: true}\n",
			check: func(t *testing.T, r rendered) {
				if r.find("ClusterRole", "metrics-reader") != nil {
					t.Error("the metrics reader ClusterRole is rendered for a plain-HTTP endpoint")
				}
				if !slices.Contains(r.deployment(t).Spec.Template.Spec.Containers[0].Args, "--metrics-secure=false") {
					t.Error("the manager is not told to serve plain HTTP")
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := render(t, tc.release, tc.values)
			checkSecurity(t, r.deployment(t))
			tc.check(t, r)
			applyDryRun(t, r)
		})
	}
}

// checkSecurity holds for every rendering: the restricted Pod Security
// Standard, probes and resources.
func checkSecurity(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	pod := d.Spec.Template.Spec
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v", sc)
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
			sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("container %s securityContext %+v", c.Name, sc)
		}
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("container %s has no liveness or readiness probe", c.Name)
		}
		if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
			t.Errorf("container %s resources %+v", c.Name, c.Resources)
		}
	}
}

// applyDryRun server-side applies every object with dryRun=All: the API
// server validates it (schema, admission) without storing it. The
// Prometheus Operator's CRDs are not installed in envtest, so its kinds
// (monitoring.coreos.com) alone are skipped when the server does not know them.
func applyDryRun(t *testing.T, r rendered) {
	t.Helper()
	ctx := context.Background()
	for _, o := range r.objects {
		err := kube.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o),
			client.FieldOwner("helm-chart-test"), client.ForceOwnership, client.DryRunAll)
		if err != nil && apimeta.IsNoMatchError(err) && o.GroupVersionKind().Group == "monitoring.coreos.com" {
			t.Logf("skipped %s %s: monitoring.coreos.com CRDs are not installed in envtest", o.GetKind(), o.GetName())
			continue
		}
		if err != nil {
			t.Errorf("apply --dry-run=server %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

func TestHelmLint(t *testing.T) {
	cases := []struct {
		name   string
		values string
	}{
		{"the chart lints cleanly with the default values", ""},
		{"the chart lints cleanly with every value set", nonDefaultValues},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"lint", "charts/crowdpack", "--strict", "--namespace", namespace, "--kube-version", kubeVersion}
			if tc.values != "" {
				f := filepath.Join(t.TempDir(), "values.yaml")
				must(t, os.WriteFile(f, []byte(tc.values), 0o600))
				args = append(args, "--values", f)
			}
			helm(t, args...)
		})
	}
}

// TestTheChartsCRDsAreTheGeneratedOnes keeps charts/crowdpack/files/crds a
// byte-for-byte copy of config/crd/bases (make manifests writes both).
func TestTheChartsCRDsAreTheGeneratedOnes(t *testing.T) {
	bases := filepath.Join(root, "config", "crd", "bases")
	crds := filepath.Join(root, "charts", "crowdpack", "files", "crds")
	want, got := yamlFiles(t, bases), yamlFiles(t, crds)
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("charts/crowdpack/files/crds has other files than config/crd/bases (make manifests) -want +got:\n%s", d)
	}
	for _, name := range want {
		a, err := os.ReadFile(filepath.Join(bases, name))
		must(t, err)
		b, err := os.ReadFile(filepath.Join(crds, name))
		must(t, err)
		if !bytes.Equal(a, b) {
			t.Errorf("charts/crowdpack/files/crds/%s differs from config/crd/bases/%s: run make manifests", name, name)
		}
	}
}

// crds are the rendered CustomResourceDefinitions.
func (r rendered) crds() []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range r.objects {
		if o.GetKind() == "CustomResourceDefinition" {
			out = append(out, o)
		}
	}
	return out
}

// generatedCRDs are config/crd/bases's CRDs as objects.
func generatedCRDs(t *testing.T) []map[string]any {
	t.Helper()
	dir := filepath.Join(root, "config", "crd", "bases")
	var out []map[string]any
	for _, name := range yamlFiles(t, dir) {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		must(t, err)
		for _, o := range decodeAll(t, raw) {
			out = append(out, o.Object)
		}
	}
	return out
}

// withoutChartMetadata are crds without the labels and the annotation the
// chart adds, for comparison with the generated ones.
func withoutChartMetadata(crds []*unstructured.Unstructured) []map[string]any {
	var out []map[string]any
	for _, c := range crds {
		c = c.DeepCopy()
		c.SetLabels(nil)
		a := c.GetAnnotations()
		delete(a, "helm.sh/resource-policy")
		c.SetAnnotations(a)
		out = append(out, c.Object)
	}
	return out
}

// TestTheChartsRBACIsConfigRBAC keeps the chart's rules those of
// config/rbac (role.yaml is generated from the +kubebuilder:rbac markers).
func TestTheChartsRBACIsConfigRBAC(t *testing.T) {
	r := render(t, "crowdpack", "")
	for _, c := range []struct {
		kind, suffix, file string
	}{
		{"ClusterRole", "manager-role", "role.yaml"},
		{"Role", "leader-election-role", "leader_election_role.yaml"},
	} {
		o := r.find(c.kind, c.suffix)
		if o == nil {
			t.Fatalf("no %s *%s rendered", c.kind, c.suffix)
		}
		var got, want rbacv1.ClusterRole
		must(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &got))
		raw, err := os.ReadFile(filepath.Join(root, "config", "rbac", c.file))
		must(t, err)
		must(t, yaml.Unmarshal(raw, &want))
		if d := cmp.Diff(want.Rules, got.Rules); d != "" {
			t.Errorf("%s rules differ from config/rbac/%s -config +chart:\n%s", c.kind, c.file, d)
		}
	}
}

// TestThePrometheusServiceMonitorSelectsTheMetricsService checks that
// config/prometheus/monitor.yaml matches config/manager's metrics Service.
func TestThePrometheusServiceMonitorSelectsTheMetricsService(t *testing.T) {
	var svc corev1.Service
	raw, err := os.ReadFile(filepath.Join(root, "config", "manager", "metrics_service.yaml"))
	must(t, err)
	must(t, yaml.Unmarshal(raw, &svc))
	var monitor struct {
		Spec struct {
			Selector  metav1.LabelSelector `json:"selector"`
			Endpoints []struct {
				Port string `json:"port"`
			} `json:"endpoints"`
		} `json:"spec"`
	}
	raw, err = os.ReadFile(filepath.Join(root, "config", "prometheus", "monitor.yaml"))
	must(t, err)
	must(t, yaml.Unmarshal(raw, &monitor))
	for k, v := range monitor.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s; the metrics Service's labels are %v", k, v, svc.Labels)
		}
	}
	for _, e := range monitor.Spec.Endpoints {
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == e.Port }) {
			t.Errorf("the ServiceMonitor scrapes port %q; the metrics Service has %v", e.Port, svc.Spec.Ports)
		}
	}
}

// kustomizeDeployment is the Deployment of config/manager/manager.yaml.
func kustomizeDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "config", "manager", "manager.yaml"))
	must(t, err)
	for _, o := range decodeAll(t, raw) {
		if o.GetKind() == "Deployment" {
			var d appsv1.Deployment
			must(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d))
			return &d
		}
	}
	t.Fatal("no Deployment in config/manager/manager.yaml")
	return nil
}

// toJSON is v as indented JSON, for diffs of API types (Quantities have
// unexported fields that cmp cannot compare).
func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	must(t, err)
	return string(b)
}

func yamlFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".yaml") {
			names = append(names, e.Name())
		}
	}
	return names
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// chartField is a top-level field of charts/crowdpack/Chart.yaml.
func chartField(t *testing.T, key string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "charts", "crowdpack", "Chart.yaml"))
	must(t, err)
	var chart map[string]any
	must(t, yaml.Unmarshal(raw, &chart))
	return fmt.Sprint(chart[key])
}

// helmFails runs helm and returns its error output; it fails the test when
// helm succeeds.
func helmFails(t *testing.T, args ...string) string {
	t.Helper()
	out, err := tryHelm(t, nil, args...)
	if err == nil {
		t.Fatalf("helm %s succeeded; want an error. Output:\n%s", strings.Join(args, " "), out)
	}
	return err.Error()
}

func TestTheSchemaRefusesBadValues(t *testing.T) {
	cases := []struct {
		name, values, want string
	}{
		{"a string replica count", `replicaCount: "2"`, "/replicaCount"},
		{"an unknown pull policy", "image: {pullPolicy: Sometimes}", "/image/pullPolicy"},
		{"a negative replica count", "replicaCount: -1", "/replicaCount"},
		{"no part sent at once", "partConcurrency: 0", "/partConcurrency"},
		{"a misspelt top-level value", "replicas: 2", "replicas"},
		{"a metrics port out of range", "metrics: {port: 70000}", "/metrics/port"},
		{"an unknown topology spread policy", "topologySpreadConstraints: [{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: Never}]", "whenUnsatisfiable"},
		{"an environment variable without a name", "extraEnv: [{value: x}]", "/extraEnv/0"},
		{"a timeout that is not a duration", "wechatpay: {timeout: 30}", "/wechatpay/timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "values.yaml")
			must(t, os.WriteFile(f, []byte(tc.values), 0o600))
			msg := helmFails(t, "template", "crowdpack", "charts/crowdpack", "--kube-version", kubeVersion, "--values", f)
			if !strings.Contains(msg, "values don't meet the specifications of the schema") || !strings.Contains(msg, tc.want) {
				t.Errorf("helm's error does not name %s as against the schema:\n%s", tc.want, msg)
			}
		})
	}
}

func TestTheChartRefusesAKubernetesOlderThanTheOldestSupported(t *testing.T) {
	msg := helmFails(t, "template", "crowdpack", "charts/crowdpack", "--kube-version", "v1.27.16")
	if !strings.Contains(msg, "kubeVersion") {
		t.Errorf("helm's error does not name the chart's kubeVersion:\n%s", msg)
	}
	// And the oldest supported one renders.
	helm(t, "template", "crowdpack", "charts/crowdpack", "--kube-version", "v1.28.0")
}

// TestThePrometheusRuleIsConfigPrometheusAlerts keeps the chart's alerts
// those of config/prometheus/alerts.yaml.
func TestThePrometheusRuleIsConfigPrometheusAlerts(t *testing.T) {
	rule := render(t, "crowdpack", "prometheusRule: {enabled: true}\n").find("PrometheusRule", "alerts")
	if rule == nil {
		t.Fatal("prometheusRule.enabled renders no PrometheusRule")
	}
	raw, err := os.ReadFile(filepath.Join(root, "config", "prometheus", "alerts.yaml"))
	must(t, err)
	want := decodeAll(t, raw)[0]
	if d := cmp.Diff(want.Object["spec"], rule.Object["spec"]); d != "" {
		t.Errorf("the chart's PrometheusRule differs from config/prometheus/alerts.yaml -config +chart:\n%s", d)
	}
	if render(t, "crowdpack", "").find("PrometheusRule", "alerts") != nil {
		t.Error("the default values render a PrometheusRule; it needs the Prometheus Operator's CRDs")
	}
}

// notesSample is the UserPackageUpload NOTES.txt shows in a here-document,
// between its <<'YAML' line and the YAML line that ends it (unindented, or
// the shell would not end it).
func notesSample(t *testing.T, notes string) *unstructured.Unstructured {
	t.Helper()
	_, rest, ok := strings.Cut(notes, "<<'YAML'\n")
	body, _, ok2 := strings.Cut(rest, "\nYAML\n")
	if !ok || !ok2 {
		t.Fatal("NOTES.txt has no UserPackageUpload between <<'YAML' and a YAML line")
	}
	objs := decodeAll(t, []byte(body))
	if len(objs) != 1 || objs[0].GetKind() != "UserPackageUpload" {
		t.Fatalf("NOTES.txt's sample is %v, want one UserPackageUpload", objs)
	}
	return objs[0]
}

// The notes are all a user of the packaged chart has: they must name
// nothing outside it, and their sample must be accepted as it stands.
func TestTheNotesTellWhatToDoNextWithTheChartAlone(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "charts", "crowdpack", "templates", "NOTES.txt"))
	must(t, err)
	notes := string(raw)
	for _, outside := range []string{"config/", "hack/", "make ", "README", "docs/"} {
		if strings.Contains(notes, outside) {
			t.Errorf("NOTES.txt refers to %q, which is not in the chart", outside)
		}
	}
	for _, step := range []string{"rollout status", "create secret generic", "apply -f -", "wait upu/", "describe upu/"} {
		if !strings.Contains(notes, step) {
			t.Errorf("NOTES.txt lacks the step %q", step)
		}
	}
	sample := notesSample(t, notes)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "marketing"}}
	if err := kube.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	sample.SetNamespace("marketing")
	if err := kube.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(sample),
		client.FieldOwner("helm-chart-test"), client.DryRunAll); err != nil {
		t.Errorf("the API server refuses NOTES.txt's sample: %v", err)
	}
}

// TestHelmUpgradeFromThePreviousChart installs the previous release of the
// chart (testdata/crowdpack-0.1.0, whose CRD lived in crds/: installed once,
// never upgraded, not owned by the release) for real, upgrades to this
// chart, and uninstalls it: the upgrade must bring the CRD up to date and
// the uninstall leave it, and the uploads, in place.
func TestHelmUpgradeFromThePreviousChart(t *testing.T) {
	const release, ns = "crowdpack", "crowdpack-upgrade"
	const crdName = "userpackageuploads.wechatpay.crowdpack.io"
	ctx := context.Background()
	env := []string{"KUBECONFIG=" + adminKubeconfig(t)}
	run := func(args ...string) ([]byte, error) { return tryHelm(t, env, append(args, "--namespace", ns)...) }

	if _, err := run("install", release, "test/helm/testdata/crowdpack-0.1.0", "--create-namespace"); err != nil {
		t.Fatalf("install the previous chart: %v", err)
	}
	// An older CRD than this chart's: one printer column fewer.
	crds := crdClient(t)
	crd := &apiextensionsv1.CustomResourceDefinition{}
	must(t, crds.Get(ctx, client.ObjectKey{Name: crdName}, crd))
	columns := crd.Spec.Versions[0].AdditionalPrinterColumns
	crd.Spec.Versions[0].AdditionalPrinterColumns = columns[:len(columns)-1]
	must(t, crds.Update(ctx, crd))

	_, err := run("upgrade", release, "charts/crowdpack")
	if err == nil || !strings.Contains(err.Error(), "invalid ownership metadata") {
		t.Fatalf("upgrading without --take-ownership: got %v; want helm to refuse the CRD it does not own (README says to take ownership)", err)
	}
	if _, err := run("upgrade", release, "charts/crowdpack", "--take-ownership"); err != nil {
		t.Fatalf("upgrade --take-ownership, as README says: %v", err)
	}
	must(t, crds.Get(ctx, client.ObjectKey{Name: crdName}, crd))
	if got := len(crd.Spec.Versions[0].AdditionalPrinterColumns); got != len(columns) {
		t.Errorf("after the upgrade the CRD has %d printer columns, want %d: helm did not upgrade it", got, len(columns))
	}
	if crd.Annotations["helm.sh/resource-policy"] != "keep" || crd.Labels["app.kubernetes.io/version"] != chartField(t, "appVersion") {
		t.Errorf("after the upgrade the CRD's annotations are %v and labels %v", crd.Annotations, crd.Labels)
	}

	// An upload, then an upgrade of this chart over itself, then uninstall.
	raw, err := os.ReadFile(filepath.Join(root, "charts", "crowdpack", "templates", "NOTES.txt"))
	must(t, err)
	upload := notesSample(t, string(raw))
	upload.SetNamespace(ns)
	must(t, kube.Client.Create(ctx, upload))
	if _, err := run("upgrade", release, "charts/crowdpack", "--set", "replicaCount=2"); err != nil {
		t.Fatalf("upgrade the chart over itself: %v", err)
	}
	if _, err := run("uninstall", release); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	if err := crds.Get(ctx, client.ObjectKey{Name: crdName}, crd); err != nil {
		t.Fatalf("helm uninstall deleted the CRD (crds.keep): %v", err)
	}
	if err := kube.Client.Get(ctx, client.ObjectKeyFromObject(upload), upload.DeepCopy()); err != nil {
		t.Errorf("helm uninstall deleted the UserPackageUpload: %v", err)
	}
	var d appsv1.Deployment
	if err := kube.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "crowdpack-controller-manager"}, &d); !apierrors.IsNotFound(err) {
		t.Errorf("after helm uninstall, the manager's Deployment: %v, want not found", err)
	}
}

// crdClient is a client that knows CustomResourceDefinitions.
func crdClient(t *testing.T) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	must(t, apiextensionsv1.AddToScheme(scheme))
	c, err := client.New(kube.Config, client.Options{Scheme: scheme})
	must(t, err)
	return c
}

// adminKubeconfig is a kubeconfig file for a cluster-admin user of the
// envtest API server, for helm.
func adminKubeconfig(t *testing.T) string {
	t.Helper()
	path, err := kube.AdminKubeconfig(t.TempDir(), "helm-test")
	must(t, err)
	return path
}
