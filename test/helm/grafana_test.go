package helm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The chart's dashboard ConfigMap holds config/grafana/crowdpack.json as it
// is, with the label Grafana's sidecar selects; it is off by default.
func TestTheGrafanaDashboardIsConfigGrafana(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(root, "config", "grafana", "crowdpack.json"))
	must(t, err)
	copied, err := os.ReadFile(filepath.Join(root, "charts", "crowdpack", "files", "grafana", "crowdpack.json"))
	must(t, err)
	if string(copied) != string(want) {
		t.Fatal("charts/crowdpack/files/grafana/crowdpack.json differs from config/grafana/crowdpack.json: run make manifests")
	}

	cm := render(t, "crowdpack", "grafanaDashboard: {enabled: true}\n").find("ConfigMap", "grafana-dashboard")
	if cm == nil {
		t.Fatal("grafanaDashboard.enabled renders no dashboard ConfigMap")
	}
	if got := cm.GetLabels()["grafana_dashboard"]; got != "1" {
		t.Errorf("label grafana_dashboard = %q, want \"1\"", got)
	}
	if cm.GetNamespace() != namespace {
		t.Errorf("namespace %s, want the release's %s", cm.GetNamespace(), namespace)
	}
	data, _, _ := unstructured.NestedString(cm.Object, "data", "crowdpack.json")
	if data != strings.TrimSuffix(string(want), "\n") {
		t.Error("the ConfigMap's crowdpack.json is not config/grafana/crowdpack.json")
	}

	cm = render(t, "crowdpack", "grafanaDashboard: {enabled: true, namespace: monitoring, label: dashboards, labelValue: crowdpack, annotations: {grafana_folder: Operators}}\n").
		find("ConfigMap", "grafana-dashboard")
	if cm == nil || cm.GetNamespace() != "monitoring" || cm.GetLabels()["dashboards"] != "crowdpack" || cm.GetAnnotations()["grafana_folder"] != "Operators" {
		t.Errorf("with a namespace, label and annotation of its own: %v", cm)
	}

	if render(t, "crowdpack", "").find("ConfigMap", "grafana-dashboard") != nil {
		t.Error("the default values render the dashboard ConfigMap")
	}
}
