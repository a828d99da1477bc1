package uploads

import (
	"time"

	"golang.org/x/sync/semaphore"
)

// readSlot takes a read slot of the object's namespace for the rest of
// the reconcile (the digest and the parts share it, so that an object
// does not queue twice), or says to wait when the namespace already has
// its share. Reconcile gives it back when it ends (releaseSlot).
func (s *scope) readSlot() (memory *semaphore.Weighted, err error) {
	if s.slotRelease != nil {
		return s.slotMemory, nil
	}
	memory, release, err := s.slots.Take(s.obj.Namespace, s.obj.Name, time.Now())
	if err != nil {
		return nil, err
	}
	s.slotMemory, s.slotRelease = memory, release
	return memory, nil
}

// releaseSlot gives back the read slot the reconcile held, if any; a later
// read of the same reconcile would take one again.
func (s *scope) releaseSlot() {
	if s.slotRelease != nil {
		s.slotRelease()
		s.slotMemory, s.slotRelease = nil, nil
	}
}
