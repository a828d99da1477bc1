package uploads

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

// idleInterval is the idle syncs' spec.interval: the least a sync allows.
const idleInterval = time.Minute

// BenchmarkIdleSyncs creates CROWDPACK_IDLE_SYNCS (default 1,000)
// UserPackageSyncs, each following one key of MinIO every minute, with the
// real manager binary against the sandbox; waits until each has synced its
// first revision; then, for CROWDPACK_IDLE_DURATION (default 10m) of
// unchanged sources, counts what the manager does: its writes to the API
// server (its own client metrics, and the API server's count of writes to
// crowdpack's kinds and events), its requests to MinIO (through a counting
// proxy), how the checks spread over the minute, and its CPU and memory. It
// fails on any write, on more than one request per sync per interval (one
// more per sync over the whole window is allowed: a check of the slot just
// before the window that ran late falls inside it), on two checks of one
// sync more than a few seconds off an interval apart, or on checks bunched
// in one second (more than three times an even share). Run
// it with `make idle-syncs`.
func BenchmarkIdleSyncs(b *testing.B) {
	n, window := 1000, 10*time.Minute
	if v, err := strconv.Atoi(os.Getenv("CROWDPACK_IDLE_SYNCS")); err == nil {
		n = v
	}
	if v, err := time.ParseDuration(os.Getenv("CROWDPACK_IDLE_DURATION")); err == nil {
		window = v
	}
	intervals := int(window / idleInterval)
	if intervals < 2 {
		b.Fatalf("CROWDPACK_IDLE_DURATION %s: give at least two intervals of %s", window, idleInterval)
	}
	h := newHarness(b, harnessOptions{noManager: true})
	proxy := newCountingProxy(b, storage.Endpoint)
	for i := range n {
		file, _ := rawNumbersFile(i*10, 10, "%s")
		h.put(idleKey(i), file)
	}
	metricsAddr := freeAddr(b)
	manager := startManagerBinary(b, h, "--metrics-bind-address", metricsAddr)

	created := time.Now()
	createIdleSyncs(b, h, proxy.endpoint, n)
	waitAllSynced(b, h, n, max(10*time.Minute, time.Duration(n)*400*time.Millisecond))
	b.Logf("%d syncs created and their first revisions synced in %s", n, time.Since(created).Round(time.Second))
	waitNoWrites(b, metricsAddr, 5*time.Second, time.Minute)

	b.ResetTimer()
	writesBefore, readsBefore := managerWrites(b, metricsAddr)
	served := apiServerWrites(b)
	servedBefore := lastAPIServerWrites
	cpu := processCPU(b, manager.Process.Pid)
	start := time.Now()
	watchWrites(b, metricsAddr, start.Add(window))
	end := time.Now()
	cpu = processCPU(b, manager.Process.Pid) - cpu
	b.StopTimer()
	time.Sleep(time.Second) // events are sent asynchronously
	writesAfter, readsAfter := managerWrites(b, metricsAddr)
	served = apiServerWrites(b) - served
	for k, v := range lastAPIServerWrites {
		if d := v - servedBefore[k]; d != 0 {
			b.Logf("the API server served %d more %s in the window", d, k)
		}
	}

	checks := proxy.between(start, end)
	report := judgeIdleChecks(b, h.bucket, checks, n, intervals)
	if writes := writesAfter - writesBefore; writes != 0 {
		b.Errorf("the manager wrote to the API server %d times while every source was unchanged, want 0", writes)
	}
	if served != 0 {
		b.Errorf("the API server served %d writes to syncs, uploads and events while every source was unchanged, want 0", served)
	}
	b.Logf("manager: %.1f s of CPU over the %s window (%.2f %% of a core), peak RSS %.1f MiB, RSS when idle %.1f MiB; %.3f API server reads per check",
		cpu.Seconds(), window, 100*cpu.Seconds()/window.Seconds(), float64(peakRSS(b, manager.Process.Pid))/(1<<20),
		float64(currentRSS(b, manager.Process.Pid))/(1<<20), float64(readsAfter-readsBefore)/float64(max(report.attributed, 1)))
	b.ReportMetric(float64(writesAfter-writesBefore), "writes-after-first")
	b.ReportMetric(float64(served), "apiserver-writes")
	b.ReportMetric(report.perSyncPerInterval, "requests/sync/interval")
	b.ReportMetric(float64(report.unattributed), "other-requests")
	b.ReportMetric(float64(report.busiestSecond), "busiest-second-checks")
	b.ReportMetric(float64(n)/idleInterval.Seconds(), "even-second-checks")
	b.ReportMetric(report.minGap.Seconds(), "min-gap-s")
	b.ReportMetric(report.maxGap.Seconds(), "max-gap-s")
	b.ReportMetric(float64(readsAfter-readsBefore)/float64(max(report.attributed, 1)), "api-reads/check")
	b.ReportMetric(cpu.Seconds(), "manager-cpu-s")
	b.ReportMetric(100*cpu.Seconds()/window.Seconds(), "manager-cpu-%")
	b.ReportMetric(float64(peakRSS(b, manager.Process.Pid))/(1<<20), "MiB-peak-rss")
	b.ReportMetric(float64(currentRSS(b, manager.Process.Pid))/(1<<20), "MiB-rss-idle")
}

