package uploadplan

import (
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

func TestChunkName(t *testing.T) {
	cases := []struct {
		name         string
		stem         string
		index        int32
		count        int
		want         string
		wantLenLimit bool
	}{
		{"indexes are padded to three digits", "vip", 2, 3, "vip-002.csv", false},
		{"and to the digits of the count", "vip", 7, 1200, "vip-0007.csv", false},
		{"a long stem is cut to fit 128 characters", strings.Repeat("a", 130), 1, 2, strings.Repeat("a", 120) + "-001.csv", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ChunkName(tc.stem, tc.index, tc.count)
			if got != tc.want {
				t.Errorf("ChunkName = %q, want %q", got, tc.want)
			}
			if tc.wantLenLimit && len(got) != 128 {
				t.Errorf("len = %d, want 128", len(got))
			}
		})
	}
}

func TestSplitOptions(t *testing.T) {
	if got := SplitOptions(&upv1.FileSpec{}); got.MaxLines != RecommendedMaxLines || got.HashMD5 || got.SkipHeaderRow {
		t.Errorf("defaults: %+v", got)
	}
	got := SplitOptions(&upv1.FileSpec{MaxLinesPerUpload: ptr.To[int32](0), Hashing: upv1.HashingMD5, SkipHeaderRow: true})
	if got.MaxLines != 0 || !got.HashMD5 || !got.SkipHeaderRow {
		t.Errorf("never split, hashed, header skipped: %+v", got)
	}
}
