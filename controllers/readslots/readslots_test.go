package readslots

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestNamespaceSlots(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	t.Run("a namespace gets no more than its share and other namespaces are not affected", func(t *testing.T) {
		s := New(2, 1<<20)
		_, r1, ok1 := s.tryAcquire("a", "x", now)
		_, _, ok2 := s.tryAcquire("a", "y", now)
		_, _, ok3 := s.tryAcquire("a", "z", now)
		_, _, okOther := s.tryAcquire("b", "x", now)
		if !ok1 || !ok2 || ok3 || !okOther {
			t.Fatalf("acquired %v %v %v in a, %v in b; want true true false, true", ok1, ok2, ok3, okOther)
		}
		r1()
		r1() // a second release is a no-op
		if _, _, ok := s.tryAcquire("a", "z", now); !ok {
			t.Error("the freed slot did not go to the waiting object")
		}
		if _, _, ok := s.tryAcquire("a", "w", now); ok {
			t.Error("a third slot was given after a double release")
		}
	})
	t.Run("a freed slot goes to the object that waited longest", func(t *testing.T) {
		s := New(1, 1<<20)
		_, release, _ := s.tryAcquire("a", "reader", now)
		s.tryAcquire("a", "first", now)
		s.tryAcquire("a", "second", now)
		release()
		if _, _, ok := s.tryAcquire("a", "reader", now); ok {
			t.Error("the object that just read overtook the waiting ones")
		}
		if _, _, ok := s.tryAcquire("a", "second", now); ok {
			t.Error("the second waiter overtook the first")
		}
		if _, _, ok := s.tryAcquire("a", "first", now); !ok {
			t.Error("the first waiter did not get the slot")
		}
	})
	t.Run("a waiter that stopped asking is forgotten", func(t *testing.T) {
		s := New(1, 1<<20)
		_, release, _ := s.tryAcquire("a", "reader", now)
		s.tryAcquire("a", "gone", now)
		release()
		if _, _, ok := s.tryAcquire("a", "next", now.Add(waiterTimeout)); !ok {
			t.Error("a deleted object's place in the queue blocks the namespace")
		}
	})
	t.Run("slots freed one after the other wake one waiter each", func(t *testing.T) {
		s := New(2, 1<<20)
		var woken []string
		s.Wake = func(_, name string) { woken = append(woken, name) }
		_, r1, _ := s.tryAcquire("a", "reader-1", now)
		_, r2, _ := s.tryAcquire("a", "reader-2", now)
		for _, name := range []string{"first", "second", "third"} {
			s.tryAcquire("a", name, now)
		}
		r1()
		r2() // before the first waiter took its slot
		if want := []string{"first", "second"}; !slices.Equal(woken, want) {
			t.Errorf("woken %v, want %v", woken, want)
		}
	})
	t.Run("a deleted waiter gives up its place at once", func(t *testing.T) {
		s := New(1, 1<<20)
		_, release, _ := s.tryAcquire("a", "reader", now)
		s.tryAcquire("a", "deleted", now)
		s.tryAcquire("a", "next", now)
		s.Forget("a", "deleted")
		release()
		if _, _, ok := s.tryAcquire("a", "next", now); !ok {
			t.Error("a deleted object's place in the queue blocks the next waiter")
		}
	})
	t.Run("waiters further back in line ask again less often, never so late that they are forgotten", func(t *testing.T) {
		s := New(2, 1<<20)
		s.tryAcquire("a", "reader-1", now)
		s.tryAcquire("a", "reader-2", now)
		for i := range 20 {
			s.tryAcquire("a", fmt.Sprint("waiter-", i), now)
		}
		for _, tc := range []struct {
			place    int
			min, max time.Duration
		}{
			{0, Delay, Delay * 3 / 2},
			{1, Delay, Delay * 3 / 2},
			{2, 2 * Delay, 3 * Delay},
			{19, maxDelayFactor * Delay, maxDelayFactor * Delay * 3 / 2},
		} {
			for range 50 {
				if d := s.retryDelay("a", fmt.Sprint("waiter-", tc.place)); d < tc.min || d >= tc.max {
					t.Fatalf("waiter %d asks again after %s, want [%s, %s)", tc.place, d, tc.min, tc.max)
				}
			}
		}
		if longest := maxDelayFactor * Delay * 3 / 2; longest >= waiterTimeout {
			t.Errorf("a waiter may wait %s to ask again, and is forgotten after %s", longest, waiterTimeout)
		}
	})
	t.Run("the fair share is half the workers, at least one", func(t *testing.T) {
		for workers, want := range map[int]int{0: 1, 1: 1, 2: 1, 3: 1, 16: 8} {
			if got := FairShare(workers); got != want {
				t.Errorf("FairShare(%d) = %d, want %d", workers, got, want)
			}
		}
	})
}
