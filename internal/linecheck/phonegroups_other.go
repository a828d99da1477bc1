//go:build !amd64

package linecheck

// haveAVX2 is false: there is no assembly for this architecture.
const haveAVX2 = false

// countPhoneGroupLines leaves all lines to the Go path.
func countPhoneGroupLines(p []byte) int { return 0 }
