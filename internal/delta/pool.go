package delta

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/semaphore"
)

// Pool lends memory to computations so that together they hold at most its
// budget, however many run at once: the manager makes one and passes it to
// every computation. A computation takes the share it needs, up to the
// whole budget, and waits (first come, first served) until that much is
// free. The arrays of finished computations are kept for the next ones, so
// that a steady load allocates nothing.
type Pool struct {
	budget int64
	sem    *semaphore.Weighted

	mu   sync.Mutex
	free []*arena
	held int64 // bytes of the arenas made and not dropped, lent or free
}

// NewPool returns a pool of budget bytes; 0 or less is DefaultBudget.
func NewPool(budget int64) *Pool {
	if budget <= 0 {
		budget = DefaultBudget
	}
	return &Pool{budget: budget, sem: semaphore.NewWeighted(budget)}
}

// Budget is the most bytes the pool lends at once.
func (p *Pool) Budget() int64 { return p.budget }

// overhead is what a computation holds besides its arena: the read buffer
// and the ring of batches of the file being read (one at a time), the
// decider's batch and the output buffer, about 180 KiB.
const overhead = 256 << 10

// minKeys is the smallest key set a computation runs with.
const minKeys = 4096

// plan is the share of a pool one computation takes.
type plan struct {
	grant int64 // bytes taken from the pool, overhead included
	keys  int   // capacity of the key set
	words int   // words of the bitmap of the revision's member lines; 0: one pass is certain
}

// keyBytes is what a key set of n keys holds: the keys, its directory (at
// most n/4+3 entries, see build) and one "seen" bit per key.
func keyBytes(n int64) int64 {
	return n*keySize + (n/4+3)*4 + (n+63)/64*8
}

// keySize is the bytes of one key.
const keySize = 16

// planFor sizes a computation of two files of these sizes: the whole base
// in one pass when its most possible members fit the budget, otherwise the
// whole budget, with a bitmap of the revision's most possible members.
// maxKeys, when positive, caps the key set (for tests).
func planFor(budget, revisionSize, baseSize int64, format Format, maxKeys int) (plan, error) {
	most := func(size int64) int64 { return (size+1)/(format.minMemberLen()+1) + 1 }
	if n := most(baseSize); overhead+keyBytes(n) <= budget && (maxKeys <= 0 || n <= int64(maxKeys)) {
		return plan{grant: overhead + keyBytes(n), keys: int(n)}, nil
	}
	words := (most(revisionSize) + 63) / 64
	avail := budget - overhead - words*8
	n := (avail - 20) * 8 / (keySize*8 + 9) // keyBytes(n) <= 17.125n+20 <= avail
	if maxKeys > 0 {
		n = min(n, int64(maxKeys))
	} else if n < minKeys {
		return plan{}, fmt.Errorf("%w: %d bytes cannot hold the bitmap of a %d byte revision and %d keys",
			ErrBudget, budget, revisionSize, minKeys)
	}
	if n < 2 {
		return plan{}, fmt.Errorf("%w: %d bytes hold no key set", ErrBudget, budget)
	}
	return plan{grant: budget, keys: int(n), words: int(words)}, nil
}

// arena is the memory of one computation.
type arena struct {
	keys  []key    // the key set of a pass, cap plan.keys
	dir   []uint32 // its directory
	seen  []uint64 // one bit per key: the revision has the member
	emit  []uint64 // one bit per member line of the revision: added
	bytes int64    // held by the slices above
	grant int64    // taken from the pool while lent
}

func newArena(pl plan) *arena {
	return &arena{
		keys:  make([]key, 0, pl.keys),
		dir:   make([]uint32, 0, pl.keys/4+3),
		seen:  make([]uint64, 0, (pl.keys+63)/64),
		emit:  make([]uint64, 0, pl.words),
		bytes: keyBytes(int64(pl.keys)) + int64(pl.words)*8,
	}
}

// fits tells whether a suits pl without holding more than pl grants.
func (a *arena) fits(pl plan) bool {
	return cap(a.keys) >= pl.keys && cap(a.emit) >= pl.words && a.bytes+overhead <= pl.grant
}

// get waits until pl.grant bytes are free and lends an arena for pl.
func (p *Pool) get(ctx context.Context, pl plan) (*arena, error) {
	if err := p.sem.Acquire(ctx, pl.grant); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, a := range p.free {
		if a.fits(pl) {
			p.free = append(p.free[:i], p.free[i+1:]...)
			a.grant = pl.grant
			return a, nil
		}
	}
	// The arenas lent hold at most budget-grant: dropping the free ones
	// (to the garbage collector) always makes room.
	need := keyBytes(int64(pl.keys)) + int64(pl.words)*8
	for len(p.free) > 0 && p.held+need > p.budget {
		p.held -= p.free[0].bytes
		p.free = p.free[1:]
	}
	p.held += need
	a := newArena(pl)
	a.grant = pl.grant
	return a, nil
}

// put takes back an arena lent by get.
func (p *Pool) put(a *arena) {
	grant := a.grant
	p.mu.Lock()
	p.free = append(p.free, a)
	p.mu.Unlock()
	p.sem.Release(grant)
}
