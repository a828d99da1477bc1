package controllers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	v1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// readSlotDelay is how long an object whose namespace has its share of
// reads in flight waits before it asks again (plus up to half as much
// jitter, so that a namespace's waiting objects do not ask together).
const readSlotDelay = time.Second

// namespaceSlots keeps one namespace (a tenant) from holding every worker
// and all the part memory with reads: each namespace may have at most
// perNamespace reads (digests, part uploads) in flight, and its parts may
// hold at most memoryShare bytes of the part memory budget. An object that
// finds its namespace's slots taken requeues instead of blocking a worker,
// so other namespaces always find workers free.
type namespaceSlots struct {
	perNamespace int
	memoryShare  int64

	mu         sync.Mutex
	namespaces map[string]*namespaceReads
}

type namespaceReads struct {
	inFlight int
	memory   *semaphore.Weighted
}

// fairShare is the number of workers one namespace may hold with reads:
// half of them, so the other half always serves other namespaces.
func fairShare(maxConcurrentReconciles int) int { return max(1, maxConcurrentReconciles/2) }

// fairShareOfMemory is the part memory one namespace may hold: half the
// budget, but at least the largest part.
func fairShareOfMemory(budget int64) int64 { return max(budget/2, wechatpay.MaxPartSize) }

func newNamespaceSlots(perNamespace int, memoryShare int64) *namespaceSlots {
	return &namespaceSlots{perNamespace: perNamespace, memoryShare: memoryShare, namespaces: map[string]*namespaceReads{}}
}

// tryAcquire takes one of ns's read slots; ok is false when they are all
// taken. memory is ns's share of the part memory, valid until release.
func (s *namespaceSlots) tryAcquire(ns string) (memory *semaphore.Weighted, release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reads := s.namespaces[ns]
	if reads == nil {
		reads = &namespaceReads{memory: semaphore.NewWeighted(s.memoryShare)}
		s.namespaces[ns] = reads
	}
	if reads.inFlight >= s.perNamespace {
		return nil, nil, false
	}
	reads.inFlight++
	var once sync.Once
	return reads.memory, func() { once.Do(func() { s.release(ns) }) }, true
}

func (s *namespaceSlots) release(ns string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reads := s.namespaces[ns]; reads != nil {
		if reads.inFlight--; reads.inFlight <= 0 {
			delete(s.namespaces, ns)
		}
	}
}

// readSlot takes a read slot of the object's namespace, or says to retry
// shortly when the namespace already has its share.
func (r *UserPackageUploadReconciler) readSlot(u *v1.UserPackageUpload) (memory *semaphore.Weighted, release func(), err error) {
	memory, release, ok := r.readSlots.tryAcquire(u.Namespace)
	if !ok {
		delay := readSlotDelay + rand.N(readSlotDelay/2)
		return nil, nil, retry(v1.ReasonReadSlotsBusy, delay,
			"waiting for a read slot: namespace %s already has %d reads in flight, its share of the manager's workers (half of --max-concurrent-reconciles)",
			u.Namespace, r.readSlots.perNamespace)
	}
	return memory, release, nil
}

// takeMemory takes size bytes of the namespace's share and of the
// manager's part memory budget; release gives both back.
func takeMemory(ctx context.Context, namespace, manager *semaphore.Weighted, size int64) (release func(), err error) {
	if err := namespace.Acquire(ctx, size); err != nil {
		return nil, fmt.Errorf("wait for part memory: %w", err)
	}
	if err := manager.Acquire(ctx, size); err != nil {
		namespace.Release(size)
		return nil, fmt.Errorf("wait for part memory: %w", err)
	}
	return func() { manager.Release(size); namespace.Release(size) }, nil
}
