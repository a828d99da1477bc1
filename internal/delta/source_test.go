package delta

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/crowdpack/crowdpack/internal/linecheck"
	"github.com/crowdpack/crowdpack/internal/source"
)

// pinned is a delta Source over two fake objects, each pinned to the
// version it had when the Source was made.
func pinned(t *testing.T, revision, base *fakeSource, format Format) *Source {
	t.Helper()
	version := func(f *fakeSource) source.Version { _, v, _ := f.Open(context.Background()); return v }
	return NewSource(SourceOpener(revision, version(revision)), SourceOpener(base, version(base)), format, Options{})
}

// readAll reads the whole output of src.
func readAll(t *testing.T, src *Source) ([]byte, source.Version) {
	t.Helper()
	body, v, err := src.Open(context.Background())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer body.Close()
	out, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("read the output: %v", err)
	}
	return out, v
}

func TestSourceYieldsTheSameBytesEveryTime(t *testing.T) {
	revision := &fakeSource{data: []byte(lines("+86 138-0013-8000", "13912345678", "abc", "13700000000"))}
	base := &fakeSource{data: []byte(lines("13800138000"))}
	src := pinned(t, revision, base, raw)

	first, v := readAll(t, src)
	if v.Size != source.UnknownSize {
		t.Errorf("Open's version has size %d, want source.UnknownSize: the output's length is known at its end", v.Size)
	}
	if want := lines(b, c); string(first) != want {
		t.Fatalf("output %q, want %q: the revision's members the base lacks, as MD5 lines", first, want)
	}
	counts := src.Counts()
	if counts.Added != 2 || counts.Unchanged != 1 || counts.Invalid != 1 || counts.BaseMembers != 1 || counts.Left != 0 {
		t.Errorf("counts %+v, want 2 added, 1 unchanged, 1 invalid, 1 base member, 0 left", counts)
	}
	second, _ := readAll(t, src)
	if !bytes.Equal(first, second) {
		t.Errorf("second read %q differs from the first %q", second, first)
	}
}

func TestSourceOpenRangeIsTheSliceOfTheOutput(t *testing.T) {
	revision := &fakeSource{data: []byte(synthetic(0, 300))}
	base := &fakeSource{data: []byte(synthetic(100, 50))}
	src := pinned(t, revision, base, phone)
	whole, _ := readAll(t, src)
	size := int64(len(whole))
	v := source.Version{Size: size}

	cases := []struct {
		name           string
		offset, length int64
	}{
		{"a range from the start", 0, 33},
		{"a range in the middle, across lines", 50, 1000},
		{"the range that ends the output", size - 70, 70},
		{"the whole output", 0, size},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, err := src.OpenRange(context.Background(), v, tc.offset, tc.length)
			if err != nil {
				t.Fatalf("OpenRange: %v", err)
			}
			defer body.Close()
			got, err := io.ReadAll(body)
			if err != nil {
				t.Fatalf("read the range: %v", err)
			}
			if want := whole[tc.offset : tc.offset+tc.length]; !bytes.Equal(got, want) {
				t.Errorf("range [%d, %d) = %q, want %q", tc.offset, tc.offset+tc.length, got, want)
			}
		})
	}
}

func TestSourceOfAChangedFileFailsWithErrChanged(t *testing.T) {
	cases := []struct {
		name   string
		change func(revision, base *fakeSource)
	}{
		{"a base overwritten since it was pinned", func(_, base *fakeSource) { base.changed = true }},
		{"a revision overwritten since it was pinned", func(revision, _ *fakeSource) { revision.changed = true }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			revision := &fakeSource{data: []byte(lines(a, b, c))}
			base := &fakeSource{data: []byte(lines(a))}
			src := pinned(t, revision, base, phone)
			whole, _ := readAll(t, src)
			tc.change(revision, base)

			body, _, err := src.Open(context.Background())
			if err == nil {
				_, err = io.ReadAll(body)
				body.Close()
			}
			if !errors.Is(err, source.ErrChanged) {
				t.Errorf("Open and read: %v, want ErrChanged", err)
			}
			_, err = src.OpenRange(context.Background(), source.Version{Size: int64(len(whole))}, 33, 33)
			if !errors.Is(err, source.ErrChanged) {
				t.Errorf("OpenRange: %v, want ErrChanged", err)
			}
		})
	}
}

func TestSourceOutputShorterThanDigestedFailsWithErrChanged(t *testing.T) {
	src := pinned(t, &fakeSource{data: []byte(lines(a, b))}, &fakeSource{data: []byte(lines(a))}, phone)
	// The output is one line (33 bytes); the digest said 66.
	read := func(offset, length int64) error {
		body, err := src.OpenRange(context.Background(), source.Version{Size: 66}, offset, length)
		if err != nil {
			return err
		}
		defer body.Close()
		_, err = io.ReadAll(body)
		return err
	}
	if err := read(0, 66); !errors.Is(err, source.ErrChanged) {
		t.Errorf("a range past the output's end: %v, want ErrChanged", err)
	}
	if err := read(40, 26); !errors.Is(err, source.ErrChanged) {
		t.Errorf("a range that starts past the output's end: %v, want ErrChanged", err)
	}
}

func TestSourceIsDigestedAndReadAgainAsAFile(t *testing.T) {
	src := pinned(t, &fakeSource{data: []byte(synthetic(0, 3000))}, &fakeSource{data: []byte(synthetic(0, 1000))}, phone)
	opts := source.SplitOptions{MaxLines: 1000}
	check, err := linecheck.New(linecheck.Phone)
	if err != nil {
		t.Fatal(err)
	}
	result, err := source.DigestChunks(context.Background(), src, check, opts)
	if err != nil {
		t.Fatalf("DigestChunks: %v", err)
	}
	if len(result.Chunks) != 2 || result.Version.Size != 2000*33 || result.Report.InvalidLines != 0 {
		t.Fatalf("digested %d bytes into %d chunks with %d invalid lines, want 66000 bytes, 2 chunks, none invalid",
			result.Version.Size, len(result.Chunks), result.Report.InvalidLines)
	}
	for _, chunk := range result.Chunks {
		r, err := source.OpenChunk(context.Background(), src, result.Version, chunk, opts)
		if err != nil {
			t.Fatalf("OpenChunk %d: %v", chunk.Index, err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			t.Errorf("chunk %d read again: %v, want its digest to match", chunk.Index, err)
		}
		r.Close()
	}
}
