package packagelock

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHoldersOfOnePackageNeverOverlap(t *testing.T) {
	var locks Locks
	key := Key{BrandID: "1900", UserPackageID: "42"}
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := locks.Lock(context.Background(), key)
			if err != nil {
				t.Error(err)
				return
			}
			now := inside.Add(1)
			for old := most.Load(); now > old && !most.CompareAndSwap(old, now); old = most.Load() {
			}
			time.Sleep(time.Millisecond)
			inside.Add(-1)
			unlock()
		}()
	}
	wg.Wait()
	if got := most.Load(); got != 1 {
		t.Fatalf("%d holders of one package at once, want 1", got)
	}
}

func TestLocks(t *testing.T) {
	tests := []struct {
		name    string
		held    Key
		want    Key
		blocked bool
	}{
		{name: "another package of the same brand is not held up", held: Key{"1900", "42"}, want: Key{"1900", "43"}},
		{name: "the same package id under another brand is another package", held: Key{"1900", "42"}, want: Key{"1901", "42"}},
		{name: "the same package waits until the holder lets go", held: Key{"1900", "42"}, want: Key{"1900", "42"}, blocked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var locks Locks
			unlock, err := locks.Lock(context.Background(), tt.held)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			second, err := locks.Lock(ctx, tt.want)
			if blocked := errors.Is(err, context.DeadlineExceeded); blocked != tt.blocked {
				t.Fatalf("blocked = %v (err %v), want %v", blocked, err, tt.blocked)
			}
			if second != nil {
				second()
			}
			unlock()
			again, err := locks.Lock(context.Background(), tt.want)
			if err != nil {
				t.Fatalf("after the holder let go: %v", err)
			}
			again()
		})
	}
}
