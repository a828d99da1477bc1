package uploads

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/testutil/repo"
)

// managerUser is who every manager of the suite runs as: bound to exactly
// the RBAC config/rbac ships, never cluster admin.
const managerUser = "crowdpack-manager"

// managerRESTConfig is managerUser's connection, set by setupManagerUser.
var managerRESTConfig *rest.Config

// managerConfig is the rest.Config managers run with.
func managerConfig() *rest.Config { return rest.CopyConfig(managerRESTConfig) }

// setupManagerUser creates managerUser, applies config/rbac/role.yaml (the
// ClusterRole generated from the kubebuilder markers) and binds it to the
// user, cluster-wide, as config/rbac/role_binding.yaml does for the
// ServiceAccount.
func setupManagerUser(ctx context.Context) error {
	var role rbacv1.ClusterRole
	if err := readManifest("role.yaml", &role); err != nil {
		return err
	}
	if err := kube.Client.Create(ctx, &role); err != nil {
		return fmt.Errorf("create ClusterRole %s: %w", role.Name, err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "crowdpack-manager-test"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: managerUser}},
	}
	if err := kube.Client.Create(ctx, binding); err != nil {
		return fmt.Errorf("create ClusterRoleBinding: %w", err)
	}
	user, err := kube.Environment().AddUser(envtest.User{Name: managerUser}, &rest.Config{QPS: 1000, Burst: 2000})
	if err != nil {
		return fmt.Errorf("add user %s: %w", managerUser, err)
	}
	managerRESTConfig = user.Config()
	// RBAC takes effect through the authorizer's informers: wait for it.
	c, err := client.New(managerRESTConfig, client.Options{Scheme: kube.Scheme})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.List(ctx, &upv1.UserPackageUploadList{})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the manager user cannot list UserPackageUploads with role.yaml bound: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// bindLeaderElectionRole creates config/rbac/leader_election_role.yaml in
// namespace and binds it to managerUser there, once per namespace.
func bindLeaderElectionRole(ctx context.Context, namespace string) error {
	var role rbacv1.Role
	if err := readManifest("leader_election_role.yaml", &role); err != nil {
		return err
	}
	role.Namespace = namespace
	if err := kube.Client.Create(ctx, &role); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return fmt.Errorf("create Role %s: %w", role.Name, err)
	}
	return kube.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "leader-election-rolebinding", Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: managerUser}},
	})
}

// readManifest decodes one YAML document of config/rbac.
func readManifest(name string, into any) error {
	root, err := repo.Root()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(root, "config", "rbac", name))
	if err != nil {
		return err
	}
	doc := strings.TrimPrefix(strings.TrimSpace(string(data)), "---")
	if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
		return fmt.Errorf("config/rbac/%s: %w", name, err)
	}
	return nil
}

// TestManagersRunWithLeastPrivilege proves that the suite's managers run as
// the restricted user: if they silently ran as admin, this test fails.
func TestManagersRunWithLeastPrivilege(t *testing.T) {
	requireCluster(t)
	h := newHarness(t, harnessOptions{})
	h.put("vip.csv", phoneFile(0, 100))
	h.create(h.object("vip", "vip.csv"))
	h.waitReady("vip")

	cfg := h.managers[0].mgr.GetConfig()
	if cfg.CertData == nil || string(cfg.CertData) != string(managerRESTConfig.CertData) {
		t.Fatal("the manager does not run as the restricted manager user")
	}
	c, err := client.New(cfg, client.Options{Scheme: kube.Scheme})
	must(t, err)
	ctx := h.ctx
	forbidden := []struct {
		name string
		do   func() error
	}{
		{"list Pods", func() error { return c.List(ctx, &corev1.PodList{}, client.InNamespace(h.ns)) }},
		{"list ConfigMaps", func() error { return c.List(ctx, &corev1.ConfigMapList{}, client.InNamespace(h.ns)) }},
		{"create a Secret", func() error {
			return c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "planted", Namespace: h.ns}})
		}},
		{"update a Secret", func() error {
			s := &corev1.Secret{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: "storage"}, s); err != nil {
				return err
			}
			s.StringData = map[string]string{"x": "y"}
			return c.Update(ctx, s)
		}},
		{"update a UserPackageUpload's spec", func() error {
			u := &upv1.UserPackageUpload{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: "vip"}, u); err != nil {
				return err
			}
			u.Spec.Suspend = true
			return c.Update(ctx, u)
		}},
		{"update a UserPackageSync's spec", func() error {
			return c.Update(ctx, &upv1.UserPackageSync{ObjectMeta: metav1.ObjectMeta{Name: "planted", Namespace: h.ns}})
		}},
		{"delete a UserPackageSync", func() error {
			return c.Delete(ctx, &upv1.UserPackageSync{ObjectMeta: metav1.ObjectMeta{Name: "planted", Namespace: h.ns}})
		}},
		{"list Leases without leader election's Role", func() error {
			return c.List(ctx, &coordinationv1.LeaseList{}, client.InNamespace(h.ns))
		}},
		{"create core Events outside leader election's Role", func() error {
			return c.Create(ctx, &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: "planted", Namespace: h.ns},
				InvolvedObject: corev1.ObjectReference{Kind: "Namespace", Name: h.ns},
			})
		}},
		{"label a Namespace", func() error {
			ns := &corev1.Namespace{}
			if err := c.Get(ctx, client.ObjectKey{Name: h.ns}, ns); err != nil {
				return err
			}
			ns.Labels = map[string]string{"crowdpack.io/brand": "planted"}
			return c.Update(ctx, ns)
		}},
		{"create a WeChatPayBrand", func() error {
			return c.Create(ctx, &upv1.WeChatPayBrand{ObjectMeta: metav1.ObjectMeta{Name: "planted-" + h.ns},
				Spec: upv1.WeChatPayBrandSpec{CredentialsSecretRef: upv1.SecretReference{Name: "x"}}})
		}},
		{"list ClusterRoles", func() error { return c.List(ctx, &rbacv1.ClusterRoleList{}) }},
	}
	for _, f := range forbidden {
		if err := f.do(); !apierrors.IsForbidden(err) {
			t.Errorf("the manager user may %s (error %v), want Forbidden", f.name, err)
		}
	}
	// And what role.yaml grants works.
	must(t, c.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: "wechatpay-brand"}, &corev1.Secret{}))
	must(t, c.List(ctx, &upv1.UserPackageUploadList{}))
	// A sync's children: made per revision, pruned past its historyLimit.
	must(t, c.Create(ctx, h.object("child", "vip.csv")))
	must(t, c.Delete(ctx, h.object("child", "vip.csv")))
	must(t, c.List(ctx, &upv1.UserPackageSyncList{}))
	// Namespace metadata (labels decide which WeChatPayBrands a namespace may use).
	must(t, c.List(ctx, &corev1.NamespaceList{}))
}
