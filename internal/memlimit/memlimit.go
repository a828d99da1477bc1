// Package memlimit keeps the manager inside its container's memory
// request: it sets the Go runtime's soft memory limit to the request less
// what that limit does not count, so that the collector works harder
// before the process outgrows the request instead of letting the heap
// double (GOGC=100) until the container's hard limit.
package memlimit

import (
	"fmt"
	"runtime/debug"
)

// CodeReserve is the part of a request left outside the soft limit: the
// limit counts the memory the Go runtime maps (heap, stacks, its own
// metadata), not the binary's code and read-only data, which are resident
// as the file's pages once run (about 30 MiB of the manager's 50 MB binary
// under load).
const CodeReserve = 32 << 20

// SoftLimit is the soft memory limit for a memory request of request
// bytes: the request less CodeReserve, and never less than half of it (a
// small request still leaves the heap room). 0 means no limit: no request
// was given.
func SoftLimit(request int64) int64 {
	if request <= 0 {
		return 0
	}
	return max(request-CodeReserve, request/2)
}

// Apply sets the soft limit for request, unless goMemLimit (the GOMEMLIMIT
// environment variable, which the runtime has already applied) is set: an
// explicit limit wins. It returns what it did, for the manager's log.
func Apply(request int64, goMemLimit string) string {
	if goMemLimit != "" {
		return "GOMEMLIMIT=" + goMemLimit
	}
	limit := SoftLimit(request)
	if limit == 0 {
		return "none (no memory request)"
	}
	debug.SetMemoryLimit(limit)
	return fmt.Sprintf("%d MiB (memory request %d MiB)", limit>>20, request>>20)
}
