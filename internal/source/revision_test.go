package source

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

func TestCountLines(t *testing.T) {
	digits := func(line []byte) bool { return len(line) == 3 && bytes.Trim(line, "0123456789") == nil }
	tests := []struct {
		name          string
		text          string
		skipFirst     bool
		lines, valids int64
	}{
		{name: "empty lines and a CRLF are no lines", text: "123\r\n\r\n\n456\n", lines: 2, valids: 2},
		{name: "a last line without a line ending counts", text: "123\n456", lines: 2, valids: 2},
		{name: "invalid lines count as lines, not members", text: "123\nabc\n", lines: 2, valids: 1},
		{name: "a skipped header row counts as neither", text: "mobile\n123\n", skipFirst: true, lines: 1, valids: 1},
		{name: "an overlong line is a line and never a member", text: strings.Repeat("1", 1<<20) + "\n123\n", lines: 2, valids: 1},
		{name: "an empty file has nothing", text: "", lines: 0, valids: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := countLines(strings.NewReader(tt.text), digits, tt.skipFirst)
			if err != nil {
				t.Fatal(err)
			}
			if got.Lines != tt.lines || got.Members != tt.valids {
				t.Errorf("lines/members %d/%d, want %d/%d", got.Lines, got.Members, tt.lines, tt.valids)
			}
		})
	}
}

func TestTheNewestObjectIsTheOneWrittenLastThenTheGreaterKey(t *testing.T) {
	at := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		a, b minio.ObjectInfo
		want bool
	}{
		{name: "written later is newer", a: minio.ObjectInfo{Key: "a.csv", LastModified: at.Add(time.Second)}, b: minio.ObjectInfo{Key: "b.csv", LastModified: at}, want: true},
		{name: "in the same second the greater key is newer", a: minio.ObjectInfo{Key: "2026-12-02.csv", LastModified: at.Add(300 * time.Millisecond)}, b: minio.ObjectInfo{Key: "2026-12-01.csv", LastModified: at.Add(900 * time.Millisecond)}, want: true},
		{name: "written earlier is not newer", a: minio.ObjectInfo{Key: "z.csv", LastModified: at}, b: minio.ObjectInfo{Key: "a.csv", LastModified: at.Add(time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newer(tt.a, tt.b); got != tt.want {
				t.Errorf("newer = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAVersionsName(t *testing.T) {
	at := time.Date(2026, 12, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		name string
		v    Version
		want string
	}{
		{name: "a versioned object is its version", v: Version{ETag: `"e1"`, VersionID: "v1"}, want: "v1"},
		{name: "an unversioned object is its ETag", v: Version{ETag: `"e1"`}, want: "e1"},
		{name: "a file without ETag is the time it was modified", v: Version{LastModified: at}, want: "2026-12-02T03:04:05Z"},
	} {
		if got := versionName(tt.v); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
