package uploads

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/testutil/kubetest"
	"github.com/crowdpack/crowdpack/internal/testutil/repo"
)

// renderChart runs the pinned helm binary's template command on the chart
// and returns the objects it renders.
func renderChart(t *testing.T, release, namespace string, set ...string) []*unstructured.Unstructured {
	t.Helper()
	root, err := repo.Root()
	must(t, err)
	bin := filepath.Join(root, "bin", "helm")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s not found: run 'hack/tools.sh helm' (or 'make tools') first", bin)
	}
	args := []string{"template", release, "charts/crowdpack", "--namespace", namespace, "--kube-version", "v1.37.0"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	objs, err := kubetest.DecodeObjects(stdout.Bytes())
	must(t, err)
	return objs
}

// requestLog records the paths of every request the clients of a
// rest.Config make (see wrap).
type requestLog struct {
	mu    sync.Mutex
	paths []string
}

// wrap is a rest.Config WrapTransport; each client gets its own wrapper.
func (l *requestLog) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		l.mu.Lock()
		l.paths = append(l.paths, req.Method+" "+req.URL.Path)
		l.mu.Unlock()
		return next.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func (l *requestLog) matching(part string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, p := range l.paths {
		if strings.Contains(p, part) {
			out = append(out, p)
		}
	}
	return out
}

// TestAWatchNamespacesInstallWorksOnlyInItsNamespaces renders the chart with
// watchNamespaces, binds its RBAC (and nothing else) to a fresh user, and
// runs the manager as that user with --watch-namespaces' cache: it works in
// its namespace, may not read another, and sends no request there.
func TestAWatchNamespacesInstallWorksOnlyInItsNamespaces(t *testing.T) {
	w := newTenants(t, tenancyOptions{})
	w.put("vip.csv", phoneFile(0, 100))
	w.brandSecret(identity.SecretData())
	must(t, kube.Client.Create(w.ctx, &upv1.WeChatPayBrand{
		ObjectMeta: metav1.ObjectMeta{Name: w.brand},
		Spec: upv1.WeChatPayBrandSpec{
			CredentialsSecretRef: upv1.SecretReference{Name: "wechatpay-brand-" + w.brand},
			AllowedNamespaces:    upv1.AllowedNamespaces{From: upv1.NamespacesFromAll},
		},
	}))

	objs := renderChart(t, "ns-"+w.ns, w.operatorNS, fmt.Sprintf("watchNamespaces={%s}", w.ns), "userRoles.create=false")
	user := "crowdpack-namespaced-" + w.ns
	for _, u := range objs {
		kind := u.GetKind()
		if kind == "ClusterRoleBinding" && strings.HasSuffix(u.GetName(), "-manager-rolebinding") {
			t.Fatalf("watchNamespaces still renders the cluster-wide binding %s", u.GetName())
		}
		if kind != "Role" && kind != "RoleBinding" && kind != "ClusterRole" && kind != "ClusterRoleBinding" {
			continue
		}
		if strings.Contains(u.GetName(), "leader-election") {
			continue // not used: the test's manager does not elect a leader
		}
		if kind == "RoleBinding" || kind == "ClusterRoleBinding" {
			must(t, unstructured.SetNestedSlice(u.Object, []any{map[string]any{
				"apiGroup": rbacv1.GroupName, "kind": rbacv1.UserKind, "name": user,
			}}, "subjects"))
		}
		must(t, kube.Client.Create(w.ctx, u))
	}
	added, err := kube.Environment().AddUser(envtest.User{Name: user}, &rest.Config{QPS: 1000, Burst: 2000})
	must(t, err)
	c, err := client.New(rest.CopyConfig(added.Config()), client.Options{Scheme: kube.Scheme})
	must(t, err)
	waitAllowed(t, func() error { return c.List(w.ctx, &upv1.UserPackageUploadList{}, client.InNamespace(w.ns)) })

	// What the rendered Roles do not grant is refused.
	for _, deny := range []struct {
		what string
		do   func() error
	}{
		{"list UserPackageUploads of another namespace", func() error {
			return c.List(w.ctx, &upv1.UserPackageUploadList{}, client.InNamespace(w.otherNS))
		}},
		{"read a Secret of another namespace", func() error {
			return c.Get(w.ctx, client.ObjectKey{Namespace: w.otherNS, Name: "storage"}, &corev1.Secret{})
		}},
		{"list UserPackageUploads cluster-wide", func() error { return c.List(w.ctx, &upv1.UserPackageUploadList{}) }},
		{"list Secrets cluster-wide", func() error { return c.List(w.ctx, &corev1.SecretList{}) }},
	} {
		if err := deny.do(); !apierrors.IsForbidden(err) {
			t.Errorf("the namespaced manager may %s (error %v), want Forbidden", deny.what, err)
		}
	}

	cfg := rest.CopyConfig(added.Config())
	log := &requestLog{}
	cfg.WrapTransport = log.wrap
	w.tenancy.restConfig = cfg
	w.tenancy.watchNamespaces = []string{w.ns}
	w.startManager(nil)
	w.upload(w.ns, "vip")
	w.upload(w.otherNS, "other")
	w.waitReadyIn(w.ns, "vip")
	w.waitIdle() // the other namespace would have been touched by now, if it would

	other := &upv1.UserPackageUpload{}
	must(t, kube.Client.Get(w.ctx, client.ObjectKey{Namespace: w.otherNS, Name: "other"}, other))
	if len(other.Status.Conditions) > 0 {
		t.Errorf("the manager worked on an object outside its namespaces: %s", describe(other))
	}
	if touched := log.matching("/namespaces/" + w.otherNS + "/"); len(touched) > 0 {
		t.Errorf("the manager sent requests into a namespace it does not watch: %v", touched)
	}
	if len(log.matching("/namespaces/"+w.ns+"/")) == 0 {
		t.Fatal("the request log recorded nothing: the manager did not run through it")
	}
}

