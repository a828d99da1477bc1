package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/sandbox"
)

// requestedAt is the annotation that asks for a reconcile now (Flux's).
const requestedAt = "reconcile.fluxcd.io/requestedAt"

// driver injects the faults, on a schedule drawn from the seed, and counts
// what it did for the report.
type driver struct {
	w        *world
	wl       *workload
	rng      *rand.Rand
	duration time.Duration
	start    time.Time

	mu     sync.Mutex
	counts map[string]int
	// suspended are the uploads the driver suspended and has not resumed.
	suspended map[types.NamespacedName]bool
	etcdDone  bool
	wg        sync.WaitGroup
	// managing is held while managers are killed, started or replaced, so
	// that a kill never restarts a manager of the wrong kind beside them.
	managing sync.Mutex
	// restarting is held while kube-apiserver or etcd restarts, and
	// restartingMinIO while MinIO does: two restarts of one process at once
	// would race for its port.
	restarting, restartingMinIO sync.Mutex
}

// A fault the driver can inject, with its weight in the draw.
type fault struct {
	name   string
	weight int
	inject func(d *driver)
}

var faults = []fault{
	{"manager SIGKILLed", 4, (*driver).killManager},
	{"kube-apiserver restarted", 1, (*driver).restartAPIServer},
	{"MinIO restarted", 2, (*driver).restartMinIO},
	{"WeChat Pay faults", 5, (*driver).weChatPayFaults},
	{"GitOps edit", 4, (*driver).gitOpsEdit},
}

func newDriver(w *world, wl *workload, seed uint64, duration time.Duration) *driver {
	return &driver{w: w, wl: wl, rng: rand.New(rand.NewPCG(seed, seed+3)), duration: duration,
		counts: map[string]int{}, suspended: map[types.NamespacedName]bool{}}
}

func (d *driver) count(what string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.counts[what]++
}

// draw returns a random duration in [lo, hi].
func (d *driver) draw(lo, hi time.Duration) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return lo + time.Duration(d.rng.Int64N(int64(hi-lo)+1))
}

func (d *driver) intn(n int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.IntN(n)
}

// run injects faults until ctx ends: one every 1 to 7 s, each in a
// goroutine of its own, so that they overlap. Leader election is on for
// the second half of the run, and etcd is restarted once in its middle.
func (d *driver) run(ctx context.Context) {
	d.start = time.Now()
	d.w.sources.setResets(true) // until calm
	d.w.startManager(false)
	elected := false
	for {
		select {
		case <-ctx.Done():
			d.wg.Wait()
			return
		case <-time.After(d.draw(time.Second, 7*time.Second)):
		}
		elapsed := time.Since(d.start)
		if !elected && elapsed > d.duration/2 {
			elected = true
			d.switchToTwoReplicas()
			continue
		}
		if !d.etcdDone && elapsed > d.duration*2/5 {
			d.etcdDone = true
			d.spawn(ctx, "etcd restarted", (*driver).restartEtcd)
			continue
		}
		f := d.pick()
		d.spawn(ctx, f.name, f.inject)
	}
}

func (d *driver) spawn(ctx context.Context, name string, inject func(*driver)) {
	d.count(name)
	d.wg.Go(func() {
		if ctx.Err() == nil {
			inject(d)
		}
	})
}

func (d *driver) pick() fault {
	total := 0
	for _, f := range faults {
		total += f.weight
	}
	roll := d.intn(total)
	for _, f := range faults {
		if roll < f.weight {
			return f
		}
		roll -= f.weight
	}
	return faults[0]
}

// switchToTwoReplicas replaces the single manager by two that elect a
// leader, as a Deployment with replicas: 2 and --leader-elect does.
func (d *driver) switchToTwoReplicas() {
	d.count("switched to 2 replicas with leader election")
	d.managing.Lock()
	defer d.managing.Unlock()
	d.w.switchMode(true, 2)
}

