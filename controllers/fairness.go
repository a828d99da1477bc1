package controllers

import (
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
	// does not overtake one that never got to read.
	waiting []waiter
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
		reads = &namespaceReads{memory: semaphore.NewWeighted(s.memoryShare)}
		s.namespaces[ns] = reads
	}
	reads.forgetStale(now)
	free := s.perNamespace - reads.inFlight
	turn := reads.turn(name)
	if free <= 0 || turn >= free || (turn < 0 && len(reads.waiting) >= free) {
		reads.wait(name, now)
		return nil, nil, false
	}
	if turn >= 0 {
		reads.waiting = append(reads.waiting[:turn], reads.waiting[turn+1:]...)
	}
	reads.inFlight++
	var once sync.Once
	return reads.memory, func() { once.Do(func() { s.release(ns) }) }, true
}

// turn is name's place among the waiting objects, or -1.
func (r *namespaceReads) turn(name string) int {
	for i, w := range r.waiting {
		if w.name == name {
			return i
		}
	}
	return -1
}

func (r *namespaceReads) wait(name string, now time.Time) {
	if i := r.turn(name); i >= 0 {
		r.waiting[i].seen = now
		return
	}
	r.waiting = append(r.waiting, waiter{name: name, seen: now})
}

func (r *namespaceReads) forgetStale(now time.Time) {
	kept := r.waiting[:0]
	for _, w := range r.waiting {
		if now.Sub(w.seen) < waiterTimeout {
			kept = append(kept, w)
		}
	}
	r.waiting = kept
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
	case len(reads.waiting) > 0 && s.wake != nil:
		s.wake(ns, reads.waiting[0].name)
	case reads.inFlight <= 0 && len(reads.waiting) == 0:
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

// take forgets key's mark, and reports whether it was written at
// resourceVersion. A mark stands for one call: it is taken once.
func (m *waitMarks) take(key types.NamespacedName, resourceVersion string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.versions[key]
	delete(m.versions, key)
	return ok && v == resourceVersion
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
