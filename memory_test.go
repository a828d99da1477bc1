package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestSetSoftMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	tests := []struct {
		name      string
		request   string
		wantLimit int64
		wantErr   bool
	}{
		{name: "the Downward API's bytes set the limit", request: "134217728", wantLimit: 96 << 20},
		{name: "a quantity sets the limit", request: "128Mi", wantLimit: 96 << 20},
		{name: "no request sets none", request: "", wantLimit: math.MaxInt64},
		{name: "a request that is not a quantity stops the manager before it starts", request: "128 MB", wantLimit: math.MaxInt64, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
			err := setSoftMemoryLimit(tt.request)
			if (err != nil) != tt.wantErr {
				t.Fatalf("setSoftMemoryLimit(%q) = %v, want an error: %v", tt.request, err, tt.wantErr)
			}
			if got := debug.SetMemoryLimit(-1); got != tt.wantLimit {
				t.Errorf("soft limit %d, want %d", got, tt.wantLimit)
			}
		})
	}
}
