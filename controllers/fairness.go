package controllers

import (
	"container/list"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
	"k8s.io/apimachinery/pkg/types"

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
		s.wake(ns, reads.waiting.Front().Value.(*waiter).name)
	case reads.inFlight <= 0 && reads.waiting.Len() == 0:
		delete(s.namespaces, ns)
	}
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

// waitMarks remembers the objects whose word that they wait for a read
// slot carried initiate's pending mark, by the resource version that word
// wrote. When an object's turn comes and it is still at that version,
// nobody wrote it since and the call the mark announced was not made: the
// mark stands for the call, and the turn costs no write. A restarted
// manager remembers none, and counts such a mark as an unknown outcome,
// as it does a mark written before a read it did not finish.
type waitMarks struct {
	mu       sync.Mutex
	versions map[types.NamespacedName]string
}

func (m *waitMarks) remember(key types.NamespacedName, resourceVersion string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.versions == nil {
		m.versions = map[types.NamespacedName]string{}
	}
	m.versions[key] = resourceVersion
}

// take reports whether key's mark was written at resourceVersion, and
// then forgets it: a mark stands for one call. Another version leaves it:
// it may be an older one, seen through a cache that lags behind.
func (m *waitMarks) take(key types.NamespacedName, resourceVersion string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.versions[key]; !ok || v != resourceVersion {
		return false
	}
	delete(m.versions, key)
	return true
}

func (m *waitMarks) forget(key types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.versions, key)
}

// waitingForSlot reports how long to wait when err is a slotWait.
func waitingForSlot(err error) (time.Duration, bool) {
	var wait *slotWait
	if errors.As(err, &wait) {
		return wait.after, true
	}
	return 0, false
}
