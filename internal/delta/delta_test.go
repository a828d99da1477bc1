package delta

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"

	"github.com/crowdpack/crowdpack/internal/linecheck"
	"github.com/crowdpack/crowdpack/internal/rawphone"
	"github.com/crowdpack/crowdpack/internal/source"
)

// memOpener is a file in memory.
type memOpener []byte

func (m memOpener) Open(context.Context) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(m)), nil
}

func (m memOpener) Size() int64 { return int64(len(m)) }

// md5Of is the uploaded line of a raw number, without its "\n".
func md5Of(number string) string {
	sum := md5.Sum([]byte(number))
	return hex.EncodeToString(sum[:])
}

var (
	phone   = Format{DataType: linecheck.Phone}
	raw     = Format{DataType: linecheck.Phone, HashMD5: true}
	openid  = Format{DataType: linecheck.OpenID}
	a, b, c = md5Of("13800138000"), md5Of("13912345678"), md5Of("13700000000")
)

func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }

func TestCompute(t *testing.T) {
	cases := []struct {
		name     string
		format   Format
		revision string
		base     string
		want     string
		counts   Counts
	}{
		{
			name:     "members the base lacks are output in the revision's order",
			format:   phone,
			revision: lines(c, a, b),
			base:     lines(a),
			want:     lines(c, b),
			counts:   Counts{Lines: 3, Added: 2, Unchanged: 1, BaseMembers: 1, Passes: 1},
		},
		{
			name:     "an empty base adds every member",
			format:   phone,
			revision: lines(a, b),
			want:     lines(a, b),
			counts:   Counts{Lines: 2, Added: 2, Passes: 1},
		},
		{
			name:   "an empty revision adds nothing and every base member left",
			format: phone,
			base:   lines(a, b, a),
			counts: Counts{BaseMembers: 2, Left: 2, Passes: 1},
		},
		{
			name:     "an unchanged revision adds nothing",
			format:   phone,
			revision: lines(a, b),
			base:     lines(b, a),
			counts:   Counts{Lines: 2, Unchanged: 2, BaseMembers: 2, Passes: 1},
		},
		{
			name:     "members that left are counted once each",
			format:   phone,
			revision: lines(a),
			base:     lines(a, b, c, c),
			counts:   Counts{Lines: 1, Unchanged: 1, BaseMembers: 3, Left: 2, Passes: 1},
		},
		{
			name:     "a member repeated in the revision is output each time, as a full upload sends it",
			format:   phone,
			revision: lines(b, a, b),
			base:     lines(a),
			want:     lines(b, b),
			counts:   Counts{Lines: 3, Added: 2, Unchanged: 1, BaseMembers: 1, Passes: 1},
		},
		{
			name:     "CRLF endings are not part of a member and the output ends lines with LF",
			format:   phone,
			revision: a + "\r\n" + b + "\r\n",
			base:     a + "\n",
			want:     lines(b),
			counts:   Counts{Lines: 2, Added: 1, Unchanged: 1, BaseMembers: 1, Passes: 1},
		},
		{
			name:     "a last line without newline is a member",
			format:   phone,
			revision: a + "\n" + b,
			base:     b,
			want:     lines(a),
			counts:   Counts{Lines: 2, Added: 1, Unchanged: 1, BaseMembers: 1, Passes: 1},
		},
		{
			name:     "empty lines are neither members nor invalid",
			format:   phone,
			revision: "\n" + a + "\n\r\n\n" + b + "\n\n",
			base:     "\n\n" + a + "\n",
			want:     lines(b),
			counts:   Counts{Lines: 2, Added: 1, Unchanged: 1, BaseMembers: 1, Passes: 1},
		},
		{
			name:     "invalid lines are counted by line number and left out",
			format:   phone,
			revision: lines("md5", a, "xyz", b),
			base:     lines(a, "not an md5"),
			want:     lines(b),
			counts:   Counts{Lines: 4, Added: 1, Unchanged: 1, Invalid: 2, InvalidLineNumbers: []int64{1, 3}, BaseMembers: 1, Passes: 1},
		},
		{
			name:     "an upper-case MD5 is another member than its lower-case form",
			format:   phone,
			revision: lines(strings.ToUpper(a), b),
			base:     lines(a, strings.ToUpper(b)),
			want:     lines(strings.ToUpper(a), b),
			counts:   Counts{Lines: 2, Added: 2, BaseMembers: 2, Left: 2, Passes: 1},
		},
		{
			name:     "a skipped header row is left out of both files",
			format:   Format{DataType: linecheck.Phone, SkipHeaderRow: true},
			revision: lines(a, b, c),
			base:     lines(b, a),
			want:     lines(b, c),
			counts:   Counts{Lines: 2, Added: 2, BaseMembers: 1, Left: 1, Passes: 1},
		},
		{
			name:     "raw numbers are compared as the MD5 lines WeChat Pay receives",
			format:   raw,
			revision: lines("+86 138-0013-8000", "13912345678", "13700000000"),
			base:     lines("0086 13800138000", "8613700000000"),
			want:     lines(b),
			counts:   Counts{Lines: 3, Added: 1, Unchanged: 2, BaseMembers: 2, Passes: 1},
		},
		{
			name:     "raw lines that hold no number are invalid by line number",
			format:   raw,
			revision: lines("phone", "13800138000", "1380013800", "13912345678"),
			base:     lines("13800138000"),
			want:     lines(b),
			counts:   Counts{Lines: 4, Added: 1, Unchanged: 1, Invalid: 2, InvalidLineNumbers: []int64{1, 3}, BaseMembers: 1, Passes: 1},
		},
		{
			name:     "raw numbers after a skipped header row keep their line numbers",
			format:   Format{DataType: linecheck.Phone, HashMD5: true, SkipHeaderRow: true},
			revision: lines("phone", "13800138000", "12345"),
			base:     lines("phone", "13800138000"),
			counts:   Counts{Lines: 2, Unchanged: 1, Invalid: 1, InvalidLineNumbers: []int64{3}, BaseMembers: 1, Passes: 1},
		},
		{
			name:     "openids are compared exactly",
			format:   openid,
			revision: lines("oAbC1234567890abcdefghijklmn", "oabc1234567890abcdefghijklmn", "openid"),
			base:     lines("oabc1234567890abcdefghijklmn"),
			want:     lines("oAbC1234567890abcdefghijklmn"),
			counts:   Counts{Lines: 3, Added: 1, Unchanged: 1, Invalid: 1, InvalidLineNumbers: []int64{3}, BaseMembers: 1, Passes: 1},
		},
		{
			name:     "an overlong line is one invalid line",
			format:   openid,
			revision: lines(strings.Repeat("A1", 40_000), "oabc1234567890abcdefghijklmn"),
			want:     lines("oabc1234567890abcdefghijklmn"),
			counts:   Counts{Lines: 2, Added: 1, Invalid: 1, InvalidLineNumbers: []int64{1}, Passes: 1},
		},
		{
			name:     "an overlong last line without newline is one invalid line",
			format:   raw,
			revision: "13800138000\n" + strings.Repeat("1", 3*readBufferSize+5),
			want:     lines(a),
			counts:   Counts{Lines: 2, Added: 1, Invalid: 1, InvalidLineNumbers: []int64{2}, Passes: 1},
		},
		{
			name:     "a line that fills the read buffer exactly is overlong, and the next one counts",
			format:   raw,
			revision: strings.Repeat(" ", readBufferSize) + "\n13800138000\r\n",
			want:     lines(a),
			counts:   Counts{Lines: 2, Added: 1, Invalid: 1, InvalidLineNumbers: []int64{1}, Passes: 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, maxKeys := range []int{0, 2, 3} {
				var out bytes.Buffer
				counts, err := Compute(context.Background(), memOpener(tc.revision), memOpener(tc.base), tc.format, &out, Options{maxKeys: maxKeys})
				if err != nil {
					t.Fatalf("maxKeys %d: Compute: %v", maxKeys, err)
				}
				if out.String() != tc.want {
					t.Errorf("maxKeys %d: output\n%q, want\n%q", maxKeys, out.String(), tc.want)
				}
				want := tc.counts
				want.Passes = counts.Passes // depends on maxKeys; compared below
				if diff := cmp.Diff(want, counts); diff != "" {
					t.Errorf("maxKeys %d: counts (-want +got):\n%s", maxKeys, diff)
				}
				if maxKeys == 0 && counts.Passes != tc.counts.Passes {
					t.Errorf("passes = %d, want %d", counts.Passes, tc.counts.Passes)
				}
			}
		})
	}
}

