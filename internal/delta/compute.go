package delta

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/crowdpack/crowdpack/internal/rawphone"
	"github.com/crowdpack/crowdpack/internal/source"
)

// histBits sizes the histogram of the base's keys by the top bits of h
// that the first pass makes, to size the spans of the later ones.
const histBits = 12

// computation is one run of Compute.
type computation struct {
	format   Format
	revision Opener
	base     Opener
	arena    *arena
	out      *bufio.Writer

	counts Counts
	// first are the reads of the first pass, which later ones must match.
	firstRevision, firstBase fileStats
	// hist counts the base's member lines by the top histBits of h.
	hist [1 << histBits]int64
	// line is where write makes an MD5 line (a local array would escape
	// to the heap through the writer, once a line).
	line [rawphone.LineLen - 1]byte
}

// run makes passes until one reaches the end of the key values.
func (c *computation) run(ctx context.Context) (Counts, error) {
	lo := uint64(0)
	for pass := 1; ; pass++ {
		c.counts.Passes = pass
		s, err := c.readBase(ctx, pass, lo)
		if err != nil {
			return Counts{}, err
		}
		if err := c.readRevision(ctx, pass, s); err != nil {
			return Counts{}, err
		}
		c.counts.BaseMembers += int64(len(s.keys))
		c.counts.Left += s.unseen()
		if !s.span.bounded {
			return c.counts, nil
		}
		lo = s.span.hi
	}
}

// firstSpan is the span a pass starting at lo tries first: on the first
// pass all key values left; on later ones as many buckets of the histogram
// as the key set holds.
func (c *computation) firstSpan(pass int, lo uint64) span {
	sp := span{lo: lo}
	if pass == 1 {
		return sp
	}
	capacity := int64(cap(c.arena.keys))
	first := lo >> (64 - histBits)
	var held int64
	for b := first; b < 1<<histBits; b++ {
		held += c.hist[b]
		if held <= capacity {
			continue
		}
		// Bucket b does not fit: end before it, or after the first bucket
		// if that alone does not fit (the pass then ends it earlier).
		if end := max(b, first+1); end < 1<<histBits {
			sp.hi, sp.bounded = end<<(64-histBits), true
		}
		return sp
	}
	return sp
}

