package manifests

import (
	"context"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// namespacedSA stands for the manager's ServiceAccount in this test.
const namespacedSA = "namespaced-controller-manager"

// TestTheNamespacedInstallGrantsOnlyItsNamespaces applies config/namespaced's
// RBAC for real and asks the authorizer what the manager may do: its
// watched namespace (team-a) and the brand Secrets of its own, never
// another namespace's uploads or Secrets.
func TestTheNamespacedInstallGrantsOnlyItsNamespaces(t *testing.T) {
	objs := render(t, "config/namespaced")
	for _, u := range objs {
		if u.GetKind() == "Namespace" {
			ensureNamespace(t, u.GetName(), u.GetLabels())
		}
	}
	ensureNamespace(t, "team-a", nil)
	for _, u := range objs {
		switch u.GetKind() {
		case "ClusterRoleBinding":
			if u.GetName() == "crowdpack-manager-rolebinding" {
				t.Fatal("config/namespaced keeps the cluster-wide binding crowdpack-manager-rolebinding")
			}
		case "Deployment":
			if err := dryRunApply(u); err != nil {
				t.Errorf("%s is refused: %v", describe(u), err)
			}
			continue
		}
		switch u.GetKind() {
		case "RoleBinding", "ClusterRoleBinding":
			// Bound to a ServiceAccount of its own: config/default's test
			// binds crowdpack-controller-manager cluster-wide in this API server.
			u.SetName("namespaced-" + u.GetName())
			subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
			for _, s := range subjects {
				s.(map[string]any)["name"] = namespacedSA
			}
			if err := unstructured.SetNestedSlice(u.Object, subjects, "subjects"); err != nil {
				t.Fatal(err)
			}
		}
		switch u.GetKind() {
		case "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding":
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), client.FieldOwner(fieldOwner), client.ForceOwnership)
			cancel()
			if err != nil {
				t.Fatalf("apply %s: %v", describe(u), err)
			}
		}
	}
	const group = "wechatpay.crowdpack.io"
	cases := []struct {
		name  string
		attrs authorizationv1.ResourceAttributes
		want  bool
	}{
		{"the manager can watch UserPackageUploads in team-a",
			authorizationv1.ResourceAttributes{Namespace: "team-a", Verb: "watch", Group: group, Resource: "userpackageuploads"}, true},
		{"the manager can patch status in team-a",
			authorizationv1.ResourceAttributes{Namespace: "team-a", Verb: "patch", Group: group, Resource: "userpackageuploads", Subresource: "status"}, true},
		{"the manager can read Secrets in team-a",
			authorizationv1.ResourceAttributes{Namespace: "team-a", Verb: "get", Resource: "secrets"}, true},
		{"the manager can read brand Secrets in its own namespace",
			authorizationv1.ResourceAttributes{Namespace: managerNamespace, Verb: "get", Resource: "secrets"}, true},
		{"the manager can watch WeChatPayBrands",
			authorizationv1.ResourceAttributes{Verb: "watch", Group: group, Resource: "wechatpaybrands"}, true},
		{"the manager can watch Namespaces",
			authorizationv1.ResourceAttributes{Verb: "watch", Resource: "namespaces"}, true},
		{"the manager cannot read Secrets of another namespace",
			authorizationv1.ResourceAttributes{Namespace: "marketing", Verb: "get", Resource: "secrets"}, false},
		{"the manager cannot watch UserPackageUploads cluster-wide",
			authorizationv1.ResourceAttributes{Verb: "watch", Group: group, Resource: "userpackageuploads"}, false},
		{"the manager cannot write WeChatPayBrands' spec",
			authorizationv1.ResourceAttributes{Verb: "update", Group: group, Resource: "wechatpaybrands"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			attrs := tc.attrs
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               "system:serviceaccount:" + managerNamespace + ":" + namespacedSA,
				Groups:             []string{"system:serviceaccounts", "system:authenticated"},
				ResourceAttributes: &attrs,
			}}
			if err := c.Create(context.Background(), sar); err != nil {
				t.Fatalf("SubjectAccessReview: %v", err)
			}
			if sar.Status.Allowed != tc.want {
				t.Errorf("allowed=%v, want %v (%s)", sar.Status.Allowed, tc.want, sar.Status.Reason)
			}
		})
	}
}

func TestThePlatformSamplesAreAcceptedByTheAPIServer(t *testing.T) {
	ensureNamespace(t, managerNamespace, nil)
	kinds := map[string]int{}
	for _, u := range render(t, "config/samples/platform") {
		kinds[u.GetKind()]++
		if err := dryRunApply(u); err != nil {
			t.Errorf("sample %s is refused by the API server: %v", describe(u), err)
		}
	}
	if kinds["WeChatPayBrand"] != 1 || kinds["Secret"] != 1 {
		t.Errorf("config/samples/platform renders %v; want a WeChatPayBrand and its Secret", kinds)
	}
}

// The brand's admission rules are enforced (so the dry run above can fail).
func TestTheAPIServerRefusesABrandWithASelectorForAllNamespaces(t *testing.T) {
	for _, u := range render(t, "config/samples/platform") {
		if u.GetKind() != "WeChatPayBrand" {
			continue
		}
		if err := unstructured.SetNestedField(u.Object, "All", "spec", "allowedNamespaces", "from"); err != nil {
			t.Fatal(err)
		}
		if err := dryRunApply(u); err == nil || !strings.Contains(err.Error(), "selector is used only with from: Selector") {
			t.Errorf("a brand with from: All and a selector: got %v, want refused", err)
		}
	}
}
