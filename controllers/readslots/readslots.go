// Package readslots keeps one namespace (a tenant) from holding every
// worker and all the part memory with reads: a namespace may have half the
// workers reading and half the part memory at once, and the objects that
// wait for a slot get it in the order they first asked.
package readslots

import (
	"container/list"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/crowdpack/crowdpack/internal/metrics"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// Delay is how long an object whose namespace has its share of reads in
// flight waits before it asks again when its turn is next (plus up to half
// as much jitter, so that a namespace's waiting objects do not ask
// together); further back in line it waits longer, up to maxDelayFactor
// times as long. Asking again is a fallback: a freed slot wakes the waiter
// whose turn it is at once (Wake), so a retry only keeps an object's place
// in line and catches a wake that came to nothing.
const Delay = 5 * time.Second

// maxDelayFactor bounds the wait of the objects far back in line: with
// its jitter, it stays shorter than waiterTimeout, after which a waiter is
// forgotten.
const maxDelayFactor = 4

// Slots keeps one namespace (a tenant) from holding every worker
// and all the part memory with reads: each namespace may have at most
// perNamespace reads (digests, part uploads) in flight, and its parts may
// hold at most memoryShare bytes of the part memory budget. An object that
// finds its namespace's slots taken requeues instead of blocking a worker,
// so other namespaces always find workers free.
type Slots struct {
	perNamespace int
	memoryShare  int64
	// wake, when set, is told which waiting object a freed slot is for,
	// so that it is reconciled now rather than at its next retry.
	Wake func(namespace, name string)

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
	// tickets numbers the waiters as they come: the difference of two is
	// at least how many are between them, without a walk down the line.
	tickets uint64
}

type waiter struct {
	name   string
	seen   time.Time
	ticket uint64
}

// waiterTimeout forgets a waiting object that stopped asking (deleted,
// suspended, reconciled by another replica).
const waiterTimeout = 10 * Delay

// FairShare is the number of workers one namespace may hold with reads:
// half of them, so the other half always serves other namespaces.
func FairShare(maxConcurrentReconciles int) int { return max(1, maxConcurrentReconciles/2) }

// FairShareOfMemory is the part memory one namespace may hold: half the
// budget, but at least the largest part.
func FairShareOfMemory(budget int64) int64 { return max(budget/2, wechatpay.MaxPartSize) }

// New makes the slots of every namespace: perNamespace reads each, and
// memoryShare bytes of the part memory.
func New(perNamespace int, memoryShare int64) *Slots {
	return &Slots{perNamespace: perNamespace, memoryShare: memoryShare, namespaces: map[string]*namespaceReads{}}
}

// tryAcquire takes one of ns's read slots for object name; ok is false
// when they are all taken or promised to objects that waited longer.
// memory is ns's share of the part memory, valid until release.
func (s *Slots) tryAcquire(ns, name string, now time.Time) (memory *semaphore.Weighted, release func(), ok bool) {
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
	r.waiters[name] = r.waiting.PushBack(&waiter{name: name, seen: now, ticket: r.tickets})
	r.tickets++
}

// place is about how many waiters are ahead of name (0 when it is first
// or not waiting): waiters that left from the middle of the line still
// count until the line moves past them.
func (r *namespaceReads) place(name string) int {
	e := r.waiters[name]
	if e == nil {
		return 0
	}
	return int(e.Value.(*waiter).ticket - r.waiting.Front().Value.(*waiter).ticket)
}

// Forget takes a deleted object out of its namespace's line, so that a
// freed slot does not wait for it.
func (s *Slots) Forget(ns, name string) {
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

func (s *Slots) release(ns string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reads := s.namespaces[ns]
	if reads == nil {
		return
	}
	reads.inFlight--
	switch {
	case reads.waiting.Len() > 0 && s.Wake != nil:
		// The waiters ahead of this slot's were woken by the slots freed
		// before it, and may not have taken theirs yet.
		if next := reads.nth(s.perNamespace - reads.inFlight - 1); next != nil {
			s.Wake(ns, next.name)
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

// WaitError ends a reconcile whose namespace has its share of reads in
// flight: the object is requeued after a short delay, its conditions left
// as they were (a retry's reason stays visible; no event is raised).
type WaitError struct{ After time.Duration }

func (e *WaitError) Error() string {
	return "waiting for a read slot: the namespace already has its share of the manager's workers reading"
}

// Take takes one of ns's read slots for object name, or says with a
// *WaitError when to ask again (retryDelay). memory is ns's share
// of the part memory, valid until release.
func (s *Slots) Take(ns, name string, now time.Time) (memory *semaphore.Weighted, release func(), err error) {
	memory, release, ok := s.tryAcquire(ns, name, now)
	if !ok {
		metrics.ObserveReadSlotWait(ns)
		return nil, nil, &WaitError{After: s.retryDelay(ns, name)}
	}
	return memory, release, nil
}

// retryDelay is how long waiting object name waits before it asks again:
// Delay while it is among the next perNamespace in line, once more for each
// perNamespace ahead of it, up to maxDelayFactor times Delay, plus jitter.
// At 10,000 objects in one namespace, waiters asking every 5–7.5 s were
// 50 reconciles an upload, most of the manager's work.
func (s *Slots) retryDelay(ns, name string) time.Duration {
	s.mu.Lock()
	place := 0
	if reads := s.namespaces[ns]; reads != nil {
		place = reads.place(name)
	}
	s.mu.Unlock()
	d := Delay * time.Duration(min(1+place/s.perNamespace, maxDelayFactor))
	return d + rand.N(d/2)
}

// Waiting reports how long to wait when err is a WaitError.
func Waiting(err error) (time.Duration, bool) {
	var wait *WaitError
	if errors.As(err, &wait) {
		return wait.After, true
	}
	return 0, false
}

// PerNamespace is the number of reads one namespace may have in flight.
func (s *Slots) PerNamespace() int { return s.perNamespace }
