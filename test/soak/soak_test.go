// Package soak runs crowdpack under randomized, combined faults and then
// checks its guarantees over the whole history: a workload of uploads and
// syncs, while the manager is SIGKILLed (also as the leader of two
// replicas), kube-apiserver, etcd and MinIO restart, WeChat Pay fails,
// limits, loses and delays answers, sources drip and reset, and GitOps
// edits land. See docs/soak.md.
package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

const (
	// syncLabel marks a sync's children (controllers/syncs).
	syncLabel = "wechatpay.crowdpack.io/sync"
	// rssBound is the most resident memory a manager may reach in the soak.
	rssBound = 256 << 20
	// goroutineSlack is how many more goroutines a manager may have at the
	// end than once it had started: connections kept alive, not leaks.
	goroutineSlack = 50
)

// config is one soak's settings, from the environment (make soak sets them).
type config struct {
	duration, settle time.Duration
	seed             uint64
	uploads, syncs   int
}

// soakConfig reads CROWDPACK_SOAK_DURATION (default 2m, the short soak
// make test runs), CROWDPACK_SOAK_SEED (default 1), CROWDPACK_SOAK_SETTLE
// (default 5m), CROWDPACK_SOAK_UPLOADS (300) and CROWDPACK_SOAK_SYNCS (20).
func soakConfig(t *testing.T) config {
	c := config{duration: 2 * time.Minute, settle: 5 * time.Minute, seed: 1, uploads: 300, syncs: 20}
	var err error
	if v := os.Getenv("CROWDPACK_SOAK_DURATION"); v != "" {
		c.duration, err = time.ParseDuration(v)
		must(t, err)
	}
	if v := os.Getenv("CROWDPACK_SOAK_SETTLE"); v != "" {
		c.settle, err = time.ParseDuration(v)
		must(t, err)
	}
	if v := os.Getenv("CROWDPACK_SOAK_SEED"); v != "" {
		c.seed, err = strconv.ParseUint(v, 10, 64)
		must(t, err)
	}
	for name, n := range map[string]*int{"CROWDPACK_SOAK_UPLOADS": &c.uploads, "CROWDPACK_SOAK_SYNCS": &c.syncs} {
		if v := os.Getenv(name); v != "" {
			*n, err = strconv.Atoi(v)
			must(t, err)
		}
	}
	return c
}

// TestSoak is the soak: `make soak` runs it for 10 minutes with a new seed,
// `make test` for 2 minutes with seed 1. A failure names the broken
// invariants; the seed it logs replays the same schedule of faults.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak needs the API server, MinIO and the sandbox: run without -short")
	}
	cfg := soakConfig(t)
	t.Logf("soak: %s, %d uploads, %d syncs, CROWDPACK_SOAK_SEED=%d", cfg.duration, cfg.uploads, cfg.syncs, cfg.seed)
	w := newWorld(t, cfg.seed)
	for _, ns := range tenants {
		w.makeTenant(ns)
	}
	wl := newWorkload(w, cfg.seed)
	d := newDriver(w, wl, cfg.seed, cfg.duration)

	rssCtx, stopRSS := context.WithCancel(context.Background())
	defer stopRSS()
	go w.sampleRSS(rssCtx)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.duration)
	defer cancel()
	var run sync.WaitGroup
	run.Go(func() { d.run(ctx) })
	run.Go(func() { createWorkload(t, ctx, wl, d, cfg) })
	run.Wait()

	d.calm()
	settled := settle(t, w, wl, d, cfg.settle)
	stopRSS()
	v := judge(t, w, wl)
	w.dumpGoroutines()
	t.Logf("faults injected:\n| fault | times |\n|---|---|\n%s", d.report())
	t.Logf("settled in %s; %d connections reset by the resetting source; %d managers exited by themselves (leader election lost) and were replaced; peak manager RSS %d MiB",
		settled.Round(time.Second), w.sources.resetCount.Load(), w.exitedByThemselves, w.peakRSS>>20)
	t.Logf("invariants (CROWDPACK_SOAK_SEED=%d):\n%s", cfg.seed, v.table())
	for _, f := range v.failures() {
		t.Error(f)
	}
}

