package uploads

import (
	"time"

	"github.com/crowdpack/crowdpack/internal/delta"
)

// Defaults are the reconciler's settings when none are given: the manager's
// flags default to them, and SetupWithManager fills in any left zero. The
// docs/install.md and the Helm chart document the same values.
var Defaults = struct {
	// MaxConcurrentReconciles bounds the UserPackageUploads worked on at once.
	MaxConcurrentReconciles int
	// PartConcurrency bounds the parts of one upload sent at once.
	PartConcurrency int
	// PartMemory bounds the bytes of parts held in memory at once, by all
	// uploads together.
	PartMemory int64
	// DeltaMemory bounds the bytes the comparisons of
	// spec.file.excludeMembersOf hold at once, by all uploads together.
	DeltaMemory int64
	// RetryBaseDelay is the first delay after a transient error (it doubles
	// on each further one), RetryMaxDelay the longest.
	RetryBaseDelay, RetryMaxDelay time.Duration
}{
	MaxConcurrentReconciles: 32,
	PartConcurrency:         4,
	PartMemory:              64 << 20,
	DeltaMemory:             delta.DefaultBudget,
	RetryBaseDelay:          time.Second,
	RetryMaxDelay:           5 * time.Minute,
}
