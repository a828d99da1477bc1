package bound

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{name: "a short text is kept whole", in: "not found", max: 256, want: "not found"},
		{name: "a text of exactly the limit is kept whole", in: "abcd", max: 4, want: "abcd"},
		{name: "a long ASCII text is cut and marked", in: "abcdefgh", max: 6, want: "abc…"},
		{name: "a cut inside a Chinese character backs off to its start", in: "上传任务已合并", max: 10, want: "上传…"},
		{name: "a limit too small for the mark gives nothing", in: "abcdef", max: 2, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Text(tt.in, tt.max)
			if got != tt.want {
				t.Errorf("Text(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
			if len(got) > tt.max || !utf8.ValidString(got) {
				t.Errorf("Text(%q, %d) = %q: %d bytes, valid UTF-8 %v", tt.in, tt.max, got, len(got), utf8.ValidString(got))
			}
		})
	}
}

func FuzzText(f *testing.F) {
	f.Add(strings.Repeat("微信支付", 100), 256)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 1<<16 || !utf8.ValidString(s) {
			t.Skip()
		}
		got := Text(s, max)
		if len(got) > max || !utf8.ValidString(got) || (len(s) <= max && got != s) {
			t.Fatalf("Text(%q, %d) = %q", s, max, got)
		}
	})
}
