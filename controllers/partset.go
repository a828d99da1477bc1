package controllers

import (
	"encoding/base64"
	"fmt"
	"math/bits"
)

// partSet is the set of acknowledged parts of an upload, kept in status as
// a base64 bitmap (bit i-1 for part i): it grows by one bit a part, where a
// list of part numbers could outgrow an etcd object.
type partSet struct {
	bits  []byte
	total int64
}

func newPartSet(total int64) *partSet {
	return &partSet{bits: make([]byte, (total+7)/8), total: total}
}

// decodePartSet reads the bitmap of an upload of total parts.
func decodePartSet(encoded string, total int64) (*partSet, error) {
	s := newPartSet(total)
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

func (s *partSet) has(part int64) bool { return s.bits[(part-1)/8]&(1<<((part-1)%8)) != 0 }

func (s *partSet) add(part int64) { s.bits[(part-1)/8] |= 1 << ((part - 1) % 8) }

// count is how many parts are in the set.
func (s *partSet) count() int64 {
	n := 0
	for _, b := range s.bits {
		n += bits.OnesCount8(b)
	}
	return int64(n)
}

// missing lists the parts not in the set, in order.
func (s *partSet) missing() []int64 {
	var parts []int64
	for p := int64(1); p <= s.total; p++ {
		if !s.has(p) {
			parts = append(parts, p)
		}
	}
	return parts
}

func (s *partSet) clone() *partSet {
	return &partSet{bits: append([]byte(nil), s.bits...), total: s.total}
}

func (s *partSet) encode() string { return base64.StdEncoding.EncodeToString(s.bits) }
