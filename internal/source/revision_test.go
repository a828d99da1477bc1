package source

import (
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

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

func TestARevisionIsTheVersionReadWhenItsMostPreciseNameMatches(t *testing.T) {
	at := time.Date(2026, 12, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		name string
		rev  Version
		read Version
		want bool
	}{
		{name: "the same version id is the same version", rev: Version{ETag: "e1", VersionID: "v1"}, read: Version{ETag: `"e1"`, VersionID: "v1"}, want: true},
		{name: "another version id is another version, even with the same bytes", rev: Version{ETag: "e1", VersionID: "v1"}, read: Version{ETag: "e1", VersionID: "v2"}},
		{name: "a listed revision without version id in a versioned bucket matches the current version by ETag", rev: Version{ETag: "e1"}, read: Version{ETag: `"e1"`, VersionID: "v1"}, want: true},
		{name: "a listed revision without version id whose object was replaced does not match", rev: Version{ETag: "e1"}, read: Version{ETag: "e2", VersionID: "v2"}},
		{name: "a file without ETag matches by the time it was modified", rev: Version{LastModified: at}, read: Version{LastModified: at}, want: true},
		{name: "a file without ETag modified since does not match", rev: Version{LastModified: at}, read: Version{LastModified: at.Add(time.Second)}},
	} {
		if got := SameVersion(Revision{Version: tt.rev}, tt.read); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
