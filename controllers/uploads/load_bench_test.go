package uploads

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/sandbox"
	"github.com/crowdpack/crowdpack/internal/testutil/repo"
)

// BenchmarkThousandUploads creates CROWDPACK_LOAD_OBJECTS (default 1,000)
// UserPackageUploads of small files in MinIO, each expanding a crowd
// package, and measures the time until all are Ready, with the real
// manager binary (flags from CROWDPACK_LOAD_FLAGS) against the sandbox. It
// reports the seconds, the initiate calls (exactly one per object), the
// manager's peak RSS, the API server writes per upload (from the manager's
// own client metrics) and the CPU time the API server, etcd, the manager,
// MinIO and this process (the sandbox and the creator) spent. Then, in the
// same run, it restarts the manager with every upload finished and counts
// what the restart cost (load_restart_test.go), and times the bare-write
// floor: the same objects and the writes the exactly-once protocol cannot
// avoid, from a plain client (load_floor_test.go); "floor-ratio" is the
// operator's time over the floor's. Run it with `make load`.
func BenchmarkThousandUploads(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("CROWDPACK_LOAD_OBJECTS")); err == nil {
		n = v
	}
	h := newHarness(b, harnessOptions{noManager: true})
	// Every request to MinIO goes through a proxy that counts it.
	proxy := newCountingProxy(b, storage.Endpoint)
	for i := range n {
		h.put(fmt.Sprintf("load-%04d.csv", i), phoneFile(i*10, 10))
	}
	// The floor's objects, in a namespace of their own, are not the manager's.
	watch := []string{"--watch-namespaces", h.ns}
	metricsAddr, pprofAddr := freeAddr(b), freeAddr(b)
	manager := startManagerBinary(b, h, append([]string{"--metrics-bind-address", metricsAddr, "--pprof-bind-address", pprofAddr}, watch...)...)
	apiServer, etcd, minio := childProcess(b, "kube-apiserver"), childProcess(b, "etcd"), childProcess(b, "minio")
	pinning := newLoadPinning()
	pinning.controlPlaneOn(b, apiServer, etcd)
	pinning.restOn(b, manager.Process.Pid, minio, os.Getpid())
	pinning.report(b)
	apiServerCPU, etcdCPU, managerCPU := processCPU(b, apiServer), processCPU(b, etcd), processCPU(b, manager.Process.Pid)
	minioCPU, selfCPU := processCPU(b, minio), processCPU(b, os.Getpid())

	b.ResetTimer()
	start := time.Now()
	// Profiles cover 30 s from CROWDPACK_LOAD_PROFILE_AT (e.g. 60s) into the run.
	profileAt, _ := time.ParseDuration(os.Getenv("CROWDPACK_LOAD_PROFILE_AT"))
	profiled := profileAPIServer(b, os.Getenv("CROWDPACK_LOAD_APISERVER_PROFILE"), profileAt, 30*time.Second)
	managerProfiled := profileManager(b, pprofAddr, os.Getenv("CROWDPACK_LOAD_MANAGER_PROFILE"), profileAt, 30*time.Second)
	createEach(b, n, func(i int) {
		u := loadObject(h, i, proxy)
		if err := kube.Client.Create(h.ctx, u); err != nil {
			b.Error(err)
		}
	})
	// The manager's own gauge says when all are Ready (a list of thousands
	// of objects every second would load the API server more than the
	// operator does); one list then confirms it.
	waitGauge(b, metricsAddr, "crowdpack_uploads", map[string]string{"phase": "Ready"}, n, max(10*time.Minute, time.Duration(n)*150*time.Millisecond))
	elapsed := time.Since(start)
	<-profiled
	<-managerProfiled
	ready := waitAllReady(b, h, n, time.Minute)
	b.StopTimer()
	apiServerCPU = processCPU(b, apiServer) - apiServerCPU
	etcdCPU = processCPU(b, etcd) - etcdCPU
	managerCPU = processCPU(b, manager.Process.Pid) - managerCPU
	minioCPU = processCPU(b, minio) - minioCPU
	selfCPU = processCPU(b, os.Getpid()) - selfCPU
	time.Sleep(time.Second) // the last events are sent asynchronously
	requests := clientRequests(b, metricsAddr)
	writes := requests["POST"] + requests["PUT"] + requests["PATCH"] + requests["DELETE"]
	reconciles := sumOf(scrape(b, "http://"+metricsAddr+"/metrics"), "controller_runtime_reconcile_total")
	heapProfile(b, pprofAddr, os.Getenv("CROWDPACK_LOAD_HEAP_PROFILE"))
	rss := peakRSS(b, manager.Process.Pid)

	initiates := h.sandbox.CountSucceeded(sandbox.EndpointInitiate)
	if initiates != n {
		b.Errorf("%d initiate calls for %d objects, want exactly one each", initiates, n)
	}
	if expands := h.sandbox.CountSucceeded(sandbox.EndpointExpand); expands != n {
		b.Errorf("%d expand calls for %d objects, want exactly one each", expands, n)
	}
	b.ReportMetric(elapsed.Seconds(), "s-to-ready")
	b.ReportMetric(float64(initiates), "initiates")
	b.ReportMetric(float64(rss)/(1<<20), "MiB-peak-rss")
	b.ReportMetric(float64(writes)/float64(n), "writes/upload")
	b.ReportMetric(reconciles/float64(n), "reconciles/upload")
	b.ReportMetric(apiServerCPU.Seconds(), "apiserver-cpu-s")
	b.ReportMetric(etcdCPU.Seconds(), "etcd-cpu-s")
	b.ReportMetric(managerCPU.Seconds(), "manager-cpu-s")
	b.ReportMetric(minioCPU.Seconds(), "minio-cpu-s")
	b.ReportMetric(selfCPU.Seconds(), "sandbox-and-creator-cpu-s")
	b.Logf("manager requests to the API server by method: %v", requests)
	objectBytes, managedFieldsBytes := objectSize(b, ready)
	b.ReportMetric(float64(objectBytes), "bytes/object")
	b.Logf("a Ready object: %d bytes of JSON, %d of them managedFields", objectBytes, managedFieldsBytes)

	manager, restart := restartManager(b, h, manager, proxy, n, pinning, watch...)
	restart.report(b)
	_ = manager.Process.Kill()
	_ = manager.Wait()

	floor := runFloor(b, h, n, ready)
	b.ReportMetric(floor.elapsed.Seconds(), "floor-s")
	b.ReportMetric(elapsed.Seconds()/floor.elapsed.Seconds(), "floor-ratio")
	b.ReportMetric(floor.apiServerCPU.Seconds(), "floor-apiserver-cpu-s")
	// What the operator costs the API server beyond the floor, whatever
	// else the machine did meanwhile (wall time depends on it).
	b.ReportMetric(apiServerCPU.Seconds()/floor.apiServerCPU.Seconds(), "floor-apiserver-cpu-ratio")
	b.ReportMetric(floor.etcdCPU.Seconds(), "floor-etcd-cpu-s")
	b.ReportMetric(floor.selfCPU.Seconds(), "floor-client-and-creator-cpu-s")
	b.Logf("floor: %d status writes and %d events for %d objects in %s; a finished object %d bytes of JSON",
		floor.statusWrites, floor.events, n, floor.elapsed.Round(time.Millisecond), floor.objectBytes)
}

