package syncs

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/checkslot"
)

// checkTimes remembers when this manager last checked each sync's source.
// It is memory, not status: a timestamp written at every check would make
// every idle check an API server write. A manager that starts knows none,
// and checks each sync once at once, so that a check missed while no
// manager ran is made up for.
type checkTimes struct {
	mu sync.Mutex
	at map[types.NamespacedName]time.Time
}

func (c *checkTimes) last(key types.NamespacedName) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.at[key]
	return at, ok
}

func (c *checkTimes) record(key types.NamespacedName, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at == nil {
		c.at = map[types.NamespacedName]time.Time{}
	}
	c.at[key] = at
}

// forget drops a sync deleted or suspended: its next check is at once.
func (c *checkTimes) forget(key types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.at, key)
}

// untilCheck is how long until the source is due a check: none for a sync
// never checked, a requested reconcile not handled yet, a spec not observed
// yet, or a sync this manager has not checked since it started; else until
// the sync's first slot after its last check.
func (r *Reconciler) untilCheck(sync *upv1.UserPackageSync) time.Duration {
	if sync.Status.CurrentRevision == nil || requested(sync) || sync.Status.ObservedGeneration != sync.Generation {
		return 0
	}
	last, ok := r.checked.last(keyOf(sync))
	if !ok {
		return 0
	}
	return max(nextCheck(sync, last).Sub(r.now()), 0)
}

// nextCheck is the sync's first check slot after t: every spec.interval,
// at the sync's own offset into it (from its UID), so that syncs created
// together check at different seconds.
func nextCheck(sync *upv1.UserPackageSync, t time.Time) time.Time {
	return checkslot.Next(sync.UID, sync.Spec.CheckInterval(), t)
}

func keyOf(sync *upv1.UserPackageSync) types.NamespacedName {
	return types.NamespacedName{Namespace: sync.Namespace, Name: sync.Name}
}
