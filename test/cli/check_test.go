package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// check tells a cluster without the manager from one with it, and a user
// who may create uploads from one who may not.
func TestCheck(t *testing.T) {
	requireCluster(t)
	tn := newTenant(t)

	r := run(t, "check", "-n", tn.ns)
	for _, want := range []string{
		"ok    userpackageuploads.wechatpay.crowdpack.io: established, v1alpha1 served and stored",
		"ok    wechatpaybrands.wechatpay.crowdpack.io: established, v1alpha1 served and stored",
		"ok    userpackagesyncs.wechatpay.crowdpack.io: established, v1alpha1 served and stored",
		"FAIL  no manager Deployment",
		"ok    create userpackageuploads",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("check without a manager lacks %q", want)
		}
	}
	if r.code != 1 {
		t.Errorf("check without a manager: exit %d, want 1", r.code)
	}

	// The manager as config/default installs it, with a ready replica.
	ctx := context.Background()
	labels := map[string]string{"app.kubernetes.io/name": "crowdpack", "control-plane": "controller-manager"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "crowdpack-controller-manager", Namespace: brandNamespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "manager", Image: "ghcr.io/crowdpack/crowdpack:v0.3.0",
					Args: []string{"--leader-elect"},
					Env: []corev1.EnvVar{{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{
						FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}},
				}}},
			},
		},
	}
	must(t, kube.Client.Create(ctx, d))
	t.Cleanup(func() { _ = kube.Client.Delete(ctx, d) })
	d.Status.Replicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = 1, 1, 1
	must(t, kube.Client.Status().Update(ctx, d))

	r = run(t, "check", "-n", tn.ns)
	for _, want := range []string{
		"ok    Deployment crowdpack-system/crowdpack-controller-manager: 1/1 ready (ghcr.io/crowdpack/crowdpack:v0.3.0)",
		"ok    brand Secrets namespace: crowdpack-system",
		"all checks passed",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("check with a manager lacks %q", want)
		}
	}
	if r.code != 0 {
		t.Errorf("check with a manager: exit %d, %v", r.code, r.err)
	}

	// A user bound to nothing: create is denied, and check says so.
	user, err := kube.Environment().AddUser(envtest.User{Name: "nobody"}, nil)
	must(t, err)
	cfg, err := user.KubeConfig()
	must(t, err)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	must(t, os.WriteFile(path, cfg, 0o600))
	r = runAs(t, path, false, "check", "-n", tn.ns)
	for _, want := range []string{"FAIL  create userpackageuploads: denied", "--    not allowed to list Deployments"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("check as a user bound to nothing lacks %q", want)
		}
	}
	if r.code != 1 {
		t.Errorf("check as a user bound to nothing: exit %d, want 1", r.code)
	}
}

// requireCluster skips a test in the unit tier (go test -short).
func requireCluster(t *testing.T) {
	t.Helper()
	if kube == nil {
		t.Skip("needs the API server, MinIO and the sandbox: run without -short")
	}
}

// waitUntil polls ok for up to a minute.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// identitySecret is the sandbox brand's credentials Secret.
func identitySecret(name, namespace string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Data: identity.SecretData()}
}
