package once

import (
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Journal remembers, in memory, the parts WeChat Pay acknowledged for
// each upload of each object: when status cannot be written (the API
// server is down), the next reconcile of this process still knows not to
// send them.
type Journal struct {
	mu      sync.Mutex
	entries map[journalKey]map[int64]struct{}
}

// journalKey is one upload of one object.
type journalKey struct {
	object   client.ObjectKey
	uploadID string
}

// Add notes that WeChat Pay acknowledged part of the object's upload.
func (j *Journal) Add(key client.ObjectKey, uploadID string, part int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.entries == nil {
		j.entries = map[journalKey]map[int64]struct{}{}
	}
	k := journalKey{key, uploadID}
	if j.entries[k] == nil {
		j.entries[k] = map[int64]struct{}{}
	}
	j.entries[k][part] = struct{}{}
}

// Parts lists what the journal holds for the object's upload.
func (j *Journal) Parts(key client.ObjectKey, uploadID string) []int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	e := j.entries[journalKey{key, uploadID}]
	parts := make([]int64, 0, len(e))
	for part := range e {
		parts = append(parts, part)
	}
	return parts
}

// Forget drops an object whose acknowledgements are all in status, or
// which is gone.
func (j *Journal) Forget(key client.ObjectKey) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for k := range j.entries {
		if k.object == key {
			delete(j.entries, k)
		}
	}
	if len(j.entries) == 0 {
		j.entries = nil // a map keeps the room of its largest size until dropped
	}
}
