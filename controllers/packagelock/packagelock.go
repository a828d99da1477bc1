// Package packagelock serialises the expands of one crowd package across
// the manager. WeChat Pay documents nothing about two expands of one
// package at once, and two objects (a sync's child and a plain upload, or
// two uploads of one export) may name the same package: the manager makes
// them take turns rather than find out.
package packagelock

import (
	"context"
	"sync"
)

// Key names one crowd package: packages are the brand's, so the same
// user_package_id under two brands is two packages.
type Key struct {
	BrandID       string
	UserPackageID string
}

// Locks holds a lock per crowd package while it is held; the zero value
// is ready to use.
type Locks struct {
	mu   sync.Mutex
	held map[Key]chan struct{} // closed when the holder lets go
}

// Lock waits until no one else holds k's lock, then takes it. It gives up
// with ctx's error when ctx ends first. The caller must call unlock.
func (l *Locks) Lock(ctx context.Context, k Key) (unlock func(), err error) {
	for {
		released, taken := l.tryLock(k)
		if taken {
			return func() { l.unlock(k, released) }, nil
		}
		select {
		case <-released:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// tryLock takes k's lock if it is free. Either way it returns the channel
// that is closed when the lock is let go.
func (l *Locks) tryLock(k Key) (released chan struct{}, taken bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ch, busy := l.held[k]; busy {
		return ch, false
	}
	if l.held == nil {
		l.held = map[Key]chan struct{}{}
	}
	ch := make(chan struct{})
	l.held[k] = ch
	return ch, true
}

func (l *Locks) unlock(k Key, released chan struct{}) {
	l.mu.Lock()
	delete(l.held, k)
	l.mu.Unlock()
	close(released)
}
