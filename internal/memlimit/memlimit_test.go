package memlimit

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestSoftLimit(t *testing.T) {
	tests := []struct {
		name    string
		request int64
		want    int64
	}{
		{name: "no request sets no limit", request: 0, want: 0},
		{name: "the chart's request of 128Mi leaves the code its reserve", request: 128 << 20, want: 96 << 20},
		{name: "a large request keeps all but the reserve", request: 1 << 30, want: 1<<30 - CodeReserve},
		{name: "a request under twice the reserve keeps half of it for the heap", request: 48 << 20, want: 24 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SoftLimit(tt.request); got != tt.want {
				t.Errorf("SoftLimit(%d) = %d, want %d", tt.request, got, tt.want)
			}
		})
	}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name       string
		request    int64
		goMemLimit string
		wantLimit  int64
		wantSaid   string
	}{
		{name: "a request sets the soft limit", request: 128 << 20, wantLimit: 96 << 20, wantSaid: "96 MiB (memory request 128 MiB)"},
		{name: "GOMEMLIMIT wins over the request", request: 128 << 20, goMemLimit: "200MiB", wantLimit: math.MaxInt64, wantSaid: "GOMEMLIMIT=200MiB"},
		{name: "no request leaves Go's default", wantLimit: math.MaxInt64, wantSaid: "none (no memory request)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
			said := Apply(tt.request, tt.goMemLimit)
			if got := debug.SetMemoryLimit(-1); got != tt.wantLimit {
				t.Errorf("soft limit %d, want %d", got, tt.wantLimit)
			}
			if said != tt.wantSaid {
				t.Errorf("Apply said %q, want %q", said, tt.wantSaid)
			}
		})
	}
}