// createWorkload creates the syncs at once and the uploads spread over
// the first 70 % of the run, and gives each sync new revisions at random
// times, asking it to check each time (as a CI job that writes the export
// would).
func createWorkload(t *testing.T, ctx context.Context, wl *workload, d *driver, cfg config) {
	for i := range cfg.syncs {
		create(t, fmt.Sprintf("sync %d", i), func() error { return wl.createSync(i) })
	}
	perSync := 2 + int(cfg.duration/(5*time.Minute))
	revisions := make(chan *syncState, cfg.syncs*perSync)
	for _, s := range wl.syncs {
		for range perSync {
			time.AfterFunc(d.draw(cfg.duration/10, cfg.duration*85/100), func() { revisions <- s })
		}
	}
	createUpload := func(i int) {
		create(t, fmt.Sprintf("upload %d", i), func() error { return wl.createUpload(i) })
	}
	uploads := time.NewTicker(cfg.duration * 7 / 10 / time.Duration(max(cfg.uploads, 1)))
	defer uploads.Stop()
	created := 0
	for {
		select {
		case s := <-revisions:
			if err := retry(apiServerPatience, func() error { return wl.newRevision(s) }); err != nil {
				t.Errorf("write a revision of sync %s: %v", s.name, err)
				continue
			}
			d.requestSync(s)
		case <-uploads.C:
			if created < cfg.uploads {
				createUpload(created)
				created++
			}
		case <-ctx.Done():
			for ; created < cfg.uploads; created++ {
				createUpload(created)
			}
			return
		}
	}
}

// create retries a create through API server restarts; an object that
// exists was created by an attempt whose answer was lost.
func create(t *testing.T, what string, f func() error) {
	err := retry(apiServerPatience, func() error {
		if err := f(); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	})
	if err != nil {
		t.Errorf("create %s: %v", what, err)
	}
}

// settle asks every sync for a last check and waits until every upload
// and sync is Ready (each sync at its newest revision), or timeout.
func settle(t *testing.T, w *world, wl *workload, d *driver, timeout time.Duration) time.Duration {
	start := time.Now()
	for _, s := range wl.syncs {
		d.requestSync(s)
	}
	for {
		pending := notSettled(w, wl)
		if len(pending) == 0 {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Logf("not settled after %s: %s", timeout, strings.Join(pending[:min(len(pending), 10)], "; "))
			return time.Since(start)
		}
		time.Sleep(2 * time.Second)
	}
}

// notSettled describes the objects not Ready yet.
func notSettled(w *world, wl *workload) []string {
	var pending []string
	for _, u := range listUploads(w) {
		if !uploadReady(&u) {
			pending = append(pending, u.Namespace+"/"+u.Name+": "+readyMessage(u.Status.Conditions))
		}
	}
	for _, s := range wl.syncs {
		sync := &upv1.UserPackageSync{}
		if err := w.kube.Client.Get(w.ctx, client.ObjectKey{Namespace: s.ns, Name: s.name}, sync); err != nil {
			pending = append(pending, s.name+": "+err.Error())
		} else if !syncReady(sync, s) {
			pending = append(pending, s.ns+"/"+s.name+": "+readyMessage(sync.Status.Conditions))
		}
	}
	return pending
}

func uploadReady(u *upv1.UserPackageUpload) bool {
	return isTrue(u.Status.Conditions, upv1.ConditionReady) && u.Status.ObservedGeneration == u.Generation
}

func syncReady(sync *upv1.UserPackageSync, s *syncState) bool {
	last := sync.Status.LastSyncedRevision
	return isTrue(sync.Status.Conditions, upv1.ConditionReady) && sync.Status.ObservedGeneration == sync.Generation &&
		last != nil && last.Key == s.newestKey()
}