// killManager SIGKILLs the manager at work (the leader, with two
// replicas) and starts a new one after 0 to 3 s, as a Deployment does.
func (d *driver) killManager() {
	d.managing.Lock()
	defer d.managing.Unlock()
	m := d.w.leader()
	if m == nil {
		return // no leader yet: the Lease is changing hands
	}
	d.w.kill(m)
	time.Sleep(d.draw(0, 3*time.Second))
	d.w.startManager(m.elected)
}

func (d *driver) restartAPIServer() {
	d.restarting.Lock()
	defer d.restarting.Unlock()
	if _, err := d.w.kube.RestartAPIServer(d.draw(time.Second, 3*time.Second)); err != nil {
		d.w.t.Errorf("restart kube-apiserver: %v", err)
	}
}

func (d *driver) restartEtcd() {
	d.restarting.Lock()
	defer d.restarting.Unlock()
	if err := d.w.kube.RestartEtcd(d.draw(time.Second, 3*time.Second)); err != nil {
		d.w.t.Errorf("restart etcd: %v", err)
	}
}

func (d *driver) restartMinIO() {
	d.restartingMinIO.Lock()
	defer d.restartingMinIO.Unlock()
	if err := d.w.storage.Restart(d.draw(500*time.Millisecond, 2*time.Second)); err != nil {
		d.w.t.Errorf("restart MinIO: %v", err)
	}
}

// weChatPayProfiles are the faults turned on for a while at one endpoint.
var weChatPayProfiles = []sandbox.Faults{
	{SystemErrorPercent: 20, UnavailablePercent: 10},
	{RateLimitPercent: 30, RetryAfterSeconds: 1},
	{LostResponsePercent: 25},
	{LatencyMillis: int(wechatpayTimeout/time.Millisecond) + 1000}, // past the client's timeout
}

var endpoints = []sandbox.Endpoint{sandbox.EndpointInitiate, sandbox.EndpointUploadPart, sandbox.EndpointMerge, sandbox.EndpointExpand}

// weChatPayFaults turns a fault profile on at one endpoint for 3 to 12 s.
func (d *driver) weChatPayFaults() {
	e, profile := endpoints[d.intn(len(endpoints))], weChatPayProfiles[d.intn(len(weChatPayProfiles))]
	if profile.LatencyMillis > 0 && e == sandbox.EndpointUploadPart {
		profile = sandbox.Faults{LatencyMillis: 500} // slow parts, not parts that never end
	}
	d.setFaults(e, profile)
	time.Sleep(d.draw(3*time.Second, 12*time.Second))
	d.setFaults(e, sandbox.Faults{})
}

func (d *driver) setFaults(e sandbox.Endpoint, f sandbox.Faults) {
	if err := d.w.sandbox.SetFaults(e, f); err != nil {
		d.w.t.Errorf("sandbox faults: %v", err)
	}
}

// gitOpsEdit makes an edit a person or Argo CD / Flux makes: suspend and
// later resume an upload, request a reconcile of an upload or a sync, or
// change a label and an annotation.
func (d *driver) gitOpsEdit() {
	key, ok := d.randomUpload()
	if !ok {
		return
	}
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	switch d.intn(4) {
	case 0:
		d.setSuspend(key, true)
		time.Sleep(d.draw(2*time.Second, 10*time.Second))
		d.setSuspend(key, false)
	case 1:
		d.edit(key, func(u *upv1.UserPackageUpload) { annotate(u, requestedAt, now) })
	case 2:
		d.edit(key, func(u *upv1.UserPackageUpload) { u.Labels["soak/edited"] = now; annotate(u, "soak/note", now) })
	case 3:
		if s := d.randomSync(); s != nil {
			d.requestSync(s)
		}
	}
}

func annotate(u *upv1.UserPackageUpload, key, value string) {
	if u.Annotations == nil {
		u.Annotations = map[string]string{}
	}
	u.Annotations[key] = value
}

