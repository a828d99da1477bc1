package soak

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowdpack/crowdpack/controllers/secrets"
	"github.com/crowdpack/crowdpack/internal/sandbox"
	"github.com/crowdpack/crowdpack/internal/testutil/kubetest"
	"github.com/crowdpack/crowdpack/internal/testutil/miniotest"
	"github.com/crowdpack/crowdpack/internal/testutil/repo"
)

const (
	brandID = "1000000000001"
	// systemNamespace holds the leader election Lease.
	systemNamespace = "crowdpack-system"
	// wechatpayTimeout is the managers' client timeout; the sandbox's slow
	// answers take longer.
	wechatpayTimeout = 3 * time.Second
	// partSize makes files of a few hundred KiB multi-part uploads.
	partSize = 32 << 10
)

// world is everything the soak runs against: its own kube-apiserver and
// etcd (restarted by the faults, so shared with no other test), MinIO, the
// sandbox, the HTTP sources and the manager processes.
type world struct {
	t        *testing.T
	ctx      context.Context
	kube     *kubetest.Env
	storage  *miniotest.Server
	identity *sandbox.Identity
	sandbox  *sandbox.Server
	api      *sandbox.Instance
	sources  *httpSources
	logDir   string
	binary   string

	mu       sync.Mutex
	managers []*manager // running, oldest first
	started  int
	// elected is the mode replacements start in; stopping ends replacing.
	elected, stopping bool
	// exitedByThemselves counts managers that exited on their own (a lost
	// leader election) and were replaced, as a Deployment replaces them.
	exitedByThemselves int
	// peakRSS is the highest resident memory any manager reached.
	peakRSS int64
}

// manager is one manager process.
type manager struct {
	cmd         *exec.Cmd
	name        string
	metricsAddr string
	pprofAddr   string
	exited      chan struct{}
	startedAt   time.Time
	elected     bool
	killed      atomic.Bool // by the soak, not by itself
	// goroutinesAtStart is go_goroutines once the manager first answered,
	// for the leak check; 0 until then.
	goroutinesAtStart atomic.Int64
	// measuredAsLeader says goroutinesAtStart was taken once it led.
	measuredAsLeader atomic.Bool
}

func newWorld(t *testing.T, seed uint64) *world {
	t.Helper()
	w := &world{t: t, ctx: context.Background(), logDir: t.TempDir()}
	if dir := os.Getenv("CROWDPACK_SOAK_LOGS"); dir != "" {
		w.logDir = dir // kept after the run, for a failure's post-mortem
	}
	must(t, os.MkdirAll(w.logDir, 0o755))
	var err error
	w.identity, err = sandbox.NewIdentity(brandID)
	must(t, err)
	w.kube, err = kubetest.Start()
	must(t, err)
	t.Cleanup(func() { _ = w.kube.Stop() })
	w.storage = miniotest.StartT(t)
	cfg := w.identity.Config()
	cfg.PartSize, cfg.Seed = partSize, seed
	w.sandbox, err = sandbox.New(cfg)
	must(t, err)
	w.api, err = w.sandbox.Listen(sandbox.ListenOptions{})
	must(t, err)
	t.Cleanup(func() { _ = w.api.Close() })
	w.sources = startHTTPSources(t, seed)
	w.binary = buildManager(t)
	must(t, w.kube.Client.Create(w.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}}))
	t.Cleanup(w.stop)
	return w
}

// makeTenant creates a namespace with the brand and storage Secrets and
// a bucket of the same name.
func (w *world) makeTenant(ns string) {
	t := w.t
	must(t, w.kube.Client.Create(w.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	must(t, w.kube.Client.Create(w.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "wechatpay-brand", Namespace: ns},
		Data:       w.identity.SecretData(),
	}))
	must(t, w.kube.Client.Create(w.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "storage", Namespace: ns},
		StringData: map[string]string{secrets.KeyAccessKey: w.storage.AccessKey, secrets.KeySecretKey: w.storage.SecretKey},
	}))
	must(t, w.storage.MakeBucket(w.ctx, ns))
	must(t, w.storage.EnableVersioning(w.ctx, ns))
}

// buildManager builds the manager binary the soak runs.
func buildManager(t *testing.T) string {
	root, err := repo.Root()
	must(t, err)
	bin := filepath.Join(t.TempDir(), "manager")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir, build.Stderr = root, os.Stderr
	must(t, build.Run())
	return bin
}

// startManager starts one more manager process; with leaderElection it
// waits for the Lease before working.
func (w *world) startManager(leaderElection bool) *manager {
	t := w.t
	kubeconfig, err := w.kube.AdminKubeconfig(t.TempDir(), "manager")
	must(t, err)
	w.mu.Lock()
	w.started++
	name := fmt.Sprintf("manager-%d", w.started)
	w.mu.Unlock()
	m := &manager{name: name, metricsAddr: freeAddress(t), pprofAddr: freeAddress(t), exited: make(chan struct{}), elected: leaderElection}
	args := []string{"--kubeconfig", kubeconfig, "--wechatpay-endpoint", w.api.URL,
		"--wechatpay-timeout", wechatpayTimeout.String(),
		"--metrics-bind-address", m.metricsAddr, "--metrics-secure=false", "--health-probe-bind-address", "0",
		"--pprof-bind-address", m.pprofAddr,
		"--source-allowed-cidrs", "127.0.0.1/32", "--allow-insecure-sources",
		"--retry-base-delay", "200ms", "--retry-max-delay", "5s", "--zap-log-level", "info"}
	if leaderElection {
		args = append(args, "--leader-elect", "--leader-election-namespace", systemNamespace)
	}
	logFile, err := os.Create(filepath.Join(w.logDir, name+".log"))
	must(t, err)
	defer logFile.Close() // the process has its own descriptor
	m.cmd = exec.Command(w.binary, args...)
	m.cmd.Stdout, m.cmd.Stderr = logFile, logFile
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, m.cmd.Start())
	m.startedAt = time.Now()
	go func() {
		_ = m.cmd.Wait()
		close(m.exited)
		w.replaceIfExitedByItself(m)
	}()
	go m.recordGoroutinesAtStart(leaderElection)
	w.mu.Lock()
	w.managers = append(w.managers, m)
	w.mu.Unlock()
	return m
}

