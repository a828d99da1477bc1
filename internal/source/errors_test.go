package source

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestIsTerminal(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"a wrapped not found is terminal", fmt.Errorf("get: %w", ErrNotFound), true},
		{"access denied is terminal", ErrAccessDenied, true},
		{"a changed object is terminal", fmt.Errorf("get range: %w", ErrChanged), true},
		{"an invalid config is terminal", ErrInvalidConfig, true},
		{"a timeout is transient", context.DeadlineExceeded, false},
		{"any other error is transient", errors.New("connection reset by peer"), false},
		{"no error is not terminal", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := isTerminal(tc.err); got != tc.want {
				t.Errorf("isTerminal(%v) = %t, want %t", tc.err, got, tc.want)
			}
		})
	}
}