func (d *driver) setSuspend(key types.NamespacedName, suspend bool) {
	d.mu.Lock()
	d.suspended[key] = suspend
	d.mu.Unlock()
	d.edit(key, func(u *upv1.UserPackageUpload) { u.Spec.Suspend = suspend })
}

// resumeAll resumes every upload the driver left suspended.
func (d *driver) resumeAll() {
	d.mu.Lock()
	var keys []types.NamespacedName
	for key, suspended := range d.suspended {
		if suspended {
			keys = append(keys, key)
		}
	}
	d.mu.Unlock()
	for _, key := range keys {
		d.setSuspend(key, false)
	}
}

// edit changes an upload through conflicts and API server restarts.
func (d *driver) edit(key types.NamespacedName, change func(*upv1.UserPackageUpload)) {
	err := retry(apiServerPatience, func() error {
		u := &upv1.UserPackageUpload{}
		if err := d.w.kube.Client.Get(d.w.ctx, key, u); err != nil {
			return err
		}
		change(u)
		return d.w.kube.Client.Update(d.w.ctx, u)
	})
	if err != nil {
		d.w.t.Errorf("edit %s: %v", key, err)
	}
}

// requestSync asks a sync to check its source now.
func (d *driver) requestSync(s *syncState) {
	key := types.NamespacedName{Namespace: s.ns, Name: s.name}
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	err := retry(apiServerPatience, func() error {
		sync := &upv1.UserPackageSync{}
		if err := d.w.kube.Client.Get(d.w.ctx, key, sync); err != nil {
			return err
		}
		patch := client.MergeFrom(sync.DeepCopy())
		if sync.Annotations == nil {
			sync.Annotations = map[string]string{}
		}
		sync.Annotations[requestedAt] = now
		return d.w.kube.Client.Patch(d.w.ctx, sync, patch)
	})
	if err != nil {
		d.w.t.Errorf("request a check of sync %s: %v", key, err)
	}
}

// randomUpload picks one of the uploads created so far.
func (d *driver) randomUpload() (types.NamespacedName, bool) {
	d.wl.mu.Lock()
	defer d.wl.mu.Unlock()
	if len(d.wl.uploads) == 0 {
		return types.NamespacedName{}, false
	}
	n := d.intn(len(d.wl.uploads))
	for key := range d.wl.uploads {
		if n == 0 {
			ns, name, _ := cutKey(key)
			return types.NamespacedName{Namespace: ns, Name: name}, true
		}
		n--
	}
	return types.NamespacedName{}, false
}

func (d *driver) randomSync() *syncState {
	d.wl.mu.Lock()
	defer d.wl.mu.Unlock()
	if len(d.wl.syncs) == 0 {
		return nil
	}
	return d.wl.syncs[d.intn(len(d.wl.syncs))]
}

// calm ends every fault still on: WeChat Pay and the sources behave, the
// suspended uploads are resumed, and a manager runs.
func (d *driver) calm() {
	for _, e := range endpoints {
		d.setFaults(e, sandbox.Faults{})
	}
	d.w.sources.setResets(false)
	d.resumeAll()
	d.managing.Lock()
	defer d.managing.Unlock()
	if len(d.w.running()) == 0 {
		d.w.startManager(d.w.isElected())
	}
}

// apiServerPatience is how long the soak's own requests are tried again:
// a restarted kube-apiserver can take minutes to be ready on a loaded
// machine, and the soak judges the operator, not its own client.
const apiServerPatience = 5 * time.Minute

// retry calls f until it succeeds or timeout passes: the API server may be
// restarting.
func retry(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func cutKey(key string) (ns, name string, ok bool) {
	for i := range key {
		if key[i] == '/' {
			return key[:i], key[i+1:], true
		}
	}
	return "", key, false
}

func (d *driver) report() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := ""
	for _, f := range append(faults, fault{name: "etcd restarted"}, fault{name: "switched to 2 replicas with leader election"}) {
		out += fmt.Sprintf("| %s | %d |\n", f.name, d.counts[f.name])
	}
	return out
}