// naive is the delta computed the obvious way, in memory: the reference
// the fuzz test compares Compute with.
func naive(revision, base string, format Format) (string, Counts) {
	members := func(file string, visit func(m string, lineNo int64)) {
		ls := strings.Split(file, "\n")
		first := 0
		if format.SkipHeaderRow {
			first = 1
		}
		for i := first; i < len(ls); i++ {
			line := strings.TrimSuffix(ls[i], "\r")
			if line == "" {
				continue
			}
			m, ok := line, false
			if format.HashMD5 {
				var dst [rawphone.LineLen]byte
				if ok = rawphone.HashLine(&dst, []byte(line)); ok {
					m = string(dst[:32])
				}
			} else {
				ok = linecheck.Valid(format.DataType, []byte(line))
			}
			if !ok {
				m = ""
			}
			visit(m, int64(i+1))
		}
	}
	var counts Counts
	inBase := map[string]bool{}
	members(base, func(m string, _ int64) {
		if m != "" {
			inBase[m] = false
		}
	})
	var out strings.Builder
	members(revision, func(m string, lineNo int64) {
		counts.Lines++
		switch _, ok := inBase[m]; {
		case m == "":
			counts.Invalid++
			if len(counts.InvalidLineNumbers) < linecheck.MaxInvalidLineNumbers {
				counts.InvalidLineNumbers = append(counts.InvalidLineNumbers, lineNo)
			}
		case ok:
			counts.Unchanged++
			inBase[m] = true
		default:
			counts.Added++
			out.WriteString(m + "\n")
		}
	})
	counts.BaseMembers = int64(len(inBase))
	for _, seen := range inBase {
		if !seen {
			counts.Left++
		}
	}
	return out.String(), counts
}