// readBase reads the base and returns the set of its members in the span
// this pass decides: from lo, as far as the key set holds.
func (c *computation) readBase(ctx context.Context, pass int, lo uint64) (*set, error) {
	sp := c.firstSpan(pass, lo)
	keys := c.arena.keys[:0]
	var read atomic.Int64
	stats, err := eachMember(ctx, c.base, c.format, &read, func(k key, _ []byte) error {
		if pass == 1 {
			c.hist[k.h>>(64-histBits)]++
		}
		if !sp.has(k) {
			return nil
		}
		if len(keys) == cap(keys) {
			var err error
			if keys, sp, err = shrink(keys, sp, float64(read.Load())/float64(max(1, c.base.Size()))); err != nil {
				return err
			}
			if !sp.has(k) {
				return nil
			}
		}
		keys = append(keys, k)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the base: %w", err)
	}
	if err := c.checkSame("base", pass, &c.firstBase, stats); err != nil {
		return nil, err
	}
	return build(sp, sortKeys(keys), c.arena.dir, c.arena.seen), nil
}

// shrink makes room in a full key set by ending the span earlier, keeping
// the keys below the new end, chosen from done, the part of the file read
// so far, so that the keys still to come fit: keys spread evenly over h.
// Should that free too little (the file repeats members), it sorts the keys
// and drops repeated ones, then cuts at the sorted keys.
func shrink(keys []key, sp span, done float64) ([]key, span, error) {
	full := len(keys)
	width := float64(math.MaxUint64 - sp.lo)
	if sp.bounded {
		width = float64(sp.hi - sp.lo)
	}
	if end := sp.lo + uint64(width*0.9*done); end > sp.lo && (!sp.bounded || end < sp.hi) {
		kept := keys[:0]
		for _, k := range keys {
			if k.h < end {
				kept = append(kept, k)
			}
		}
		if len(kept) <= full*3/4 {
			sp.hi, sp.bounded = end, true
			return kept, sp, nil
		}
		keys, sp.hi, sp.bounded = kept, end, true
	}
	keys = sortKeys(keys)
	if len(keys) <= full*3/4 {
		return keys, sp, nil
	}
	keep := max(1, len(keys)*3/4)
	end := keys[keep].h
	cut := keep
	for cut > 0 && keys[cut-1].h >= end {
		cut--
	}
	if cut == 0 {
		return nil, sp, fmt.Errorf("%w: %d keys share one value", ErrBudget, len(keys))
	}
	sp.hi, sp.bounded = end, true
	return keys[:cut], sp, nil
}

// readRevision reads the revision and decides each of its member lines in
// s's span: added or unchanged. The last pass writes the output: the lines
// it decides as added, and those earlier passes marked.
func (c *computation) readRevision(ctx context.Context, pass int, s *set) error {
	last := !s.span.bounded
	emit := c.arena.emit
	if pass == 1 && !last {
		if cap(emit) == 0 {
			return errors.New("delta: a second pass is needed but no bitmap was planned")
		}
		emit = emit[:cap(emit)]
		clear(emit)
		c.arena.emit = emit
	}
	d := &decider{c: c, s: s, last: last, emit: emit}
	stats, err := eachMember(ctx, c.revision, c.format, nil, d.add)
	if err == nil {
		err = d.decide()
	}
	if err != nil {
		return fmt.Errorf("read the revision: %w", err)
	}
	if err := c.checkSame("revision", pass, &c.firstRevision, stats); err != nil {
		return err
	}
	if pass == 1 {
		c.counts.Lines, c.counts.Invalid, c.counts.InvalidLineNumbers = stats.lines, stats.invalid, stats.invalidLineNumbers
	}
	return nil
}

// batchSize is how many lines a decider looks up at once.
const batchSize = 32

// decider decides the member lines of the revision in batches: the
// directory entries of a batch are all read, then its keys, so that the
// CPU waits for many of these reads (each a likely cache miss) at once
// instead of one after the other.
type decider struct {
	c    *computation
	s    *set
	last bool
	emit []uint64
	next int64 // index of the first member line of the batch

	n        int
	keys     [batchSize]key
	members  [batchSize][maxMemberLen]byte
	lens     [batchSize]uint8
	from, to [batchSize]uint32
}

func (d *decider) add(k key, member []byte) error {
	d.keys[d.n] = k
	d.lens[d.n] = uint8(copy(d.members[d.n][:], member))
	d.n++
	if d.n < batchSize {
		return nil
	}
	return d.decide()
}

// decide decides the lines of the batch, in order.
func (d *decider) decide() error {
	s := d.s
	for j, k := range d.keys[:d.n] {
		if s.span.has(k) {
			d.from[j], d.to[j] = s.entry(k)
		}
	}
	for j, k := range d.keys[:d.n] {
		i := d.next + int64(j)
		switch {
		case s.span.has(k):
			if at := s.findIn(k, d.from[j], d.to[j]); at >= 0 {
				s.markSeen(at)
				d.c.counts.Unchanged++
				continue
			}
			d.c.counts.Added++
			if d.last {
				if err := d.c.write(d.members[j][:d.lens[j]]); err != nil {
					return err
				}
				continue
			}
			if i >= int64(len(d.emit))*64 {
				return fmt.Errorf("delta: the revision has more member lines than its size allows (%d)", i)
			}
			d.emit[i/64] |= 1 << (i % 64)
		case d.last && k.h < s.span.lo && d.emit[i/64]&(1<<(i%64)) != 0:
			if err := d.c.write(d.members[j][:d.lens[j]]); err != nil {
				return err
			}
		}
	}
	d.next += int64(d.n)
	d.n = 0
	return nil
}

// write writes one line of the output: member, or with MD5 hashing the
// line rawphone makes of it (see eachMember).
func (c *computation) write(member []byte) error {
	if c.format.HashMD5 {
		hex.Encode(c.line[:], member)
		member = c.line[:]
	}
	if _, err := c.out.Write(member); err != nil {
		return err
	}
	return c.out.WriteByte('\n')
}

// checkSame keeps the first pass's read of a file in first and compares
// later reads with it: a file must yield the same members on every pass.
func (c *computation) checkSame(name string, pass int, first *fileStats, got fileStats) error {
	if pass == 1 {
		*first = got
		return nil
	}
	if !got.sameMembers(*first) {
		return fmt.Errorf("%w: the %s yielded other members on pass %d than on pass 1", source.ErrChanged, name, pass)
	}
	return nil
}
