package helm

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// TestWatchNamespacesRendersNamespacedRolesInsteadOfTheClusterWideGrant
// renders the namespaced install mode and has the API server accept it.
func TestWatchNamespacesRendersNamespacedRolesInsteadOfTheClusterWideGrant(t *testing.T) {
	r := render(t, "crowdpack", "watchNamespaces: [team-a, team-b]\nallowAmbientCredentials: true\n")
	args := r.deployment(t).Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--watch-namespaces=team-a,team-b", "--allow-ambient-credentials"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	var roles, bindings []string
	for _, o := range r.objects {
		switch o.GetKind() {
		case "ClusterRoleBinding":
			if strings.HasSuffix(o.GetName(), "-manager-rolebinding") {
				t.Errorf("the cluster-wide binding %s is rendered in namespaced mode", o.GetName())
			}
		case "Role":
			roles = append(roles, o.GetNamespace()+"/"+o.GetName())
		case "RoleBinding":
			bindings = append(bindings, o.GetNamespace()+"/"+o.GetName())
		}
	}
	want := []string{
		namespace + "/crowdpack-leader-election-role",
		namespace + "/crowdpack-manager-brand-secrets-role",
		"team-a/crowdpack-manager-role",
		"team-b/crowdpack-manager-role",
	}
	slices.Sort(roles)
	if d := cmp.Diff(want, roles); d != "" {
		t.Errorf("Roles -want +got:\n%s", d)
	}
	if len(bindings) != len(roles) {
		t.Errorf("RoleBindings %v do not match the Roles %v", bindings, roles)
	}
	// The namespaced Role grants what the generated ClusterRole grants on
	// namespaced resources, no more.
	role := findIn(r, "Role", "team-a", "manager-role")
	var got rbacv1.Role
	must(t, runtime.DefaultUnstructuredConverter.FromUnstructured(role.Object, &got))
	for _, rule := range got.Rules {
		for _, res := range rule.Resources {
			if res == "namespaces" || strings.HasPrefix(res, "wechatpaybrands") {
				t.Errorf("the namespaced Role grants the cluster-scoped %s", res)
			}
		}
	}
	for _, ns := range []string{"team-a", "team-b"} {
		ensureNamespace(t, ns)
	}
	applyDryRun(t, r)
}

// TestTheChartsRolesForPeopleAreConfigRBACs keeps user-roles.yaml the rules
// and aggregation labels of config/rbac/user_roles.yaml.
func TestTheChartsRolesForPeopleAreConfigRBACs(t *testing.T) {
	r := render(t, "crowdpack", "")
	raw, err := os.ReadFile(filepath.Join(root, "config", "rbac", "user_roles.yaml"))
	must(t, err)
	decoder := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(raw)), 4096)
	n := 0
	for {
		var want rbacv1.ClusterRole
		if err := decoder.Decode(&want); err != nil {
			break
		}
		n++
		o := r.find("ClusterRole", "crowdpack-"+want.Name)
		if o == nil {
			t.Errorf("the chart renders no ClusterRole crowdpack-%s", want.Name)
			continue
		}
		var got rbacv1.ClusterRole
		must(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &got))
		if d := cmp.Diff(want.Rules, got.Rules); d != "" {
			t.Errorf("crowdpack-%s rules -config +chart:\n%s", want.Name, d)
		}
		for k, v := range want.Labels {
			if strings.HasPrefix(k, "rbac.authorization.k8s.io/") && got.Labels[k] != v {
				t.Errorf("crowdpack-%s lacks the label %s=%s", want.Name, k, v)
			}
		}
	}
	if n != 3 {
		t.Errorf("config/rbac/user_roles.yaml has %d roles, want edit, view and brand-admin", n)
	}
}

func findIn(r rendered, kind, ns, suffix string) *unstructured.Unstructured {
	for _, o := range r.objects {
		if o.GetKind() == kind && o.GetNamespace() == ns && strings.HasSuffix(o.GetName(), suffix) {
			return o
		}
	}
	return nil
}

// ensureNamespace creates a namespace for real: dry-run objects need theirs.
func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	err := kube.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}
