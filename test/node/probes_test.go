//go:build e2enode

package node

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// blockChain holds the rule that cuts the manager off from the API server.
// Its KUBE- prefix makes hack/node's teardown remove it should this suite
// die before its cleanup.
const blockChain = "KUBE-CROWDPACK-E2E-BLOCK"

// aManagerCutOffFromTheAPIServerGoesUnready rejects the manager pod's
// connections to the API server on the host: the kubelet's readiness probe
// must take the pod out of service while its liveness probe keeps it
// running (a restart cannot bring the API server back), and it is Ready
// again once the API server is reachable.
func aManagerCutOffFromTheAPIServerGoesUnready(t *testing.T) {
	helm(t, "upgrade", helmRelease, second.chart(), "--namespace", managerNamespace, "--values", helmValues(t, nil), "--wait=false")
	pod := waitManagerReady(t, 1, image(second))[0]
	restartsBefore := restarts(pod)

	unblock := blockAPIServer(t, pod.Status.PodIP)
	t.Cleanup(unblock)
	eventually(t, 2*time.Minute, "the cut-off manager unready", func(ctx context.Context) error {
		p, err := clientset.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metaGet)
		if err != nil {
			return err
		}
		if podReady(*p) {
			return fmt.Errorf("still Ready: %s", podState(*p))
		}
		return nil
	})
	// A while unready: the liveness probe must not restart it again and again.
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		p, err := clientset.CoreV1().Pods(pod.Namespace).Get(context.Background(), pod.Name, metaGet)
		must(t, err)
		if crashLooping(*p) || restarts(*p)-restartsBefore > 1 {
			t.Fatalf("the manager cut off from the API server crash-loops: %s", podState(*p))
		}
		if podReady(*p) {
			t.Fatalf("the manager cut off from the API server is Ready again: %s", podState(*p))
		}
		time.Sleep(3 * time.Second)
	}
	unblock()
	waitManagerReady(t, 1, image(second))
}

func restarts(p corev1.Pod) int32 {
	var n int32
	for _, c := range p.Status.ContainerStatuses {
		n += c.RestartCount
	}
	return n
}

func crashLooping(p corev1.Pod) bool {
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Waiting != nil && c.State.Waiting.Reason == "CrashLoopBackOff" {
			return true
		}
	}
	return false
}

// blockAPIServer rejects TCP from podIP to the API server's port on the
// host (where the kubernetes Service leads), returning the undo.
func blockAPIServer(t *testing.T, podIP string) func() {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	must(t, err)
	u, err := url.Parse(cfg.Host)
	must(t, err)
	iptables(t, "-N", blockChain)
	iptables(t, "-A", blockChain, "-s", podIP+"/32", "-p", "tcp", "--dport", u.Port(), "-j", "REJECT", "--reject-with", "tcp-reset")
	iptables(t, "-I", "INPUT", "-j", blockChain)
	done := false
	return func() {
		if done {
			return
		}
		done = true
		iptables(t, "-D", "INPUT", "-j", blockChain)
		iptables(t, "-F", blockChain)
		iptables(t, "-X", blockChain)
	}
}

func iptables(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("iptables", append([]string{"-w", "-t", "filter"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("iptables %s: %v: %s", strings.Join(args, " "), err, out)
	}
}
