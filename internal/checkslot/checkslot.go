// Package checkslot spreads the periodic checks of many objects over their
// interval. Each object checks at its own offset into the interval, derived
// from its UID: objects created together (a GitOps sync of a thousand) do
// not check in the same second, and each object's checks stay exactly one
// interval apart, across restarts, with nothing stored. Anyone who knows
// the UID and the interval (the CLI) can say when the next check is due.
package checkslot

import (
	"hash/fnv"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Offset is the object's fixed place in every interval, counted from the
// Unix epoch, in [0, interval).
func Offset(uid types.UID, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(uid))
	return time.Duration(h.Sum64() % uint64(interval))
}

// Next is the object's first check time strictly after t: the Unix epoch
// plus its offset plus a whole number of intervals.
func Next(uid types.UID, interval time.Duration, t time.Time) time.Time {
	if interval <= 0 {
		return t
	}
	since := (t.UnixNano() - int64(Offset(uid, interval))) % int64(interval)
	if since < 0 {
		since += int64(interval)
	}
	return t.Add(interval - time.Duration(since))
}
