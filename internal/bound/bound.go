// Package bound cuts text to the sizes Kubernetes and the operator's
// messages allow, on a UTF-8 boundary, marking the cut with "…".
package bound

import "unicode/utf8"

// Limits, in bytes.
const (
	// Remote bounds any text from a remote system (an S3 or WeChat Pay
	// message, an HTTP status line, an ETag) before it enters a message.
	Remote = 256
	// EventNote is the most an events.k8s.io/v1 note may hold: the API
	// server refuses a longer one.
	EventNote = 1024
	// Condition bounds a condition message, so status stays small.
	Condition = 2048
)

const ellipsis = "…"

// Text returns s if it fits in max bytes, and otherwise its longest prefix
// that ends on a rune boundary and, followed by "…", fits.
func Text(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max - len(ellipsis)
	if cut <= 0 {
		return ""
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
