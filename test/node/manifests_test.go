//go:build e2enode

package node

import (
	"context"
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	managerDeployment = "crowdpack-controller-manager"
	caConfigMap       = "wechatpay-ca"
	caMountPath       = "/etc/crowdpack/wechatpay-ca"
)

// TestInstallYAMLOnARealNode installs the release's install.yaml as
// docs/install.md says (kubectl apply --server-side), with the overlay a
// user adds to point it at their WeChat Pay endpoint, and checks the same
// as the chart's pass: restricted Pod Security, the image, an upload,
// metrics and logs.
func TestInstallYAMLOnARealNode(t *testing.T) {
	uploadName = "yaml-raw-export"
	t.Cleanup(func() {
		removeInstall(t, func() { kubectl(t, nil, "delete", "--ignore-not-found", "--wait=false", "-f", first.installYAML()) })
	})
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"TheManagerPodIsReadyUnderTheRestrictedPodSecurityLevel", installYAMLIsReady},
		{"TheImageRunIsTheReleasesImageTarball", theImageRunIsTheReleases},
		{"ARawExportIsHashedSplitAndUploadedThroughThePod", aRawExportIsUploadedThroughThePod},
		{"TheMetricsEndpointAnswersOnlyTheReaderRole", theMetricsEndpointAnswersOnlyTheReaderRole},
		{"TheLogsAreJSONLinesWithoutSecrets", theLogsAreJSONLinesWithoutSecrets},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.Fatalf("%s failed: the steps after it need it", s.name)
		}
	}
}

func installYAMLIsReady(t *testing.T) {
	kubectl(t, nil, "apply", "--server-side", "-f", first.installYAML())
	ns := &corev1.Namespace{}
	must(t, kube.Get(context.Background(), clientKey("", managerNamespace), ns))
	if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Fatalf("install.yaml's namespace enforces %q, want restricted", got)
	}
	pointAtTheSandbox(t)
	waitManagerReady(t, 1, image(first))
}

// pointAtTheSandbox does what a user's kustomize overlay does: the WeChat
// Pay endpoint and its CA (mounted from a ConfigMap), and plain-HTTP
// sources for MinIO.
func pointAtTheSandbox(t *testing.T) {
	t.Helper()
	must(t, kube.Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: managerNamespace, Name: caConfigMap},
		Data:       map[string]string{"ca.crt": string(world.caPEM)},
	}))
	patch := []map[string]any{
		{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--wechatpay-endpoint=" + world.sandboxAt.URL},
		{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--wechatpay-ca-file=" + caMountPath + "/ca.crt"},
		{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": insecureSourcesFlag},
	}
	// Volumes merge by name (strategic merge), whatever the Deployment has.
	mount := map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"volumes": []any{map[string]any{"name": "wechatpay-ca", "configMap": map[string]any{"name": caConfigMap}}},
		"containers": []any{map[string]any{"name": "manager", "volumeMounts": []any{
			map[string]any{"name": "wechatpay-ca", "mountPath": caMountPath, "readOnly": true}}}},
	}}}}
	args, err := json.Marshal(patch)
	must(t, err)
	volumes, err := json.Marshal(mount)
	must(t, err)
	kubectl(t, nil, "patch", "deployment", managerDeployment, "--namespace", managerNamespace, "--type=json", "--patch", string(args))
	kubectl(t, nil, "patch", "deployment", managerDeployment, "--namespace", managerNamespace, "--patch", string(volumes))
}

// removeInstall takes an install away with everything the suite made on
// it: the uploads first, while the manager still runs (it handles their
// deletion), then the install (uninstall), the CRDs and the namespaces.
func removeInstall(t *testing.T, uninstall func()) {
	t.Helper()
	deleteNamespace(t, tenantNamespace)
	deleteNamespace(t, scraperNamespace)
	uninstall()
	kubectl(t, nil, "delete", "--ignore-not-found", "-f", first.dist+"/crds.yaml")
	deleteNamespace(t, managerNamespace)
	// Cluster-scoped leftovers the suite made.
	kubectl(t, nil, "delete", "--ignore-not-found", "clusterrolebinding", "e2e-prometheus-metrics-reader")
}