// recordGoroutinesAtStart notes the manager's goroutines 5 s after it
// first answers, and again 5 s after it becomes the leader, when its
// controllers start their workers and caches: the leak check compares the
// end with the start of the manager's last role.
func (m *manager) recordGoroutinesAtStart(elected bool) {
	leading := false
	for !leading {
		select {
		case <-m.exited:
			return
		case <-time.After(500 * time.Millisecond):
		}
		status, ok := metric(m.metricsAddr, "leader_election_master_status")
		if _, up := metric(m.metricsAddr, "go_goroutines"); !up {
			continue
		}
		leading = !elected || (ok && status == 1)
		if !leading && m.goroutinesAtStart.Load() != 0 {
			continue // a standby, measured already
		}
		select {
		case <-m.exited:
			return
		case <-time.After(5 * time.Second):
		}
		if n, ok := metric(m.metricsAddr, "go_goroutines"); ok {
			m.goroutinesAtStart.Store(int64(n))
			m.measuredAsLeader.Store(leading)
		}
	}
}

// leads reports whether the manager does the work: it holds the Lease,
// or elects no leader.
func (m *manager) leads() bool {
	status, ok := metric(m.metricsAddr, "leader_election_master_status")
	return !m.elected || (ok && status == 1)
}

// metric scrapes a manager's metrics once for the sum of name's samples.
func metric(addr, name string) (float64, bool) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil || fams[name] == nil {
		return 0, false
	}
	sum := 0.0
	for _, m := range fams[name].GetMetric() {
		sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	return sum, true
}

// goroutineDump is the manager's goroutines, grouped by stack.
func (m *manager) goroutineDump() string {
	resp, err := http.Get("http://" + m.pprofAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	dump, _ := io.ReadAll(resp.Body)
	return string(dump)
}

// dumpGoroutines writes each running manager's goroutines to the log
// directory, for a post-mortem of an object that did not settle.
func (w *world) dumpGoroutines() {
	for _, m := range w.running() {
		_ = os.WriteFile(filepath.Join(w.logDir, m.name+"-goroutines.txt"), []byte(m.goroutineDump()), 0o644)
	}
}

// replaceIfExitedByItself starts a new manager in place of one that exited
// on its own: a manager that loses its leader election (the API server
// away for longer than the Lease's renew deadline) exits, and its
// Deployment starts it again.
func (w *world) replaceIfExitedByItself(m *manager) {
	if m.killed.Load() {
		return
	}
	w.mu.Lock()
	running := slices.Contains(w.managers, m)
	w.managers = slices.DeleteFunc(w.managers, func(other *manager) bool { return other == m })
	stopping, elected := w.stopping, w.elected
	if running && !stopping {
		w.exitedByThemselves++
	}
	w.mu.Unlock()
	if !running || stopping {
		return
	}
	time.Sleep(time.Second) // the kubelet's first restart backoff is longer; a second keeps the soak busy
	w.startManager(elected)
}

// kill SIGKILLs m and forgets it.
func (w *world) kill(m *manager) {
	m.killed.Store(true)
	_ = m.cmd.Process.Kill()
	<-m.exited
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, other := range w.managers {
		if other == m {
			w.managers = append(w.managers[:i], w.managers[i+1:]...)
			break
		}
	}
}

func (w *world) stopManagers() {
	for _, m := range w.running() {
		w.kill(m)
	}
}

// switchMode kills the managers and starts n in the given mode.
func (w *world) switchMode(elected bool, n int) {
	w.mu.Lock()
	w.elected = elected
	w.mu.Unlock()
	w.stopManagers()
	for range n {
		w.startManager(elected)
	}
}

// isElected says whether managers start with leader election now.
func (w *world) isElected() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.elected
}

// stop kills every manager and replaces none.
func (w *world) stop() {
	w.mu.Lock()
	w.stopping = true
	w.mu.Unlock()
	for _, m := range w.running() {
		w.kill(m)
	}
}

func (w *world) running() []*manager {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*manager(nil), w.managers...)
}

// leader is the running manager that holds the Lease, or the only one;
// nil while none does.
func (w *world) leader() *manager {
	running := w.running()
	if len(running) == 1 {
		return running[0]
	}
	for _, m := range running {
		if v, ok := metric(m.metricsAddr, "leader_election_master_status"); ok && v == 1 {
			return m
		}
	}
	return nil
}

// sampleRSS records the managers' resident memory every second until ctx ends.
func (w *world) sampleRSS(ctx context.Context) {
	for {
		for _, m := range w.running() {
			if rss := residentMemory(m.cmd.Process.Pid); rss > 0 {
				w.mu.Lock()
				w.peakRSS = max(w.peakRSS, rss)
				w.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// residentMemory reads a process's VmRSS in bytes (0 once it is gone).
func residentMemory(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// freeAddress is a loopback address with a port nobody listens on.
func freeAddress(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().String()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
