// Package parts sends the parts of one upload to WeChat Pay: at most a few
// at a time, within the manager's part memory and the namespace's share of
// it, each acknowledgement written to status as it comes (a bitmap, Set)
// so that no acknowledged part is ever sent again.
package parts

import (
	"encoding/base64"
	"fmt"
	"math/bits"
)

// Set is the set of acknowledged parts of an upload, kept in status as
// a base64 bitmap (bit i-1 for part i): it grows by one bit a part, where a
// list of part numbers could outgrow an etcd object.
type Set struct {
	bits  []byte
	total int64
}

func NewSet(total int64) *Set {
	return &Set{bits: make([]byte, (total+7)/8), total: total}
}

// DecodeSet reads the bitmap of an upload of total parts.
func DecodeSet(encoded string, total int64) (*Set, error) {
	s := NewSet(total)
	if encoded == "" {
		return s, nil
	}
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, fmt.Errorf("status.upload.partsAcked is not base64: %w", err)
	}
	if len(raw) != len(s.bits) {
		return nil, fmt.Errorf("status.upload.partsAcked holds %d bytes, want %d for %d parts", len(raw), len(s.bits), total)
	}
	copy(s.bits, raw)
	return s, nil
}

func (s *Set) Has(part int64) bool { return s.bits[(part-1)/8]&(1<<((part-1)%8)) != 0 }

func (s *Set) Add(part int64) { s.bits[(part-1)/8] |= 1 << ((part - 1) % 8) }

// Count is how many parts are in the set.
func (s *Set) Count() int64 {
	n := 0
	for _, b := range s.bits {
		n += bits.OnesCount8(b)
	}
	return int64(n)
}

// missing lists the parts not in the set, in order.
func (s *Set) Missing() []int64 {
	var parts []int64
	for p := int64(1); p <= s.total; p++ {
		if !s.Has(p) {
			parts = append(parts, p)
		}
	}
	return parts
}

func (s *Set) clone() *Set {
	return &Set{bits: append([]byte(nil), s.bits...), total: s.total}
}

func (s *Set) Encode() string { return base64.StdEncoding.EncodeToString(s.bits) }
