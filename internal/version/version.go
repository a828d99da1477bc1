// Package version is crowdpack's build identity: the one place the release
// version and commit live. The Makefile and the Dockerfile stamp them:
//
//	go build -ldflags "-X github.com/crowdpack/crowdpack/internal/version.Version=v0.2.0
//	  -X github.com/crowdpack/crowdpack/internal/version.Commit=0123abc"
//
// An unstamped build (go run, go test) is "dev".
package version

import (
	"fmt"
	"runtime"
)

var (
	// Version is the release, e.g. v0.2.0, or "dev".
	Version = "dev"
	// Commit is the git commit the binary was built from, or "unknown".
	Commit = "unknown"
)

// GoVersion is the Go release the binary was built with.
func GoVersion() string { return runtime.Version() }

// String is what --version prints: "manager v0.2.0 (commit 0123abc, go1.26.8)".
func String(program string) string {
	return fmt.Sprintf("%s %s (commit %s, %s)", program, Version, Commit, GoVersion())
}