// loadObject is the i-th object of the load test: its own small file,
// read through the counting proxy, expanding a crowd package of its own.
func loadObject(h *harness, i int, proxy *countingProxy) *upv1.UserPackageUpload {
	u := h.object(fmt.Sprintf("load-%04d", i), fmt.Sprintf("load-%04d.csv", i))
	u.Spec.Source.S3.Endpoint = proxy.endpoint
	u.Spec.UserPackageID = loadPackageID(i)
	return u
}

// heapProfile writes the manager's heap profile (in use and allocated) to
// file, for go tool pprof; none when file is empty.
func heapProfile(b *testing.B, pprofAddr, file string) {
	if file == "" {
		return
	}
	resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/heap?gc=1")
	must(b, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	must(b, err)
	must(b, os.WriteFile(file, data, 0o644))
}

// profileAPIServer writes a CPU profile of the API server, taken over
// duration from at into the run, to file (none when file is empty),
// for go tool pprof. The channel closes when it is written.
func profileAPIServer(b *testing.B, file string, at, duration time.Duration) <-chan struct{} {
	done := make(chan struct{})
	if file == "" {
		close(done)
		return done
	}
	c, err := rest.RESTClientFor(restConfigForRaw(kube.Config))
	must(b, err)
	go func() {
		defer close(done)
		time.Sleep(at)
		data, err := c.Get().AbsPath("/debug/pprof/profile").Param("seconds", strconv.Itoa(int(duration.Seconds()))).
			Timeout(duration + time.Minute).DoRaw(b.Context())
		if err == nil {
			err = os.WriteFile(file, data, 0o644)
		}
		if err != nil {
			b.Errorf("profile the API server: %v", err)
		}
	}()
	return done
}

// profileManager writes a CPU profile of the manager, like profileAPIServer.
func profileManager(b *testing.B, pprofAddr, file string, at, duration time.Duration) <-chan struct{} {
	done := make(chan struct{})
	if file == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		time.Sleep(at)
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, int(duration.Seconds()))
		resp, err := http.Get(url)
		for tries := 0; err != nil && tries < 40; tries++ { // the manager is starting
			time.Sleep(250 * time.Millisecond)
			resp, err = http.Get(url)
		}
		if err == nil {
			defer resp.Body.Close()
			var data []byte
			if data, err = io.ReadAll(resp.Body); err == nil {
				err = os.WriteFile(file, data, 0o644)
			}
		}
		if err != nil {
			b.Errorf("profile the manager: %v", err)
		}
	}()
	return done
}

