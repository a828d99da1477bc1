package uploads

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// The restart phase of the load test: with every upload finished, the
// manager is stopped and started again, as an upgrade does, and what the
// new one did is counted from outside it.

// restartResult is what the restart phase measured.
type restartResult struct {
	stop         time.Duration // SIGTERM to exit
	toFirst      time.Duration // start to the first reconcile: the cache's sync
	toAll        time.Duration // first reconcile to n reconciles
	reconciles   int           // all the new manager finished, once idle
	writtenObjs  int           // objects whose resource version changed
	events       int
	weChatPay    int
	storage      int64
	peakRSS      int64
	requestsByMe map[string]int // the new manager's requests to the API server by method
}

// restartManager stops the manager gracefully, starts a new one and waits
// until it has reconciled every object and gone idle; it returns the new
// manager with what the restart cost.
func restartManager(b *testing.B, h *harness, old *exec.Cmd, proxy *countingProxy, n int, pinning loadPinning, args ...string) (*exec.Cmd, restartResult) {
	time.Sleep(time.Second) // the last events are sent asynchronously
	before := h.snapshot()
	before.storageRequests = proxy.requests.Load()
	var res restartResult
	start := time.Now()
	must(b, old.Process.Signal(syscall.SIGTERM))
	_ = old.Wait()
	res.stop = time.Since(start)

	metricsAddr := freeAddr(b)
	start = time.Now()
	manager := startManagerBinary(b, h, append([]string{"--metrics-bind-address", metricsAddr}, args...)...)
	pinning.restOn(b, manager.Process.Pid)
	url := "http://" + metricsAddr + "/metrics"
	first := waitSum(b, url, "controller_runtime_reconcile_total", 1, 5*time.Minute)
	res.toFirst = first.Sub(start)
	res.toAll = waitSum(b, url, "controller_runtime_reconcile_total", float64(n), 5*time.Minute).Sub(first)
	res.reconciles = waitQuiet(b, url, 3*time.Second, 5*time.Minute)
	time.Sleep(time.Second) // an event would be sent asynchronously

	after := h.snapshot()
	res.writtenObjs = len(before.changedObjects(after))
	res.events = after.events - before.events
	res.weChatPay = after.weChatPayCalls - before.weChatPayCalls
	res.storage = proxy.requests.Load() - before.storageRequests
	res.peakRSS = peakRSS(b, manager.Process.Pid)
	res.requestsByMe = clientRequests(b, metricsAddr)
	return manager, res
}

// report records the restart's figures on the benchmark.
func (r restartResult) report(b *testing.B) {
	b.ReportMetric(r.toAll.Seconds(), "restart-s-sync-to-all-reconciled")
	b.ReportMetric(float64(r.writtenObjs), "restart-objects-written")
	b.ReportMetric(float64(r.events), "restart-events")
	b.ReportMetric(float64(r.weChatPay), "restart-wechatpay-calls")
	b.ReportMetric(float64(r.storage), "restart-storage-requests")
	b.ReportMetric(float64(r.peakRSS)/(1<<20), "restart-MiB-peak-rss")
	b.Logf("restart: stopped in %s; first reconcile %s after the start (the cache's sync), all %s later; %d reconciles; requests to the API server by method: %v",
		r.stop.Round(time.Millisecond), r.toFirst.Round(time.Millisecond), r.toAll.Round(time.Millisecond), r.reconciles, r.requestsByMe)
	if r.writtenObjs != 0 || r.events != 0 || r.weChatPay != 0 || r.storage != 0 {
		b.Errorf("a restart with every upload finished wrote %d objects, raised %d events, made %d WeChat Pay calls and %d storage requests; want none",
			r.writtenObjs, r.events, r.weChatPay, r.storage)
	}
	if r.toAll > 30*time.Second {
		b.Errorf("every object reconciled %s after the cache's sync, want within 30 s", r.toAll)
	}
}

// waitSum scrapes until the samples of the metric family name add up to at
// least want, and returns when.
func waitSum(b *testing.B, url, name string, want float64, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for {
		if got := sumOf(scrape(b, url), name); got >= want {
			return time.Now()
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s below %v after %s", name, want, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitQuiet waits until the manager's reconciles stop for quiet, and
// returns how many it finished.
func waitQuiet(b *testing.B, url string, quiet, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	last, since := -1.0, time.Now()
	for {
		fams := scrape(b, url)
		got := sumOf(fams, "controller_runtime_reconcile_total")
		if got != last || sumOf(fams, "controller_runtime_active_workers") > 0 {
			last, since = got, time.Now()
		}
		if time.Since(since) >= quiet {
			return int(got)
		}
		if time.Now().After(deadline) {
			b.Fatalf("the manager still reconciles after %s", timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// uploadController selects the UserPackageUpload controller's samples.
var uploadController = map[string]string{"controller": "userpackageupload"}

// sumOf adds up the samples of a counter or gauge family of the
// UserPackageUpload controller (one per result, for reconciles).
func sumOf(f families, name string) float64 {
	var sum float64
	for _, m := range f[name].GetMetric() {
		if hasLabels(m, uploadController) {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}
