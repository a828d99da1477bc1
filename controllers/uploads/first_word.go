package uploads

import (
	"context"
	"time"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/once"
	"github.com/crowdpack/crowdpack/controllers/readslots"
)

// waitForTurn takes the namespace's read slot before the first word about
// a generation whose file must be read, so that an object that must wait
// says so once and announces initiate only when it can go on.
func (s *scope) waitForTurn() (after time.Duration, waiting bool) {
	if !needsRead(s.obj) {
		return 0, false
	}
	_, err := s.readSlot()
	return readslots.Waiting(err)
}

// sayFirstWord says, before any slow I/O, that work on a new generation is
// under way, or that the object waits for its namespace's read slot. The
// ledger decides whether the word is written and whether it carries
// initiate's pending mark, which then spares the call a write of its own
// (see once.Ledger).
func (s *scope) sayFirstWord(ctx context.Context) (after time.Duration, waiting bool, err error) {
	u := s.obj
	after, waiting = s.waitForTurn()
	said := isWaitingForSlot(u) && !isNewGeneration(u)
	word := s.ledger.FirstWord(u, waiting, said)
	err = s.writeFirstWord(ctx, word, waiting)
	s.ledger.Said(u, word, waiting, err)
	return after, waiting, err
}

// writeFirstWord writes the first word as the ledger chose: not at all,
// in memory for the next write, as a patch, or as a conflict-checked
// write that also sets the first chunk's initiate mark (the file is not
// read yet).
func (s *scope) writeFirstWord(ctx context.Context, word once.Word, waiting bool) error {
	u := s.obj
	if word == once.KeepWord {
		return nil
	}
	message := progressingMessage(u)
	if waiting {
		message = waitingForSlotMessage
	}
	markProgressing(u, message)
	switch word {
	case once.PatchWord:
		return s.status.Patch(ctx, u)
	case once.ClaimWord:
		u.Status.Uploads = []upv1.UploadStatus{{Index: 1, InitiatingSince: s.now()}}
		return s.status.Claim(ctx, u)
	}
	return nil // once.WordInMemory: the next write says it
}