// TestTheEditRoleManagesUploadsButNeverTheirStatus binds crowdpack-edit
// (config/rbac/user_roles.yaml) to a user in one namespace.
func TestTheEditRoleManagesUploadsButNeverTheirStatus(t *testing.T) {
	h := newHarness(t, harnessOptions{noManager: true})
	roles := readUserRoles(t)
	user := "team-member-" + h.ns
	for _, role := range roles {
		role.Name = "test-" + h.ns + "-" + role.Name
		must(t, kube.Client.Create(h.ctx, role))
	}
	aggregatesTo := func(r *rbacv1.ClusterRole, to string) bool {
		return r.Labels["rbac.authorization.k8s.io/aggregate-to-"+to] == "true"
	}
	byName := map[string]*rbacv1.ClusterRole{}
	for _, r := range roles {
		byName[strings.TrimPrefix(r.Name, "test-"+h.ns+"-")] = r
	}
	edit, view, brandAdmin := byName["edit"], byName["view"], byName["brand-admin"]
	if edit == nil || view == nil || brandAdmin == nil {
		t.Fatalf("config/rbac/user_roles.yaml has %v; want edit, view and brand-admin", byName)
	}
	switch {
	case !aggregatesTo(edit, "edit") || !aggregatesTo(edit, "admin"):
		t.Error("crowdpack-edit is not aggregated to edit and admin")
	case !aggregatesTo(view, "view") || aggregatesTo(view, "edit"):
		t.Error("crowdpack-view is not aggregated to view only")
	case len(brandAdmin.Labels) != 2:
		t.Errorf("crowdpack-brand-admin has labels %v; it must aggregate to nothing", brandAdmin.Labels)
	}
	for _, r := range []*rbacv1.ClusterRole{edit, view} {
		for _, rule := range r.Rules {
			for _, res := range rule.Resources {
				if strings.Contains(res, "/") || res == "wechatpaybrands" || res == "secrets" {
					t.Errorf("%s grants %s", r.Name, res)
				}
			}
		}
	}

	must(t, kube.Client.Create(h.ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "team-edit", Namespace: h.ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: edit.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}))
	added, err := kube.Environment().AddUser(envtest.User{Name: user}, nil)
	must(t, err)
	c, err := client.New(added.Config(), client.Options{Scheme: kube.Scheme})
	must(t, err)
	waitAllowed(t, func() error { return c.List(h.ctx, &upv1.UserPackageUploadList{}, client.InNamespace(h.ns)) })

	u := h.object("vip", "vip.csv")
	must(t, c.Create(h.ctx, u))
	patch := client.MergeFrom(u.DeepCopy())
	u.Status.Conditions = []metav1.Condition{{Type: upv1.ConditionReady, Status: metav1.ConditionTrue, Reason: upv1.ReasonSucceeded,
		Message: "forged", LastTransitionTime: metav1.Now()}}
	if err := c.Status().Patch(h.ctx, u, patch); !apierrors.IsForbidden(err) {
		t.Errorf("a crowdpack-edit user patched an upload's status (error %v), want Forbidden", err)
	}
	if err := c.List(h.ctx, &upv1.WeChatPayBrandList{}); !apierrors.IsForbidden(err) {
		t.Errorf("a crowdpack-edit user listed WeChatPayBrands (error %v), want Forbidden", err)
	}
	must(t, c.Delete(h.ctx, u))
}

// readUserRoles decodes config/rbac/user_roles.yaml.
func readUserRoles(t *testing.T) []*rbacv1.ClusterRole {
	t.Helper()
	root, err := repo.Root()
	must(t, err)
	data, err := os.ReadFile(filepath.Join(root, "config", "rbac", "user_roles.yaml"))
	must(t, err)
	var roles []*rbacv1.ClusterRole
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var raw map[string]any
		if err := decoder.Decode(&raw); err != nil {
			break
		}
		role := &rbacv1.ClusterRole{}
		must(t, runtime.DefaultUnstructuredConverter.FromUnstructured(raw, role))
		roles = append(roles, role)
	}
	return roles
}

// waitAllowed waits for new RBAC to reach the authorizer.
func waitAllowed(t *testing.T, do func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := do()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new bindings never took effect: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
