package version

import (
	"runtime"
	"testing"
)

func TestString(t *testing.T) {
	cases := []struct {
		name            string
		version, commit string
		want            string
	}{
		{"an unstamped build says dev", "dev", "unknown", "manager dev (commit unknown, " + runtime.Version() + ")"},
		{"a stamped build gives its version and commit", "v0.2.0", "0123abc", "manager v0.2.0 (commit 0123abc, " + runtime.Version() + ")"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func(v, c string) { Version, Commit = v, c }(Version, Commit)
			Version, Commit = tc.version, tc.commit
			if got := String("manager"); got != tc.want {
				t.Errorf("String = %q, want %q", got, tc.want)
			}
		})
	}
}
