package once

import (
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

// Answers remembers, in memory, the answers of calls that must happen
// once until a write carries them into status. When that write fails (the
// API server down for longer than a write is retried), the next reconcile
// of this process takes the answer from here instead of calling again: a
// second initiate may be refused for its filename, and a second merge
// cannot tell the resource id. An entry lives from the answer to the
// object's next successful write.
type Answers struct {
	mu      sync.Mutex
	entries map[client.ObjectKey]map[string]func(*upv1.UploadStatus)
}

// Put keeps the outcome of the object's call until a write carries it.
func (b *Answers) Put(object client.ObjectKey, call string, outcome func(*upv1.UploadStatus)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.entries == nil {
		b.entries = map[client.ObjectKey]map[string]func(*upv1.UploadStatus){}
	}
	if b.entries[object] == nil {
		b.entries[object] = map[string]func(*upv1.UploadStatus){}
	}
	b.entries[object][call] = outcome
}

// Take returns and drops the answer to the object's call, if the book has it.
func (b *Answers) Take(object client.ObjectKey, call string) (func(*upv1.UploadStatus), bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	outcome, ok := b.entries[object][call]
	delete(b.entries[object], call)
	return outcome, ok
}

// Forget drops the object's answers: a write carried them, or it is gone.
func (b *Answers) Forget(object client.ObjectKey) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.entries, object)
	if len(b.entries) == 0 {
		b.entries = nil // a map keeps the room of its largest size until dropped
	}
}