func idleKey(i int) string { return fmt.Sprintf("idle/sync-%04d.csv", i) }

// createIdleSyncs creates n syncs of one key each through endpoint, every
// minute, each expanding a package of its own (expands of one package
// take turns, which would time the sandbox, not the syncs).
func createIdleSyncs(b *testing.B, h *harness, endpoint string, n int) {
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				s := h.syncOf(fmt.Sprintf("idle-%04d", i), "")
				s.Spec.Source.S3.Key, s.Spec.Source.S3.Prefix, s.Spec.Source.S3.Endpoint = idleKey(i), "", endpoint
				s.Spec.Interval = &metav1.Duration{Duration: idleInterval}
				s.Spec.UserPackageID = fmt.Sprintf("0100010001%010d", i)
				if err := kube.Client.Create(h.ctx, s); err != nil {
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

// waitAllSynced lists the syncs until each has synced its first revision.
func waitAllSynced(b *testing.B, h *harness, n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		var list upv1.UserPackageSyncList
		must(b, kube.Client.List(h.ctx, &list, client.InNamespace(h.ns)))
		synced := 0
		for _, s := range list.Items {
			if s.Status.LastSyncedRevision != nil && len(s.Status.History) > 0 && s.Status.History[0].Result == upv1.SyncResultSynced {
				synced++
			}
		}
		if synced == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d syncs synced their first revision after %s", synced, n, timeout)
		}
		time.Sleep(2 * time.Second) // a list of a thousand syncs costs the API server: not too often
	}
}

