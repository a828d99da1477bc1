package controllers

import (
	"container/list"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/metrics"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// readSlotDelay is how long an object whose namespace has its share of
// reads in flight waits before it asks again (plus up to half as much
// jitter, so that a namespace's waiting objects do not ask together). It
// is a fallback: a freed slot wakes the next waiter at once (wake).
const readSlotDelay = 5 * time.Second

// namespaceSlots keeps one namespace (a tenant) from holding every worker
// and all the part memory with reads: each namespace may have at most
// perNamespace reads (digests, part uploads) in flight, and its parts may
// hold at most memoryShare bytes of the part memory budget. An object that
// finds its namespace's slots taken requeues instead of blocking a worker,
// so other namespaces always find workers free.
type namespaceSlots struct {
	perNamespace int
	memoryShare  int64
	// wake, when set, is told which waiting object a freed slot is for,
	// so that it is reconciled now rather than at its next retry.
	wake func(namespace, name string)

	mu         sync.Mutex
	namespaces map[string]*namespaceReads
}

type namespaceReads struct {
	inFlight int
	memory   *semaphore.Weighted
	// waiting lists the objects that found no slot, oldest first: a freed
	// slot goes to them in turn, so an object retried after a failed read
	// does not overtake one that never got to read. waiters finds an
	// object's place in it: thousands may wait, and each asks again.
	waiting list.List // of *waiter
	waiters map[string]*list.Element
}

type waiter struct {
	name string
	seen time.Time
}

// waiterTimeout forgets a waiting object that stopped asking (deleted,
// suspended, reconciled by another replica).
const waiterTimeout = 10 * readSlotDelay

// fairShare is the number of workers one namespace may hold with reads:
// half of them, so the other half always serves other namespaces.
func fairShare(maxConcurrentReconciles int) int { return max(1, maxConcurrentReconciles/2) }

// fairShareOfMemory is the part memory one namespace may hold: half the
// budget, but at least the largest part.
func fairShareOfMemory(budget int64) int64 { return max(budget/2, wechatpay.MaxPartSize) }

func newNamespaceSlots(perNamespace int, memoryShare int64) *namespaceSlots {
	return &namespaceSlots{perNamespace: perNamespace, memoryShare: memoryShare, namespaces: map[string]*namespaceReads{}}
}

// tryAcquire takes one of ns's read slots for object name; ok is false
// when they are all taken or promised to objects that waited longer.
// memory is ns's share of the part memory, valid until release.
func (s *namespaceSlots) tryAcquire(ns, name string, now time.Time) (memory *semaphore.Weighted, release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reads := s.namespaces[ns]
	if reads == nil {
		reads = &namespaceReads{memory: semaphore.NewWeighted(s.memoryShare), waiters: map[string]*list.Element{}}
		s.namespaces[ns] = reads
	}
	if !reads.mayRead(name, s.perNamespace-reads.inFlight, now) {
		reads.wait(name, now)
		return nil, nil, false
	}
	if e := reads.waiters[name]; e != nil {
		reads.waiting.Remove(e)
		delete(reads.waiters, name)
	}
	reads.inFlight++
	var once sync.Once
	return reads.memory, func() { once.Do(func() { s.release(ns) }) }, true
}

// mayRead reports whether name may take one of the free slots: it is
// among the first free waiters, or it is not waiting and fewer than free
// objects are. Waiters met that stopped asking are forgotten.
func (r *namespaceReads) mayRead(name string, free int, now time.Time) bool {
	if free <= 0 {
		return false
	}
	ahead := 0
	for e := r.waiting.Front(); e != nil && ahead < free; {
		w, next := e.Value.(*waiter), e.Next()
		switch {
		case now.Sub(w.seen) >= waiterTimeout:
			r.waiting.Remove(e)
			delete(r.waiters, w.name)
		case w.name == name:
			return true
		default:
			ahead++
		}
		e = next
	}
	_, waits := r.waiters[name]
	return !waits && r.waiting.Len() < free
}

func (r *namespaceReads) wait(name string, now time.Time) {
	if e := r.waiters[name]; e != nil {
		e.Value.(*waiter).seen = now
		return
	}
	r.waiters[name] = r.waiting.PushBack(&waiter{name: name, seen: now})
}

// forget takes a deleted object out of its namespace's line, so that a
// freed slot does not wait for it.
func (s *namespaceSlots) forget(ns, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reads := s.namespaces[ns]
	if reads == nil {
		return
	}
	if e := reads.waiters[name]; e != nil {
		reads.waiting.Remove(e)
		delete(reads.waiters, name)
	}
	if reads.inFlight <= 0 && reads.waiting.Len() == 0 {
		delete(s.namespaces, ns)
	}
}

func (s *namespaceSlots) release(ns string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reads := s.namespaces[ns]
	if reads == nil {
		return
	}
	reads.inFlight--
	switch {
	case reads.waiting.Len() > 0 && s.wake != nil:
		// The waiters ahead of this slot's were woken by the slots freed
		// before it, and may not have taken theirs yet.
		if next := reads.nth(s.perNamespace - reads.inFlight - 1); next != nil {
			s.wake(ns, next.name)
		}
	case reads.inFlight <= 0 && reads.waiting.Len() == 0:
		delete(s.namespaces, ns)
	}
}

// nth is the waiter at place i in line (0 is the first), or nil.
func (r *namespaceReads) nth(i int) *waiter {
	e := r.waiting.Front()
	for ; e != nil && i > 0; i-- {
		e = e.Next()
	}
	if e == nil {
		return nil
	}
	return e.Value.(*waiter)
}

// slotWait ends a reconcile whose namespace has its share of reads in
// flight: the object is requeued after a short delay, its conditions left
// as they were (a retry's reason stays visible; no event is raised).
type slotWait struct{ after time.Duration }

func (e *slotWait) Error() string {
	return "waiting for a read slot: the namespace already has its share of the manager's workers reading"
}

// readSlot takes a read slot of the object's namespace for the rest of
// the reconcile (the digest and the parts share it, so that an object
// does not queue twice), or says to wait when the namespace already has
// its share. Reconcile gives it back when it ends (releaseSlot).
func (s *scope) readSlot() (memory *semaphore.Weighted, err error) {
	if s.slotRelease != nil {
		return s.slotMemory, nil
	}
	memory, release, ok := s.slots.tryAcquire(s.obj.Namespace, s.obj.Name, time.Now())
	if !ok {
		metrics.ObserveReadSlotWait(s.obj.Namespace)
		return nil, &slotWait{after: readSlotDelay + rand.N(readSlotDelay/2)}
	}
	s.slotMemory, s.slotRelease = memory, release
	return memory, nil
}

// releaseSlot gives back the read slot the reconcile held, if any.
func (s *scope) releaseSlot() {
	if s.slotRelease != nil {
		s.slotRelease()
	}
}

// waitMarks remembers the initiate marks that this manager wrote with an
// object's word that it waits for a read slot. When the object's turn comes
// and its status still holds that mark, no call followed it (only this
// manager calls, and the turn takes the mark once): the mark stands for the
// call, and the turn costs no write. Edits of the spec, labels or
// annotations leave the mark this manager's. A restarted manager remembers
// none, and counts such a mark as an unknown outcome, as it does a mark
// written before a read it did not finish.
type waitMarks struct {
	mu    sync.Mutex
	marks map[types.NamespacedName]waitMark
}

// waitMark is an initiate mark: the object it was written on, and when.
type waitMark struct {
	uid   types.UID
	since metav1.Time
}

// markOf is the initiate mark u's status holds for a first upload not
// initiated yet, if any.
func markOf(u *upv1.UserPackageUpload) (waitMark, bool) {
	if len(u.Status.Uploads) == 0 || u.Status.Uploads[0].ID != "" || u.Status.Uploads[0].InitiatingSince == nil {
		return waitMark{}, false
	}
	return waitMark{uid: u.UID, since: *u.Status.Uploads[0].InitiatingSince}, true
}

// remember notes that the mark u holds, as written, is this manager's and
// announced no call yet.
func (m *waitMarks) remember(u *upv1.UserPackageUpload) {
	mark, ok := markOf(u)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.marks == nil {
		m.marks = map[types.NamespacedName]waitMark{}
	}
	m.marks[client.ObjectKeyFromObject(u)] = mark
}

// take reports whether u holds the mark remembered for it, and then
// forgets it: a mark stands for one call. Another mark, or none, leaves
// it: u may be an older version, seen through a cache that lags behind.
func (m *waitMarks) take(u *upv1.UserPackageUpload) bool {
	mark, ok := markOf(u)
	key := client.ObjectKeyFromObject(u)
	m.mu.Lock()
	defer m.mu.Unlock()
	if mine, found := m.marks[key]; !ok || !found || mine.uid != mark.uid || !mine.since.Equal(&mark.since) {
		return false
	}
	delete(m.marks, key)
	return true
}

func (m *waitMarks) forget(key types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.marks, key)
}

// waitingForSlot reports how long to wait when err is a slotWait.
func waitingForSlot(err error) (time.Duration, bool) {
	var wait *slotWait
	if errors.As(err, &wait) {
		return wait.after, true
	}
	return 0, false
}