func FuzzCompute(f *testing.F) {
	f.Add(lines(c, a, b), lines(a), uint8(0), uint8(0))
	f.Add(lines("13800138000", "+86 139 1234 5678", "x"), lines("8613800138000"), uint8(1), uint8(3))
	f.Add("oabc123\r\nOPENID1\n\n", "header\noabc123", uint8(6), uint8(2))
	formats := []Format{phone, raw, openid}
	f.Fuzz(func(t *testing.T, revision, base string, how, maxKeys uint8) {
		format := formats[int(how)%len(formats)]
		format.SkipHeaderRow = how&4 != 0
		want, wantCounts := naive(revision, base, format)
		var out bytes.Buffer
		keys := int(maxKeys % 8) // 0: as the budget allows; 2 to 7: many passes
		if keys == 1 {
			keys = 0
		}
		counts, err := Compute(context.Background(), memOpener(revision), memOpener(base), format, &out, Options{maxKeys: keys})
		if err != nil {
			t.Fatalf("Compute: %v", err)
		}
		if out.String() != want {
			t.Errorf("output\n%q, want\n%q", out.String(), want)
		}
		wantCounts.Passes = counts.Passes
		if diff := cmp.Diff(wantCounts, counts); diff != "" {
			t.Errorf("counts (-want +got):\n%s", diff)
		}
	})
}

// synthetic makes a file of n MD5 lines of the numbers from 13000000000+first.
func synthetic(first, n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(md5Of(strconv.Itoa(13_000_000_000+first+i)) + "\n")
	}
	return b.String()
}