// restConfigForRaw is cfg for raw requests outside any API group.
func restConfigForRaw(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.GroupVersion = &schema.GroupVersion{}
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(runtime.NewScheme()).WithoutConversion()
	return cfg
}

// startManagerBinary runs bin/manager against the test's sandbox, as a
// process of its own, so that its memory can be measured and it can be
// killed with SIGKILL.
func startManagerBinary(t testing.TB, h *harness, extraArgs ...string) *exec.Cmd {
	bin, err := managerBinary()
	must(t, err)
	kubeconfigFile, err := kube.AdminKubeconfig(t.TempDir(), "manager")
	must(t, err)

	// MinIO listens on 127.0.0.1 over plain HTTP; metrics are scraped
	// over plain HTTP by the benchmark.
	args := []string{"--kubeconfig", kubeconfigFile, "--wechatpay-endpoint", h.api.URL,
		"--health-probe-bind-address", "0", "--zap-log-level", "error",
		"--source-allowed-cidrs", "127.0.0.1/32", "--allow-insecure-sources", "--metrics-secure=false"}
	args = append(args, extraArgs...)
	args = append(args, strings.Fields(os.Getenv("CROWDPACK_LOAD_FLAGS"))...)
	cmd := exec.Command(bin, args...)
	// The memory request the chart and config/manager give it, as they
	// pass it; CROWDPACK_LOAD_MANAGER_ENV (e.g. GOMEMLIMIT=100MiB, or
	// MEMORY_REQUEST=0 for none) is the manager's alone, not the API
	// server's or the sandbox's.
	cmd.Env = append(os.Environ(), "MEMORY_REQUEST="+deployedMemoryRequest)
	cmd.Env = append(cmd.Env, strings.Fields(os.Getenv("CROWDPACK_LOAD_MANAGER_ENV"))...)
	cmd.Stderr = os.Stderr
	must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	t.Logf("manager %v", args[6:])
	return cmd
}