// waitNoWrites waits until the manager has written nothing for quiet: the
// first round's last status writes and events are in.
func waitNoWrites(b *testing.B, metricsAddr string, quiet, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	last, since := -1, time.Now()
	for time.Since(since) < quiet {
		if time.Now().After(deadline) {
			b.Fatalf("the manager still writes %s after the first round", timeout)
		}
		if writes, _ := managerWrites(b, metricsAddr); writes != last {
			last, since = writes, time.Now()
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// watchWrites waits until end, and logs when the manager writes and what:
// a write of an idle sync should not happen, and when it does, its time
// and kind say which one.
func watchWrites(b *testing.B, metricsAddr string, end time.Time) {
	start, last := time.Now(), requestsByMethodAndCode(b, metricsAddr)
	for time.Now().Before(end) {
		time.Sleep(min(5*time.Second, time.Until(end)))
		now := requestsByMethodAndCode(b, metricsAddr)
		for k, v := range now {
			if d := v - last[k]; d != 0 && !strings.HasPrefix(k, "GET") {
				b.Logf("%s into the window the manager sent %d more %s", time.Since(start).Round(time.Second), d, k)
			}
		}
		last = now
	}
}

// requestsByMethodAndCode is the manager's rest_client_requests_total by
// "METHOD CODE".
func requestsByMethodAndCode(b *testing.B, metricsAddr string) map[string]int {
	out := map[string]int{}
	for _, m := range scrape(b, "http://"+metricsAddr+"/metrics")["rest_client_requests_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		out[labels["method"]+" "+labels["code"]] += int(m.GetCounter().GetValue())
	}
	return out
}

// managerWrites is the manager's requests to the API server that write
// (events included), and those that read, from its client metrics.
func managerWrites(b *testing.B, metricsAddr string) (writes, reads int) {
	byMethod := clientRequests(b, metricsAddr)
	return byMethod["POST"] + byMethod["PUT"] + byMethod["PATCH"] + byMethod["DELETE"], byMethod["GET"]
}

// lastAPIServerWrites is the last count of apiServerWrites by verb,
// resource, subresource and code.
var lastAPIServerWrites map[string]int

// apiServerWrites is the API server's own count of the writes it served
// to crowdpack's kinds and to events, whoever sent them.
func apiServerWrites(b *testing.B) int {
	c, err := rest.RESTClientFor(restConfigForRaw(kube.Config))
	must(b, err)
	data, err := c.Get().AbsPath("/metrics").DoRaw(b.Context())
	must(b, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(data))
	must(b, err)
	writes := 0
	byKind := map[string]int{}
	defer func() { lastAPIServerWrites = byKind }()
	for _, m := range fams["apiserver_request_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		ours := labels["group"] == upv1.GroupVersion.Group || labels["resource"] == "events"
		if ours && slices.Contains([]string{"POST", "PUT", "PATCH", "DELETE", "APPLY"}, labels["verb"]) {
			writes += int(m.GetCounter().GetValue())
			byKind[strings.Join([]string{labels["verb"], labels["resource"], labels["subresource"], labels["code"]}, " ")] += int(m.GetCounter().GetValue())
		}
	}
	return writes
}

// idleReport is what the requests to MinIO over the window say.
type idleReport struct {
	perSyncPerInterval       float64
	attributed, unattributed int
	busiestSecond            int
	minGap, maxGap           time.Duration
}

// judgeIdleChecks attributes each request to the sync whose key it names
// and fails the benchmark when a sync asked more than once an interval,
// when a sync was not checked every interval, or when the checks bunched.
func judgeIdleChecks(b *testing.B, bucket string, requests []countedRequest, n, intervals int) idleReport {
	bySync := map[string][]time.Time{}
	perSecond := map[int64]int{}
	var r idleReport
	for _, req := range requests {
		key, ok := strings.CutPrefix(req.path, "/"+bucket+"/")
		if !ok || !strings.HasPrefix(key, "idle/") {
			r.unattributed++
			b.Logf("a request not of one sync's key: %s %s?%s", req.method, req.path, req.query)
			continue
		}
		r.attributed++
		bySync[key] = append(bySync[key], req.at)
		perSecond[req.at.Unix()]++
	}
	r.perSyncPerInterval = float64(r.attributed+r.unattributed) / float64(n*intervals)
	// The boundary: a check of the slot just before the window that ran
	// late falls inside it, one per sync at most.
	if limit := 1 + 1/float64(intervals); r.perSyncPerInterval > limit {
		b.Errorf("%.3f requests to MinIO per sync per interval, want at most 1 (%.3f with the window's boundary)", r.perSyncPerInterval, limit)
	}
	r.minGap, r.maxGap = idleInterval, 0
	for i := range n {
		times := bySync[idleKey(i)]
		if len(times) < intervals-1 || len(times) > intervals+1 {
			b.Errorf("sync %d was checked %d times in %d intervals", i, len(times), intervals)
		}
		for j := 1; j < len(times); j++ {
			gap := times[j].Sub(times[j-1])
			r.minGap, r.maxGap = min(r.minGap, gap), max(r.maxGap, gap)
		}
	}
	// A check runs a little after its slot when the manager is busy; more
	// than a few seconds off, two checks came of one slot or one was missed.
	const slack = 5 * time.Second
	if r.minGap < idleInterval-slack || r.maxGap > idleInterval+slack {
		b.Errorf("checks of one sync came %s to %s apart, want one interval (%s) give or take %s", r.minGap, r.maxGap, idleInterval, slack)
	}
	for _, c := range perSecond {
		r.busiestSecond = max(r.busiestSecond, c)
	}
	// Slots spread evenly give about n/60 checks a second; a manager
	// slowed down by a busy machine runs some late, bunched with the
	// next second's (39 in a second at a load average of 21). All at
	// once would be n in one second.
	if limit := 3*n/int(idleInterval.Seconds()) + 5; r.busiestSecond > limit {
		b.Errorf("%d checks in the busiest second, want them spread over the interval (at most %d)", r.busiestSecond, limit)
	}
	b.Logf("%d requests to MinIO over %d intervals of %d syncs (%d not of a sync's key); checks of one sync %s to %s apart; busiest second %d checks (even: %d)",
		r.attributed+r.unattributed, intervals, n, r.unattributed, r.minGap.Round(time.Millisecond), r.maxGap.Round(time.Millisecond), r.busiestSecond, n/int(idleInterval.Seconds()))
	return r
}

// currentRSS reads the process's resident memory now.
func currentRSS(b *testing.B, pid int) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	must(b, err)
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			must(b, err)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS in /proc status")
	return 0
}
