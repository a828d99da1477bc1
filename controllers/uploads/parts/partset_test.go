package parts

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPartSet(t *testing.T) {
	tests := []struct {
		name        string
		total       int64
		add         []int64
		wantMissing []int64
	}{
		{name: "an empty set misses every part", total: 3, wantMissing: []int64{1, 2, 3}},
		{name: "parts across a byte boundary are kept", total: 10, add: []int64{1, 8, 9}, wantMissing: []int64{2, 3, 4, 5, 6, 7, 10}},
		{name: "a full set misses nothing", total: 2, add: []int64{2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSet(tt.total)
			for _, p := range tt.add {
				s.Add(p)
			}
			round, err := DecodeSet(s.Encode(), tt.total)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantMissing, round.Missing()); diff != "" {
				t.Errorf("missing after a round trip (-want +got):\n%s", diff)
			}
			if got := round.Count(); got != int64(len(tt.add)) {
				t.Errorf("count %d, want %d", got, len(tt.add))
			}
		})
	}
}

func TestPartSetOfTenThousandPartsFitsInStatus(t *testing.T) {
	s := NewSet(10_000)
	for p := int64(1); p <= 10_000; p++ {
		s.Add(p)
	}
	if n := len(s.Encode()); n > 2000 {
		t.Errorf("10,000 parts take %d bytes of status", n)
	}
}

func TestDecodePartSetRefusesABitmapOfTheWrongSize(t *testing.T) {
	if _, err := DecodeSet(NewSet(9).Encode(), 30); err == nil {
		t.Error("a 2-byte bitmap was taken for 30 parts")
	}
}
