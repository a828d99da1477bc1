package controllers

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/sandbox"
	"github.com/crowdpack/crowdpack/internal/testutil/repo"
)

// BenchmarkThousandUploads creates CROWDPACK_LOAD_OBJECTS (default 1,000)
// UserPackageUploads of small files in MinIO and measures the time until
// all are Ready, with the real manager binary (flags from
// CROWDPACK_LOAD_FLAGS) against the sandbox. It reports the seconds, the
// initiate calls (exactly one per object) and the manager's peak RSS. Run it
// with `make load`.
func BenchmarkThousandUploads(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("CROWDPACK_LOAD_OBJECTS")); err == nil {
		n = v
	}
	h := newHarness(b, harnessOptions{noManager: true})
	for i := range n {
		h.put(fmt.Sprintf("load-%04d.csv", i), phoneFile(i*10, 10))
	}
	manager := startManagerBinary(b, h)

	b.ResetTimer()
	start := time.Now()
	createConcurrently(b, h, n)
	waitAllReady(b, h, n, 5*time.Minute)
	elapsed := time.Since(start)
	b.StopTimer()

	initiates := h.sandbox.CountSucceeded(sandbox.EndpointInitiate)
	if initiates != n {
		b.Errorf("%d initiate calls for %d objects, want exactly one each", initiates, n)
	}
	b.ReportMetric(elapsed.Seconds(), "s-to-ready")
	b.ReportMetric(float64(initiates), "initiates")
	b.ReportMetric(float64(peakRSS(b, manager.Process.Pid))/(1<<20), "MiB-peak-rss")
}

// startManagerBinary builds and runs bin/manager against the test's
// sandbox, as a process of its own so that its memory can be measured.
func startManagerBinary(b *testing.B, h *harness) *exec.Cmd {
	root, err := repo.Root()
	must(b, err)
	bin := filepath.Join(b.TempDir(), "manager")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir, build.Stderr = root, os.Stderr
	must(b, build.Run())

	user, err := kube.Environment().AddUser(envtest.User{Name: "load", Groups: []string{"system:masters"}}, nil)
	must(b, err)
	kubeconfig, err := user.KubeConfig()
	must(b, err)
	kubeconfigFile := filepath.Join(b.TempDir(), "kubeconfig")
	must(b, os.WriteFile(kubeconfigFile, kubeconfig, 0o600))

	args := []string{"--kubeconfig", kubeconfigFile, "--wechatpay-endpoint", h.api.URL,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--zap-log-level", "error"}
	args = append(args, strings.Fields(os.Getenv("CROWDPACK_LOAD_FLAGS"))...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	must(b, cmd.Start())
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	b.Logf("manager %v", args[6:])
	return cmd
}

func createConcurrently(b *testing.B, h *harness, n int) {
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				u := h.object(fmt.Sprintf("load-%04d", i), fmt.Sprintf("load-%04d.csv", i))
				if err := kube.Client.Create(h.ctx, u); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}

func waitAllReady(b *testing.B, h *harness, n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		var list v1.UserPackageUploadList
		must(b, kube.Client.List(h.ctx, &list, client.InNamespace(h.ns)))
		ready := 0
		for i := range list.Items {
			if conditionIs(&list.Items[i], v1.ConditionReady, metav1.ConditionTrue) {
				ready++
			}
		}
		if ready == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d Ready after %s", ready, n, timeout)
		}
		time.Sleep(time.Second) // a list of 1,000 objects costs the API server: not too often
	}
}

// peakRSS reads the process's high-water mark of resident memory.
func peakRSS(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	must(b, err)
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			must(b, err)
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc status")
	return 0
}
