package uploads

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

// TestAFileServedWithoutAnETagIsPinnedByItsLastModifiedTime uploads, in
// parts, a file whose server sends Last-Modified but no ETag: the parts must
// be read with If-Unmodified-Since of the time recorded in status.
func TestAFileServedWithoutAnETagIsPinnedByItsLastModifiedTime(t *testing.T) {
	data := phoneFile(0, 1_000) // 33,000 bytes: 3 parts of 16 KiB
	modified := time.Unix(1_700_000_000, 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "vip.csv", modified, bytes.NewReader(data))
	}))
	defer srv.Close()
	h := newHarness(t, harnessOptions{partSize: 16 << 10})
	u := h.object("vip", "unused.csv")
	u.Spec.Source = upv1.Source{HTTP: &upv1.HTTPSource{URL: srv.URL + "/exports/vip.csv", Insecure: true}}
	h.create(u)

	u = h.waitReady("vip")
	if got := u.Status.Source.LastModified; got == nil || !got.Time.Equal(modified) {
		t.Errorf("status.source.lastModified %v, want %v", got, modified)
	}
	if merged, _ := h.sandbox.MergedFile(firstUpload(u).ID); !bytes.Equal(merged, data) {
		t.Error("the reassembled file differs from the source")
	}
}
