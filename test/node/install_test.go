//go:build e2enode

package node

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const (
	// managerNamespace is where both installs put the manager; it enforces
	// the restricted Pod Security level.
	managerNamespace = "crowdpack-system"
	helmRelease      = "crowdpack"
	managerSelector  = "control-plane=controller-manager"
	// managerArgs are the only flags the suite adds: MinIO on the host is
	// plain HTTP.
	insecureSourcesFlag = "--allow-insecure-sources"
)

// restrictedNamespace (re)creates name labelled to enforce the restricted
// Pod Security level: a pod that asks for more is refused by the API server.
func restrictedNamespace(t *testing.T, name string) {
	t.Helper()
	deleteNamespace(t, name)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest",
	}}}
	must(t, kube.Create(context.Background(), ns))
}

func deleteNamespace(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := kube.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("delete namespace %s: %v", name, err)
	}
	eventually(t, 2*time.Minute, "namespace "+name+" gone", func(ctx context.Context) error {
		err := kube.Get(ctx, clientKey("", name), &corev1.Namespace{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
}

// helmValues are the chart's defaults but for where WeChat Pay is (the
// sandbox on the host, with its CA) and plain-HTTP sources (MinIO).
func helmValues(t *testing.T, extra map[string]any) string {
	t.Helper()
	values := map[string]any{
		"wechatpay": map[string]any{"endpoint": world.sandboxAt.URL, "caBundle": string(world.caPEM)},
		"extraArgs": []string{insecureSourcesFlag},
	}
	for k, v := range extra {
		values[k] = v
	}
	data, err := yaml.Marshal(values)
	must(t, err)
	file := filepath.Join(t.TempDir(), "values.yaml")
	must(t, os.WriteFile(file, data, 0o600))
	return file
}

func helm(t *testing.T, args ...string) string {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(filepath.Join(root, "bin", "helm"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig,
		"HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func kubectl(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	out, err := tryKubectl(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func tryKubectl(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command("kubectl", args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// managerPods are the manager's pods that are not being deleted.
func managerPods(ctx context.Context) ([]corev1.Pod, error) {
	list, err := clientset.CoreV1().Pods(managerNamespace).List(ctx, metav1.ListOptions{LabelSelector: managerSelector})
	if err != nil {
		return nil, err
	}
	var pods []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			pods = append(pods, p)
		}
	}
	return pods, nil
}

// waitManagerReady waits for n Ready manager pods running image.
func waitManagerReady(t *testing.T, n int, image string) []corev1.Pod {
	t.Helper()
	var ready []corev1.Pod
	eventually(t, 3*time.Minute, fmt.Sprintf("%d manager pod(s) of %s Ready", n, image), func(ctx context.Context) error {
		pods, err := managerPods(ctx)
		if err != nil {
			return err
		}
		ready = ready[:0]
		var states []string
		for _, p := range pods {
			states = append(states, podState(p))
			if podReady(p) && p.Spec.Containers[0].Image == image {
				ready = append(ready, p)
			}
		}
		if len(ready) != n || len(pods) != n {
			return fmt.Errorf("pods: %v; events: %s", states, warningEvents(ctx))
		}
		return nil
	})
	return ready
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podState says, for a failure message, what a pod is doing.
func podState(p corev1.Pod) string {
	s := fmt.Sprintf("%s %s ready=%t", p.Name, p.Status.Phase, podReady(p))
	for _, c := range p.Status.ContainerStatuses {
		s += fmt.Sprintf(" restarts=%d", c.RestartCount)
		if w := c.State.Waiting; w != nil {
			s += fmt.Sprintf(" waiting=%s(%s)", w.Reason, w.Message)
		}
		if term := c.LastTerminationState.Terminated; term != nil {
			s += fmt.Sprintf(" lastExit=%d(%s)", term.ExitCode, term.Reason)
		}
	}
	return s
}

// warningEvents of the manager's namespace, newest last, for failure messages.
func warningEvents(ctx context.Context) string {
	list, err := clientset.CoreV1().Events(managerNamespace).List(ctx, metav1.ListOptions{FieldSelector: "type=Warning"})
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, fmt.Sprintf("%s %s: %s", e.InvolvedObject.Name, e.Reason, e.Message))
	}
	if len(out) > 8 {
		out = out[len(out)-8:]
	}
	return strings.Join(out, "; ")
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var metaGet = metav1.GetOptions{}
