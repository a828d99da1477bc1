package once

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

// Ledger owns, for one reconcile of one object, what has been written about
// initiate's pending mark and so what may be called next. The first word
// about a new generation (or about the turn of an object that waited for a
// read slot) may carry the mark, which then spares initiate a write of its
// own. Its states:
//
//	state      what status holds                           what may happen next
//	---------  ------------------------------------------  ----------------------------------------------
//	Unwritten  no mark of this reconcile; a mark found     initiate writes its own mark, conflict-checked;
//	           there is an earlier call's, its outcome     a mark found counts as an unknown outcome
//	           unknown
//	Announced  a mark this reconcile wrote with its first  initiate is called without a write of its own
//	           word, or one this manager parked and the    (Spend → Unwritten); a reconcile that ends
//	           object's turn took back; no call followed   without the call takes the mark back
//	                                                       (Withdraw → Unwritten)
//	Parked     a mark written with the word that the       nothing this reconcile; on the object's turn,
//	           object waits for a read slot, remembered    FirstWord takes it back (→ Announced) while
//	           in ParkedMarks                              status still holds it as written
//
// A restarted manager remembers no parked mark: it counts such a mark as
// an unknown outcome, as it does a mark written before a read it did not
// finish.
type Ledger struct {
	parked *ParkedMarks
	state  State
}

// State is where initiate's pending mark stands in one reconcile (see Ledger).
type State int

const (
	Unwritten State = iota
	Announced
	Parked
)

func (s State) String() string {
	return [...]string{"Unwritten", "Announced", "Parked"}[s]
}

// Word is how the first word about a generation is written.
type Word int

const (
	// KeepWord writes nothing: status already says the object waits.
	KeepWord Word = iota
	// WordInMemory sets the word in memory only: the object's turn came
	// for a parked mark, and the next write (initiate's answer) says it.
	WordInMemory
	// PatchWord patches the word; a mark in status stays as it is.
	PatchWord
	// ClaimWord writes the word with a new initiate mark, conflict-checked:
	// the object never initiated an upload and is about to.
	ClaimWord
)

// NewLedger starts the ledger of one reconcile; parked is the manager's
// memory of the marks it parked.
func NewLedger(parked *ParkedMarks) *Ledger { return &Ledger{parked: parked} }

// State is where the mark stands now.
func (l *Ledger) State() State { return l.state }

// Announced reports whether the mark in status stands for a call not made
// yet: a mark found there then is no unknown outcome.
func (l *Ledger) Announced() bool { return l.state == Announced }

// FirstWord takes back the mark this manager parked for u, if u still holds
// it as written, and decides how the first word is written. waiting says
// the object must wait for its read slot; said, that status already says so
// for this generation.
func (l *Ledger) FirstWord(u *upv1.UserPackageUpload, waiting, said bool) Word {
	l.state = Unwritten
	if l.parked.take(u) {
		l.state = Announced
	}
	switch {
	case said && waiting:
		return KeepWord
	case said && l.state == Announced:
		return WordInMemory
	case len(u.Status.Uploads) > 0:
		return PatchWord
	default:
		return ClaimWord
	}
}

// Said moves the mark on once the first word was written (err is the
// write's error, nil when nothing was written): a claimed word announces
// its mark; an announced mark of an object that waits is parked for its
// turn; a write that failed leaves a taken mark parked, still uncalled.
func (l *Ledger) Said(u *upv1.UserPackageUpload, word Word, waiting bool, err error) {
	switch {
	case err != nil && l.state == Announced:
		l.parked.park(u) // the taken mark is still uncalled
		l.state = Unwritten
	case err != nil: // nothing was written: no mark of this reconcile
	case word == ClaimWord:
		l.state = Announced
	}
	if err == nil && waiting && l.state == Announced {
		l.parked.park(u)
		l.state = Parked
	}
}

// Spend reports whether initiate's mark is already written for the call
// about to be made, and then counts it used.
func (l *Ledger) Spend() bool {
	if l.state != Announced {
		return false
	}
	l.state = Unwritten
	return true
}

// Withdraw reports whether a mark announced a call that was not made (the
// file could not be read, the spec is invalid): the reconcile's last write
// must take it back.
func (l *Ledger) Withdraw() bool { return l.Spend() }

// ParkedMarks remembers, across reconciles, the initiate marks this
// manager wrote with an object's word that it waits for a read slot. When
// the object's turn comes and its status still holds that mark, no call
// followed it (only this manager calls, and the turn takes the mark once):
// the mark stands for the call, and the turn costs no write. Edits of the
// spec, labels or annotations leave the mark this manager's.
type ParkedMarks struct {
	mu    sync.Mutex
	marks map[types.NamespacedName]parkedMark
}

// parkedMark is an initiate mark: the object it was written on, and when.
type parkedMark struct {
	uid   types.UID
	since metav1.Time
}

// markOf is the initiate mark u's status holds for a first upload not
// initiated yet, if any.
func markOf(u *upv1.UserPackageUpload) (parkedMark, bool) {
	if len(u.Status.Uploads) == 0 || u.Status.Uploads[0].ID != "" || u.Status.Uploads[0].InitiatingSince == nil {
		return parkedMark{}, false
	}
	return parkedMark{uid: u.UID, since: *u.Status.Uploads[0].InitiatingSince}, true
}

// park notes that the mark u holds, as written, is this manager's and
// announced no call yet.
func (m *ParkedMarks) park(u *upv1.UserPackageUpload) {
	mark, ok := markOf(u)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.marks == nil {
		m.marks = map[types.NamespacedName]parkedMark{}
	}
	m.marks[client.ObjectKeyFromObject(u)] = mark
}

// take reports whether u holds the mark parked for it, and then forgets
// it: a mark stands for one call. Another mark, or none, leaves it: u may
// be an older version, seen through a cache that lags behind.
func (m *ParkedMarks) take(u *upv1.UserPackageUpload) bool {
	mark, ok := markOf(u)
	key := client.ObjectKeyFromObject(u)
	m.mu.Lock()
	defer m.mu.Unlock()
	if mine, found := m.marks[key]; !ok || !found || mine.uid != mark.uid || !mine.since.Equal(&mark.since) {
		return false
	}
	m.delete(key)
	return true
}

// Forget drops the mark parked for an object that is gone.
func (m *ParkedMarks) Forget(key types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.delete(key)
}

// delete drops key's mark, and the map once it is empty: a Go map keeps
// the room of its largest size, thousands of objects' after a wave of new
// ones, until it is dropped.
func (m *ParkedMarks) delete(key types.NamespacedName) {
	delete(m.marks, key)
	if len(m.marks) == 0 {
		m.marks = nil
	}
}