func isTrue(conditions []metav1.Condition, typ string) bool {
	for _, c := range conditions {
		if c.Type == typ {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

func readyMessage(conditions []metav1.Condition) string {
	for _, c := range conditions {
		if c.Type == upv1.ConditionReady {
			return fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
		}
	}
	return "no Ready condition"
}

// listUploads lists the uploads of every tenant, the syncs' children included.
func listUploads(w *world) []upv1.UserPackageUpload {
	var all []upv1.UserPackageUpload
	for _, ns := range tenants {
		var list upv1.UserPackageUploadList
		must(w.t, retry(apiServerPatience, func() error { return w.kube.Client.List(w.ctx, &list, inNamespace(ns)) }))
		all = append(all, list.Items...)
	}
	return all
}

func inNamespace(ns string) client.InNamespace { return client.InNamespace(ns) }

func mustJSON(t *testing.T, v any) []byte {
	data, err := json.Marshal(v)
	must(t, err)
	return data
}

// judge checks every invariant over the run.
func judge(t *testing.T, w *world, wl *workload) *verdict {
	v := newVerdict()
	c := countCalls(w.sandbox)
	uploads := listUploads(w)
	known, sent := map[string]bool{}, map[string][]byte{}
	texts := eventTexts(w)
	for where, events := range texts {
		_ = os.WriteFile(filepath.Join(w.logDir, strings.ReplaceAll(where, " ", "-")+".json"), events, 0o644)
	}
	for i := range uploads {
		u := &uploads[i]
		v.of(invReady).check(uploadReady(u), "upload %s/%s: %s", u.Namespace, u.Name, readyMessage(u.Status.Conditions))
		want, err := wl.expected(u)
		if err != nil {
			v.of(invBytes).check(false, "%v", err)
			continue
		}
		checkUpload(v, w, c, u, want, known)
		if pkg := u.Spec.UserPackageID; pkg != "" {
			sent[pkg] = append(sent[pkg], want...)
		}
		texts["status of upload "+u.Namespace+"/"+u.Name] = mustJSON(t, u.Status)
	}
	for _, s := range wl.syncs {
		sync := &upv1.UserPackageSync{}
		must(t, w.kube.Client.Get(w.ctx, client.ObjectKey{Namespace: s.ns, Name: s.name}, sync))
		v.of(invReady).check(syncReady(sync, s), "sync %s/%s: %s", s.ns, s.name, readyMessage(sync.Status.Conditions))
		texts["status of sync "+s.ns+"/"+s.name] = mustJSON(t, sync.Status)
		if _, ok := sent[s.pkg]; !ok {
			sent[s.pkg] = nil
		}
	}
	checkOrphans(v, w, uploads, known)
	checkMembers(v, w, sent)
	checkLeaks(v, w, wl.raw, texts)
	v.of(invRSS).check(w.peakRSS <= rssBound, "a manager reached %d MiB, over the %d MiB bound", w.peakRSS>>20, rssBound>>20)
	checkGoroutines(t, v, w)
	return v
}

// expected is what an upload must have sent: the soak's own uploads'
// bytes, or a sync child's delta.
func (wl *workload) expected(u *upv1.UserPackageUpload) ([]byte, error) {
	if _, ok := u.Labels[syncLabel]; ok {
		return wl.childExpected(u)
	}
	wl.mu.Lock()
	defer wl.mu.Unlock()
	want, ok := wl.uploads[u.Namespace+"/"+u.Name]
	if !ok {
		return nil, fmt.Errorf("upload %s/%s was not created by the soak", u.Namespace, u.Name)
	}
	return want, nil
}

// checkGoroutines compares each manager still running with itself once it
// had started.
func checkGoroutines(t *testing.T, v *verdict, w *world) {
	for _, m := range w.running() {
		// A standby that took the Lease in the last seconds is compared
		// with itself as the leader, once that is measured.
		for deadline := time.Now().Add(30 * time.Second); m.leads() && !m.measuredAsLeader.Load() && time.Now().Before(deadline); {
			time.Sleep(time.Second)
		}
		start := m.goroutinesAtStart.Load()
		end, ok := metric(m.metricsAddr, "go_goroutines")
		if start == 0 || !ok {
			v.of(invGoroutines).check(false, "%s: goroutines not measured (at start %d, at the end %v)", m.name, start, ok)
			continue
		}
		t.Logf("%s (up %s): %d goroutines once started, %d at the end", m.name, time.Since(m.startedAt).Round(time.Second), start, int64(end))
		leaked := int64(end) > start+goroutineSlack
		v.of(invGoroutines).check(!leaked, "%s: %d goroutines at the end, %d once started", m.name, int64(end), start)
		if leaked {
			t.Logf("%s's goroutines are in %s", m.name, filepath.Join(w.logDir, m.name+"-goroutines.txt"))
		}
	}
}
