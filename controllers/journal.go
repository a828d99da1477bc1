package controllers

import (
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ackJournal remembers, in memory, the parts WeChat Pay acknowledged for
// each object's upload: when status cannot be written (the API server is
// down), the next reconcile of this process still knows not to send them.
type ackJournal struct {
	mu      sync.Mutex
	entries map[client.ObjectKey]journalEntry
}

type journalEntry struct {
	uploadID string
	parts    map[int64]struct{}
}

func (j *ackJournal) add(key client.ObjectKey, uploadID string, part int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.entries == nil {
		j.entries = map[client.ObjectKey]journalEntry{}
	}
	e := j.entries[key]
	if e.uploadID != uploadID {
		e = journalEntry{uploadID: uploadID, parts: map[int64]struct{}{}}
		j.entries[key] = e
	}
	e.parts[part] = struct{}{}
}

// parts lists what the journal holds for the object's upload.
func (j *ackJournal) parts(key client.ObjectKey, uploadID string) []int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	e := j.entries[key]
	if e.uploadID != uploadID {
		return nil
	}
	parts := make([]int64, 0, len(e.parts))
	for part := range e.parts {
		parts = append(parts, part)
	}
	return parts
}

// forget drops an object whose acknowledgements are all in status, or
// which is gone.
func (j *ackJournal) forget(key client.ObjectKey) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.entries, key)
}
