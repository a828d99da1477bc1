package uploads

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/bound"
)

// TestLongTextMakesBoundedMessagesTheAPIServerAccepts feeds the longest
// names the spec allows and a long WeChat Pay message into stalls: the
// Warning event is accepted by the API server (notes are at most 1 KiB) and
// the condition stays within 2 KiB, cut on a character.
func TestLongTextMakesBoundedMessagesTheAPIServerAccepts(t *testing.T) {
	longMessage := strings.Repeat("上传文件的摘要与文件内容不一致，请检查后重新提交。", 30)
	weChatPay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"code":"PARAM_ERROR","message":"` + longMessage + `"}`))
	}))
	defer weChatPay.Close()
	files := httptest.NewServer(http.NotFoundHandler())
	defer files.Close()

	tests := []struct {
		name   string
		opts   harnessOptions
		setup  func(*upv1.UserPackageUpload)
		reason string
	}{
		{
			name: "a missing object under a 1,024-character key",
			setup: func(u *upv1.UserPackageUpload) {
				u.Spec.Source.S3.Key = strings.Repeat("k/", (1024-len("vip.csv"))/2) + "vip.csv"
			},
			reason: upv1.ReasonSourceNotFound,
		},
		{
			name: "a missing file at a 2,048-character URL",
			setup: func(u *upv1.UserPackageUpload) {
				prefix := files.URL + "/"
				u.Spec.Source = upv1.Source{HTTP: &upv1.HTTPSource{
					URL: prefix + strings.Repeat("p/", (2048-len(prefix)-len("vip.csv"))/2) + "vip.csv", Insecure: true,
				}}
			},
			reason: upv1.ReasonSourceNotFound,
		},
		{
			name:   "a long Chinese message from WeChat Pay",
			opts:   harnessOptions{weChatPayURL: weChatPay.URL},
			setup:  func(*upv1.UserPackageUpload) {},
			reason: upv1.ReasonWeChatPayRejected,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.opts)
			h.put("vip.csv", phoneFile(0, 100))
			u := h.object("vip", "vip.csv")
			tt.setup(u)
			h.create(u)

			u = h.waitStalled("vip", tt.reason)
			event := h.waitEvent("vip", corev1.EventTypeWarning, tt.reason)
			if len(event.Note) > bound.EventNote || !utf8.ValidString(event.Note) {
				t.Errorf("event note of %d bytes (valid UTF-8: %v)", len(event.Note), utf8.ValidString(event.Note))
			}
			for _, c := range u.Status.Conditions {
				if len(c.Message) > bound.Condition || !utf8.ValidString(c.Message) {
					t.Errorf("condition %s: message of %d bytes (valid UTF-8: %v)", c.Type, len(c.Message), utf8.ValidString(c.Message))
				}
			}
		})
	}
}