func TestTinyBudgetGivesTheSameBytes(t *testing.T) {
	revision := synthetic(0, 20_000)
	base := synthetic(5_000, 20_000) // 15,000 shared, 5,000 added, 5,000 left
	var want bytes.Buffer
	wantCounts, err := Compute(context.Background(), memOpener(revision), memOpener(base), phone, &want, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if wantCounts.Passes != 1 || wantCounts.Added != 5_000 || wantCounts.Left != 5_000 || wantCounts.Unchanged != 15_000 {
		t.Fatalf("with the default budget: %+v", wantCounts)
	}
	for _, maxKeys := range []int{10_000, 1_000, 97} {
		var got bytes.Buffer
		counts, err := Compute(context.Background(), memOpener(revision), memOpener(base), phone, &got, Options{maxKeys: maxKeys})
		if err != nil {
			t.Fatalf("maxKeys %d: %v", maxKeys, err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("maxKeys %d: %d output bytes differ from the one-pass %d", maxKeys, got.Len(), want.Len())
		}
		if counts.Passes < 20_000/maxKeys {
			t.Errorf("maxKeys %d: %d passes, want at least %d", maxKeys, counts.Passes, 20_000/maxKeys)
		}
		counts.Passes = 1
		if diff := cmp.Diff(wantCounts, counts); diff != "" {
			t.Errorf("maxKeys %d: counts (-one pass +many):\n%s", maxKeys, diff)
		}
	}
}

func TestBudgetTooSmallFails(t *testing.T) {
	revision := memOpener(synthetic(0, 1000))
	_, err := Compute(context.Background(), revision, revision, phone, io.Discard, Options{Budget: overhead + 1000})
	if !errors.Is(err, ErrBudget) {
		t.Fatalf("Compute with a budget below its overhead: %v, want ErrBudget", err)
	}
}

// changing yields other bytes on every Open after the first.
type changing struct {
	memOpener
	opened int
}

func (c *changing) Open(ctx context.Context) (io.ReadCloser, error) {
	c.opened++
	if c.opened > 1 {
		alt := bytes.Clone(c.memOpener)
		copy(alt, strings.Repeat("f", 32))
		return io.NopCloser(bytes.NewReader(alt)), nil
	}
	return c.memOpener.Open(ctx)
}

func TestFileThatChangesBetweenPassesFails(t *testing.T) {
	base := &changing{memOpener: memOpener(synthetic(0, 100))}
	_, err := Compute(context.Background(), memOpener(synthetic(0, 100)), base, phone, io.Discard, Options{maxKeys: 10})
	if !errors.Is(err, source.ErrChanged) {
		t.Fatalf("Compute over a base that changed: %v, want ErrChanged", err)
	}
}

// short yields fewer bytes than its size.
type short struct{ memOpener }

func (s short) Size() int64 { return int64(len(s.memOpener)) + 1 }

func TestTornReadFails(t *testing.T) {
	_, err := Compute(context.Background(), short{memOpener(lines(a))}, memOpener(""), phone, io.Discard, Options{})
	if err == nil || !strings.Contains(err.Error(), "torn read") {
		t.Fatalf("Compute over a short read: %v, want a torn read", err)
	}
}

func TestReaderYieldsTheOutputAndCounts(t *testing.T) {
	r := NewReader(context.Background(), memOpener(lines(a, b, c)), memOpener(lines(b)), phone, Options{maxKeys: 2})
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != lines(a, c) {
		t.Errorf("read %q, want %q", got, lines(a, c))
	}
	if counts := r.Counts(); counts.Added != 2 || counts.Unchanged != 1 {
		t.Errorf("counts %+v", counts)
	}
}

func TestReaderClosedEarlyStopsTheComputation(t *testing.T) {
	big := memOpener(synthetic(0, 50_000))
	r := NewReader(context.Background(), big, memOpener(""), phone, Options{})
	if _, err := r.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentComputationsShareOnePool(t *testing.T) {
	revision := memOpener(synthetic(0, 3_000))
	base := memOpener(synthetic(1_000, 3_000))
	// Each computation plans for its base's most members, about 100 KiB
	// more than the overhead: a pool of two such grants runs two at once.
	want, _ := planFor(DefaultBudget, revision.Size(), base.Size(), phone, 0)
	pool := NewPool(2 * want.grant)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			var out bytes.Buffer
			counts, err := Compute(context.Background(), revision, base, phone, &out, Options{Pool: pool})
			if err != nil || counts.Added != 1_000 || out.Len() != 1_000*33 {
				t.Errorf("Compute: %+v, %d bytes, %v", counts, out.Len(), err)
			}
		})
	}
	wg.Wait()
	if pool.held > pool.budget {
		t.Errorf("the pool holds %d bytes of arenas, over its budget of %d", pool.held, pool.budget)
	}
}

func TestCancelledComputationStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Compute(ctx, memOpener(lines(a)), memOpener(lines(b)), phone, io.Discard, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Compute after cancel: %v, want context.Canceled", err)
	}
}

func TestSortKeysSortsAndDropsRepeatedKeys(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 4096, 100_000} {
		keys := make([]key, n)
		for i := range keys {
			keys[i] = keyOf([]byte(strconv.Itoa(i % (n/2 + 1))))
			if i%7 == 0 {
				keys[i].h >>= 20 // not spread over the whole range
			}
		}
		want := slices.Clone(keys)
		slices.SortFunc(want, key.less)
		want = slices.Compact(want)
		if got := sortKeys(keys); !slices.Equal(got, want) {
			t.Errorf("%d keys: sortKeys differs from slices.SortFunc and Compact", n)
		}
	}
}

// fakeSource is one object in memory; it reports ErrChanged once changed.
type fakeSource struct {
	data    []byte
	changed bool
}

func (f *fakeSource) Open(context.Context) (io.ReadCloser, source.Version, error) {
	return io.NopCloser(bytes.NewReader(f.data)), source.Version{Size: int64(len(f.data)), ETag: "e"}, nil
}

func (f *fakeSource) OpenRange(_ context.Context, v source.Version, offset, length int64) (io.ReadCloser, error) {
	if f.changed {
		return nil, source.ErrChanged
	}
	return io.NopCloser(bytes.NewReader(f.data[offset : offset+length])), nil
}

func TestSourceOpenerReadsThePinnedVersion(t *testing.T) {
	revision, base := &fakeSource{data: []byte(lines(a, b))}, &fakeSource{data: []byte(lines(a))}
	version := func(f *fakeSource) source.Version { _, v, _ := f.Open(context.Background()); return v }
	rev, bas := SourceOpener(revision, version(revision)), SourceOpener(base, version(base))
	var out bytes.Buffer
	if _, err := Compute(context.Background(), rev, bas, phone, &out, Options{}); err != nil || out.String() != lines(b) {
		t.Fatalf("Compute: %q, %v; want %q", out.String(), err, lines(b))
	}
	base.changed = true
	if _, err := Compute(context.Background(), rev, bas, phone, io.Discard, Options{}); !errors.Is(err, source.ErrChanged) {
		t.Errorf("Compute over a base that changed: %v, want ErrChanged", err)
	}
	empty := &fakeSource{}
	if _, err := Compute(context.Background(), SourceOpener(empty, version(empty)), bas, phone, io.Discard, Options{}); !errors.Is(err, source.ErrChanged) {
		t.Errorf("Compute of an empty revision over a changed base: %v, want ErrChanged", err)
	}
}

func TestReadErrorsArePassedOn(t *testing.T) {
	_, err := Compute(context.Background(), failing{}, memOpener(""), raw, io.Discard, Options{})
	if !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Compute over a failing read: %v, want %v", err, io.ErrClosedPipe)
	}
}

// failing yields a line, then fails.
type failing struct{}

func (failing) Open(context.Context) (io.ReadCloser, error) {
	return io.NopCloser(io.MultiReader(strings.NewReader("13800138000\n1391234"), iotest.ErrReader(io.ErrClosedPipe))), nil
}

func (failing) Size() int64 { return 100 }
