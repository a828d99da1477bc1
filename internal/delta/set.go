package delta

import (
	"math"
	"math/bits"
	"slices"
)

// span is a range of key values, by h: [lo, hi), or [lo, 2^64) when not
// bounded.
type span struct {
	lo, hi  uint64
	bounded bool
}

func (s span) has(k key) bool {
	return k.h >= s.lo && (!s.bounded || k.h < s.hi)
}

// set is the base's members of one span, sorted and distinct, with a
// directory: keys spread evenly over h, so the keys whose h has the same
// top bits within the span are few (four to eight on average) and found
// from one directory entry.
type set struct {
	span  span
	keys  []key
	dir   []uint32 // keys[dir[e]:dir[e+1]] have (h-lo)>>shift == e
	shift uint
	seen  []uint64 // bit i: the revision has keys[i]
}

// sortKeys sorts keys and drops repeated ones. Keys spread evenly over h,
// so it first spreads them in place over 256 buckets by the top bits of h
// that vary (American flag sort), then sorts each bucket, small enough to
// stay in the CPU's caches.
func sortKeys(keys []key) []key {
	if len(keys) < 4096 {
		slices.SortFunc(keys, key.less)
		return slices.Compact(keys)
	}
	lo, hi := keys[0].h, keys[0].h
	for _, k := range keys {
		lo, hi = min(lo, k.h), max(hi, k.h)
	}
	shift := uint(max(0, bits.Len64(hi-lo)-8))
	digit := func(k key) int { return int((k.h - lo) >> shift) }
	var start, next [257]int
	for _, k := range keys {
		start[digit(k)+1]++
	}
	for d := 1; d <= 256; d++ {
		start[d] += start[d-1]
	}
	next = start
	for d := range 256 {
		for next[d] < start[d+1] {
			e := digit(keys[next[d]])
			if e == d {
				next[d]++
				continue
			}
			keys[next[d]], keys[next[e]] = keys[next[e]], keys[next[d]]
			next[e]++
		}
	}
	for d := range 256 {
		slices.SortFunc(keys[start[d]:start[d+1]], key.less)
	}
	return slices.Compact(keys)
}

// build makes a set of keys (sorted and distinct) of span sp, reusing
// dir's and seen's arrays.
func build(sp span, keys []key, dir []uint32, seen []uint64) *set {
	s := &set{span: sp, keys: keys}
	width := uint64(math.MaxUint64) - sp.lo // the span's last h - lo
	if sp.bounded {
		width = sp.hi - 1 - sp.lo
	}
	dirBits := max(1, bits.Len(uint(len(keys)))-3) // at most max(2, len/4) entries
	s.shift = uint(max(0, bits.Len64(width)-dirBits))
	entries := int(width>>s.shift) + 1
	s.dir = dir[:entries+1]
	e := 0
	for i, k := range keys {
		for ke := int((k.h - sp.lo) >> s.shift); e <= ke; e++ {
			s.dir[e] = uint32(i)
		}
	}
	for ; e <= entries; e++ {
		s.dir[e] = uint32(len(keys))
	}
	s.seen = seen[:(len(keys)+63)/64]
	clear(s.seen)
	return s
}

// entry returns the range of keys where k would be. k must be in the span.
func (s *set) entry(k key) (from, to uint32) {
	e := (k.h - s.span.lo) >> s.shift
	return s.dir[e], s.dir[e+1]
}

// findIn returns the index of k in keys[from:to], k's entry, or -1.
func (s *set) findIn(k key, from, to uint32) int {
	for i, end := int(from), int(to); i < end; i++ {
		switch x := s.keys[i]; {
		case x.h < k.h:
		case x == k:
			return i
		case x.h > k.h:
			return -1 // sorted: k is not further on
		}
	}
	return -1
}

// markSeen notes that the revision has keys[i].
func (s *set) markSeen(i int) {
	s.seen[i/64] |= 1 << (i % 64)
}

// unseen counts the keys the revision does not have.
func (s *set) unseen() int64 {
	n := int64(len(s.keys))
	for _, w := range s.seen {
		n -= int64(bits.OnesCount64(w))
	}
	return n
}