// deployedMemoryRequest is the manager container's memory request in the
// chart's values and config/manager, which pass it as MEMORY_REQUEST.
const deployedMemoryRequest = "128Mi"

var managerBinaryDir string

// managerBinary builds the manager once per test run, into
// managerBinaryDir, which the suite removes at its end; or it is
// CROWDPACK_LOAD_MANAGER, a manager built beforehand (another commit's,
// to compare two in the same harness).
var managerBinary = sync.OnceValues(func() (string, error) {
	if bin := os.Getenv("CROWDPACK_LOAD_MANAGER"); bin != "" {
		return bin, nil
	}
	root, err := repo.Root()
	if err != nil {
		return "", err
	}
	if managerBinaryDir, err = os.MkdirTemp("", "crowdpack-manager-"); err != nil {
		return "", err
	}
	bin := filepath.Join(managerBinaryDir, "manager")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir, build.Stderr = root, os.Stderr
	return bin, build.Run()
})

// waitAllReady lists the objects until all n are Ready, and returns one.
func waitAllReady(b *testing.B, h *harness, n int, timeout time.Duration) *upv1.UserPackageUpload {
	deadline := time.Now().Add(timeout)
	for {
		var list upv1.UserPackageUploadList
		must(b, kube.Client.List(h.ctx, &list, client.InNamespace(h.ns)))
		ready := 0
		for i := range list.Items {
			if conditionIs(&list.Items[i], upv1.ConditionReady, metav1.ConditionTrue) {
				ready++
			}
		}
		if ready == n {
			return &list.Items[0]
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d Ready after %s", ready, n, timeout)
		}
		time.Sleep(time.Second) // a list of thousands of objects costs the API server: not too often
	}
}

// objectSize is the size of u's JSON, as the API server stores it, and of
// its managedFields.
func objectSize(b *testing.B, u *upv1.UserPackageUpload) (object, managedFields int) {
	data, err := json.Marshal(u)
	must(b, err)
	fields, err := json.Marshal(u.ManagedFields)
	must(b, err)
	b.Logf("a Ready object: %s", data)
	return len(data), len(fields)
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

// waitGauge scrapes the manager's metrics until the gauge with labels
// reaches want.
func waitGauge(b *testing.B, metricsAddr, name string, labels map[string]string, want int, timeout time.Duration) {
	f := scrapeUntil(b, "http://"+metricsAddr+"/metrics", timeout, func(f families) bool {
		return int(f.value(name, labels)) >= want
	})
	if got := f.value(name, labels); int(got) < want {
		b.Fatalf("%s%v = %v after %s, want %d", name, labels, got, timeout, want)
	}
}

// clientRequests sums the manager's rest_client_requests_total by method:
// every request it made to the API server, events included.
func clientRequests(b *testing.B, metricsAddr string) map[string]int {
	byMethod := map[string]int{}
	fam := scrape(b, "http://"+metricsAddr+"/metrics")["rest_client_requests_total"]
	for _, m := range fam.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "method" {
				byMethod[l.GetValue()] += int(m.GetCounter().GetValue())
			}
		}
	}
	return byMethod
}

// childProcess finds the process named name (kube-apiserver, etcd) that
// this test process started.
func childProcess(b *testing.B, name string) int {
	entries, err := os.ReadDir("/proc")
	must(b, err)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		command, _, _ := strings.Cut(string(cmdline), "\x00")
		if err != nil || filepath.Base(command) != name {
			continue
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && parentPID(string(stat)) == os.Getpid() {
			return pid
		}
	}
	b.Fatalf("no %s started by this process", name)
	return 0
}

// parentPID reads the 4th field of /proc/<pid>/stat (after the command in parentheses).
func parentPID(stat string) int {
	fields := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// processCPU is the user and system CPU time a process has used.
func processCPU(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	must(b, err)
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	must(b, errors.Join(err1, err2))
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}
