package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/crowdpack/crowdpack/internal/rawphone"
	"github.com/crowdpack/crowdpack/internal/source"
)

// demoLines is the size of the export hack/demo.sh uploads.
const demoLines = 1_200_000

func TestTheRawExportIsAHeaderRowAndTheNumbersInEveryForm(t *testing.T) {
	var export bytes.Buffer
	if err := writeRawExport(&export, demoLines); err != nil {
		t.Fatal(err)
	}
	var size byteCounter
	if err := writeRawExport(&size, demoLines); err != nil {
		t.Fatal(err)
	}
	if int64(size) != int64(export.Len()) {
		t.Errorf("the size put-raw-export announces is %d, the export has %d bytes", size, export.Len())
	}
	sc := bufio.NewScanner(&export)
	if !sc.Scan() || sc.Text() != "mobile" {
		t.Fatalf("line 1 is %q, want the header row mobile", sc.Text())
	}
	lines, forms := 1, map[string]int{}
	for ; sc.Scan(); lines++ {
		i := lines - 1 // the number's index in the export
		forms[shape(sc.Text())]++
		var got [rawphone.LineLen]byte
		sum := md5.Sum([]byte(demoNumber(i)))
		if !rawphone.HashLine(&got, sc.Bytes()) || string(got[:32]) != hex.EncodeToString(sum[:]) {
			t.Fatalf("line %d %q is not read as number %s", lines+1, sc.Text(), demoNumber(i))
		}
	}
	if lines != demoLines+1 {
		t.Errorf("the export has %d lines, want %d (a header row and %d numbers)", lines, demoLines+1, demoLines)
	}
	for _, f := range rawForms {
		if forms[shape(f)] != demoLines/len(rawForms) {
			t.Errorf("%d lines have the form of %q, want %d", forms[shape(f)], f, demoLines/len(rawForms))
		}
	}
}

// shape is a line's form: its digits replaced by 9.
func shape(line string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return '9'
		}
		return r
	}, line)
}

// The demo's object (the raw-export sample: default maxLinesPerUpload,
// skipHeaderRow, hashing MD5) must cut the export into the 3 uploads the
// demo announces; this runs the operator's own digest over it.
func TestTheOperatorCutsTheExportIntoThreeUploads(t *testing.T) {
	var export bytes.Buffer
	if err := writeRawExport(&export, demoLines); err != nil {
		t.Fatal(err)
	}
	got, err := source.DigestChunks(context.Background(), memSource(export.Bytes()), nil,
		source.SplitOptions{MaxLines: 500_000, SkipHeaderRow: true, HashMD5: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.Report.InvalidLines != 0 || got.Report.Lines != demoLines {
		t.Errorf("report: %d lines, %d invalid; want %d valid", got.Report.Lines, got.Report.InvalidLines, demoLines)
	}
	want := []struct{ first, last, lines int64 }{{2, 500_001, 500_000}, {500_002, 1_000_001, 500_000}, {1_000_002, 1_200_001, 200_000}}
	if len(got.Chunks) != len(want) {
		t.Fatalf("%d chunks, want %d", len(got.Chunks), len(want))
	}
	for i, w := range want {
		c := got.Chunks[i]
		if c.FirstLine != w.first || c.LastLine != w.last || c.Lines != w.lines || c.Size != w.lines*rawphone.LineLen {
			t.Errorf("chunk %d: lines %d–%d, %d uploaded, %d bytes; want lines %d–%d, %d uploaded, %d bytes",
				c.Index, c.FirstLine, c.LastLine, c.Lines, c.Size, w.first, w.last, w.lines, w.lines*rawphone.LineLen)
		}
	}
}

// memSource serves an export from memory, as one unchanging version.
type memSource []byte

func (m memSource) Open(context.Context) (io.ReadCloser, source.Version, error) {
	return io.NopCloser(bytes.NewReader(m)), source.Version{Size: int64(len(m)), ETag: "demo"}, nil
}

func (m memSource) OpenRange(_ context.Context, _ source.Version, offset, length int64) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(m[offset : offset+length])), nil
}

func TestCheckMerged(t *testing.T) {
	const lines = 10
	md5Lines := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			sum := md5.Sum([]byte(demoNumber(i)))
			b.WriteString(hex.EncodeToString(sum[:]) + "\n")
		}
		return b.String()
	}
	tests := []struct {
		name  string
		files []string
		ok    bool
	}{
		{"the MD5 lines of every number, cut into uploads, pass", []string{md5Lines(0, 4), md5Lines(4, 8), md5Lines(8, 10)}, true},
		{"uploads in the wrong order fail", []string{md5Lines(4, 8), md5Lines(0, 4), md5Lines(8, 10)}, false},
		{"a missing number fails", []string{md5Lines(0, 4), md5Lines(5, 10)}, false},
		{"no upload at all fails", nil, false},
		{"a missing last upload fails", []string{md5Lines(0, 4), md5Lines(4, 8)}, false},
		{"raw numbers instead of their MD5 fail", []string{demoNumber(0) + "\n"}, false},
		{"an MD5 not of the number fails", []string{fmt.Sprintf("%x\n", sha256.Sum256([]byte(demoNumber(0))))[:32] + "\n"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []string
			mux := http.NewServeMux()
			for i, f := range tt.files {
				id := fmt.Sprintf("upload%d", i+1)
				ids = append(ids, id)
				mux.HandleFunc("GET /sandbox/uploads/"+id+"/file", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, f) })
			}
			srv := httptest.NewServer(mux)
			defer srv.Close()
			if err := checkMerged(srv.URL, lines, ids); (err == nil) != tt.ok {
				t.Errorf("checkMerged: %v, want success %v", err, tt.ok)
			}
		})
	}
}
