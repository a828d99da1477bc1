package once

import (
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

// object is an upload object; marked gives its first upload initiate's
// pending mark, as the first word writes it.
func object(marked bool) *upv1.UserPackageUpload {
	u := &upv1.UserPackageUpload{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "vip", UID: "uid-1"}}
	if marked {
		at := metav1.NewTime(time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC))
		u.Status.Uploads = []upv1.UploadStatus{{Index: 1, InitiatingSince: &at}}
	}
	return u
}

func TestFirstWord(t *testing.T) {
	tests := []struct {
		name            string
		parked, marked  bool // a mark parked by this manager; the mark in status
		waiting, said   bool
		wantWord        Word
		wantState       State
		wantStillParked bool
	}{
		{name: "a new object that may read claims its word with initiate's mark",
			wantWord: ClaimWord, wantState: Unwritten},
		{name: "a new object that must wait claims its word with initiate's mark",
			waiting: true, wantWord: ClaimWord, wantState: Unwritten},
		{name: "an object with uploads patches its word and writes no mark",
			marked: true, wantWord: PatchWord, wantState: Unwritten},
		{name: "an object that still waits and said so writes nothing",
			marked: true, waiting: true, said: true, wantWord: KeepWord, wantState: Unwritten},
		{name: "a parked mark whose turn came is announced without a write",
			parked: true, marked: true, said: true, wantWord: WordInMemory, wantState: Announced},
		{name: "a parked mark of an object that still waits is taken back, to be parked again",
			parked: true, marked: true, waiting: true, said: true, wantWord: KeepWord, wantState: Announced},
		{name: "a parked mark of a new generation is announced with a patched word",
			parked: true, marked: true, wantWord: PatchWord, wantState: Announced},
		{name: "a parked mark that status no longer holds is not taken",
			parked: true, wantWord: ClaimWord, wantState: Unwritten, wantStillParked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parked := &ParkedMarks{}
			if tt.parked {
				parked.park(object(true))
			}
			l := NewLedger(parked)
			u := object(tt.marked)
			if got := l.FirstWord(u, tt.waiting, tt.said); got != tt.wantWord {
				t.Errorf("word %d, want %d", got, tt.wantWord)
			}
			if l.State() != tt.wantState {
				t.Errorf("state %v, want %v", l.State(), tt.wantState)
			}
			if still := parked.take(object(true)); still != tt.wantStillParked {
				t.Errorf("still parked: %v, want %v", still, tt.wantStillParked)
			}
		})
	}
}

func TestSaid(t *testing.T) {
	failed := errors.New("conflict")
	tests := []struct {
		name       string
		before     State
		word       Word
		waiting    bool
		err        error
		wantState  State
		wantParked bool
	}{
		{name: "a claimed word announces its mark",
			before: Unwritten, word: ClaimWord, wantState: Announced},
		{name: "a claimed word of an object that waits parks its mark",
			before: Unwritten, word: ClaimWord, waiting: true, wantState: Parked, wantParked: true},
		{name: "a claimed word that failed leaves no mark",
			before: Unwritten, word: ClaimWord, err: failed, wantState: Unwritten},
		{name: "a patched word keeps no mark of its own",
			before: Unwritten, word: PatchWord, wantState: Unwritten},
		{name: "a patched word keeps an announced mark announced",
			before: Announced, word: PatchWord, wantState: Announced},
		{name: "a patched word that failed parks the taken mark again, still uncalled",
			before: Announced, word: PatchWord, err: failed, wantState: Unwritten, wantParked: true},
		{name: "a kept word of an object that still waits parks the taken mark again",
			before: Announced, word: KeepWord, waiting: true, wantState: Parked, wantParked: true},
		{name: "a word in memory keeps the mark announced for initiate",
			before: Announced, word: WordInMemory, wantState: Announced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parked := &ParkedMarks{}
			l := &Ledger{parked: parked, state: tt.before}
			l.Said(object(true), tt.word, tt.waiting, tt.err)
			if l.State() != tt.wantState {
				t.Errorf("state %v, want %v", l.State(), tt.wantState)
			}
			if got := parked.take(object(true)); got != tt.wantParked {
				t.Errorf("parked: %v, want %v", got, tt.wantParked)
			}
		})
	}
}

func TestSpendAndWithdraw(t *testing.T) {
	tests := []struct {
		name      string
		state     State
		want      bool
		wantState State
	}{
		{name: "an announced mark is spent by initiate, which writes none of its own", state: Announced, want: true, wantState: Unwritten},
		{name: "no mark of this reconcile leaves initiate to write its own", state: Unwritten, want: false, wantState: Unwritten},
		{name: "a parked mark is not this reconcile's to spend", state: Parked, want: false, wantState: Parked},
	}
	for _, tt := range tests {
		for op, f := range map[string]func(*Ledger) bool{"Spend": (*Ledger).Spend, "Withdraw": (*Ledger).Withdraw} {
			t.Run(tt.name+" ("+op+")", func(t *testing.T) {
				l := &Ledger{parked: &ParkedMarks{}, state: tt.state}
				if got := f(l); got != tt.want || l.State() != tt.wantState {
					t.Errorf("%s = %v in state %v, want %v in state %v", op, got, l.State(), tt.want, tt.wantState)
				}
			})
		}
	}
}

func TestParkedMarks(t *testing.T) {
	tests := []struct {
		name   string
		change func(u *upv1.UserPackageUpload)
		want   bool
	}{
		{name: "the mark as written is taken", change: func(*upv1.UserPackageUpload) {}, want: true},
		{name: "a mark rewritten since is not this manager's", change: func(u *upv1.UserPackageUpload) {
			at := metav1.NewTime(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))
			u.Status.Uploads[0].InitiatingSince = &at
		}},
		{name: "an object created again under the same name is another object", change: func(u *upv1.UserPackageUpload) { u.UID = "uid-2" }},
		{name: "an upload initiated since holds no mark", change: func(u *upv1.UserPackageUpload) { u.Status.Uploads[0].ID = "U1" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &ParkedMarks{}
			m.park(object(true))
			u := object(true)
			tt.change(u)
			if got := m.take(u); got != tt.want {
				t.Errorf("taken: %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("a mark stands for one call: it is taken once", func(t *testing.T) {
		m := &ParkedMarks{}
		m.park(object(true))
		if !m.take(object(true)) || m.take(object(true)) {
			t.Error("want the mark taken once")
		}
	})
}
