package uploads

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/secrets"
	"github.com/crowdpack/crowdpack/internal/sandbox"
)

// Secrets of the HTTP source tests, which must never show.
const (
	httpBearerToken = "crowdpack-test-bearer-7f3a9c1e5b2d4f60"
	presignedQuery  = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=deadbeefcafe0123456789&sig=deadbeefsas"
)

// csvServer serves data at /exports/vip.csv (ranges and If-Match included,
// as object storage does) to requests bearing httpBearerToken; anything else
// is 404, and a request without the token 401.
func csvServer(tls bool, data []byte) *httptest.Server {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+httpBearerToken {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/exports/vip.csv" || data == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "vip.csv", time.Unix(1_700_000_000, 0), bytes.NewReader(data))
	})
	if tls {
		return httptest.NewTLSServer(handler)
	}
	return httptest.NewServer(handler)
}

// httpObject is a UserPackageUpload of a presigned URL on srv, with the
// bearer token in a Secret.
func (h *harness) httpObject(name string, srv *httptest.Server, path string) *upv1.UserPackageUpload {
	h.t.Helper()
	h.secret("http-token", map[string][]byte{secrets.KeyToken: []byte(httpBearerToken)})
	u := h.object(name, "unused.csv")
	u.Spec.Source = upv1.Source{HTTP: &upv1.HTTPSource{
		URL:       srv.URL + path + "?" + presignedQuery,
		SecretRef: &upv1.SecretReference{Name: "http-token"},
	}}
	if srv.TLS != nil {
		pemCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		h.secret("http-ca", map[string][]byte{secrets.KeyCACert: pemCA})
		u.Spec.Source.HTTP.CertSecretRef = &upv1.SecretReference{Name: "http-ca"}
	} else {
		u.Spec.Source.HTTP.Insecure = true
	}
	return u
}

func TestAPresignedHTTPSSourceIsUploadedWithoutShowingItsQueryOrToken(t *testing.T) {
	data := phoneFile(0, 1_000)
	srv := csvServer(true, data)
	defer srv.Close()
	h := newHarness(t, harnessOptions{partSize: 16 << 10})
	h.create(h.httpObject("vip", srv, "/exports/vip.csv"))

	u := h.waitReady("vip")
	if merged, _ := h.sandbox.MergedFile(firstUpload(u).ID); !bytes.Equal(merged, data) {
		t.Error("the reassembled file differs from the source")
	}
	if n := h.sandbox.CountSucceeded(sandbox.EndpointInitiate); n != 1 {
		t.Errorf("initiate succeeded %d times, want once", n)
	}
	if got := firstUpload(u).Filename; got != "vip.csv" {
		t.Errorf("filename %q, want vip.csv (the URL path's base name, without the query)", got)
	}
	assertShowsNoSecret(t, h, "vip")
}

func TestAMissingPresignedHTTPObjectStallsWithoutShowingItsQueryOrToken(t *testing.T) {
	srv := csvServer(false, nil)
	defer srv.Close()
	h := newHarness(t, harnessOptions{})
	h.create(h.httpObject("vip", srv, "/exports/vip.csv"))

	u := h.waitStalled("vip", upv1.ReasonSourceNotFound)
	h.waitEvent("vip", corev1.EventTypeWarning, upv1.ReasonSourceNotFound)
	if msg := findCondition(u, upv1.ConditionReady).Message; !strings.Contains(msg, srv.URL+"/exports/vip.csv") {
		t.Errorf("the stall does not name the URL (without its query): %s", msg)
	}
	if n := len(h.sandbox.Records()); n != 0 {
		t.Errorf("the sandbox saw %d calls for a missing file", n)
	}
	assertShowsNoSecret(t, h, "vip")
}

// assertShowsNoSecret checks an object's status and events at once; the
// suite checks everything again at its end (checkNoSecretLeaks).
func assertShowsNoSecret(t *testing.T, h *harness, name string) {
	t.Helper()
	raw, err := json.Marshal(h.get(name).Status)
	must(t, err)
	texts := map[string]string{"status": string(raw)}
	for i, e := range h.events(name) {
		texts[fmt.Sprintf("event %d", i)] = e.Note
	}
	for where, text := range texts {
		if leak := findSecret(text); leak != "" {
			t.Errorf("%s shows %s:\n%s", where, leak, text)
		}
	}
}

// secretWindow is how long a run of a private key's base64 must be to count
// as a leak.
const secretWindow = 32

// leakNeedles are the strings nothing visible may contain, with what they are.
func leakNeedles() map[string]string {
	needles := map[string]string{
		storage.SecretKey:                "the MinIO secret key",
		httpBearerToken:                  "the HTTP source's bearer token",
		"WECHATPAY-BRAND-SHA256-RSA2048": "an Authorization header",
		`signature="`:                    "an Authorization header's signature",
		"Authorization":                  "an Authorization header",
		"X-Amz-Signature":                "a presigned URL's signature",
		"X-Amz-Credential":               "a presigned URL's credential",
		"AKIAIOSFODNN7EXAMPLE":           "a presigned URL's access key",
		"sig=":                           "a SAS signature",
		"deadbeefcafe0123456789":         "a presigned URL's signature value",
	}
	// The raw numbers of the hashing tests (split_test.go): personal data.
	for _, n := range rawNumbers {
		needles[n.line], needles[n.digits] = "a raw mobile number", "a raw mobile number's digits"
	}
	for _, line := range rawInvalid {
		needles[line] = "an invalid raw line"
	}
	return needles
}

// keyWindows are the secretWindow-long runs of the brand private key's
// base64: of its PEM body, and of the PEM as a Secret's data shows it.
var keyWindows = sync.OnceValue(func() map[string]bool {
	keyPEM := identity.SecretData()["apiclient_key.pem"]
	block, _ := pem.Decode(keyPEM)
	bodies := []string{
		base64.StdEncoding.EncodeToString(block.Bytes),
		base64.StdEncoding.EncodeToString(keyPEM),
	}
	windows := map[string]bool{}
	for _, b := range bodies {
		for i := 0; i+secretWindow <= len(b); i++ {
			windows[b[i:i+secretWindow]] = true
		}
	}
	return windows
})

// findSecret says which secret text shows, or "".
func findSecret(text string) string {
	for needle, what := range leakNeedles() {
		if needle != "" && strings.Contains(text, needle) {
			return fmt.Sprintf("%s (%q)", what, needle)
		}
	}
	windows := keyWindows()
	for i := 0; i+secretWindow <= len(text); i++ {
		if windows[text[i:i+secretWindow]] {
			return fmt.Sprintf("part of the brand private key (%q)", text[i:i+secretWindow])
		}
	}
	return ""
}

// checkNoSecretLeaks runs after every test: what the managers logged, every
// Event (events.k8s.io and core) and every UserPackageUpload's status must
// not show a secret.
func checkNoSecretLeaks(ctx context.Context) error {
	texts := map[string]string{"the managers' logs": managerLogs.String()}
	var events eventsv1.EventList
	if err := kube.Client.List(ctx, &events); err != nil {
		return err
	}
	for _, e := range events.Items {
		raw, _ := json.Marshal(e)
		texts[fmt.Sprintf("event %s/%s", e.Namespace, e.Name)] = string(raw)
	}
	var coreEvents corev1.EventList
	if err := kube.Client.List(ctx, &coreEvents); err != nil {
		return err
	}
	for _, e := range coreEvents.Items {
		raw, _ := json.Marshal(e)
		texts[fmt.Sprintf("core event %s/%s", e.Namespace, e.Name)] = string(raw)
	}
	var uploads upv1.UserPackageUploadList
	if err := kube.Client.List(ctx, &uploads); err != nil {
		return err
	}
	for _, u := range uploads.Items {
		raw, _ := json.Marshal(u.Status)
		texts[fmt.Sprintf("status of %s/%s", u.Namespace, u.Name)] = string(raw)
	}
	var leaks []string
	for where, text := range texts {
		if leak := findSecret(text); leak != "" {
			leaks = append(leaks, fmt.Sprintf("%s shows %s", where, leak))
		}
	}
	if len(leaks) > 0 {
		return fmt.Errorf("secrets leaked:\n  %s", strings.Join(leaks, "\n  "))
	}
	fmt.Printf("no secret in %d bytes of manager logs, %d events, %d core events and %d statuses\n",
		len(texts["the managers' logs"]), len(events.Items), len(coreEvents.Items), len(uploads.Items))
	return nil
}

// TestTheLeakCheckFindsEachSecret makes sure the end-of-suite check would
// catch what it looks for.
func TestTheLeakCheckFindsEachSecret(t *testing.T) {
	requireCluster(t)
	keyPEM := string(identity.SecretData()["apiclient_key.pem"])
	line := strings.Split(keyPEM, "\n")[5]
	cases := map[string]string{
		"a line of the private key PEM": "loaded key " + line[10:50] + " ok",
		"the presigned URL":             "get https://s3.example.com/vip.csv?" + presignedQuery,
		"the bearer token":              "token " + httpBearerToken,
		"the MinIO secret key":          `{"secretkey":"` + storage.SecretKey + `"}`,
		"an Authorization header":       `Authorization: WECHATPAY-BRAND-SHA256-RSA2048 brand_id="1",signature="abc"`,
		"a raw mobile number":           "invalid line: " + rawNumbers[1].line,
		"an invalid raw line":           "line 3 is " + rawInvalid[0],
	}
	for name, text := range cases {
		if findSecret(text) == "" {
			t.Errorf("%s is not found in %q", name, text)
		}
	}
	if leak := findSecret("Ready=True Succeeded: upload 1 initiated: 21 parts of 16384 bytes; get http://127.0.0.1:1234/exports/vip.csv"); leak != "" {
		t.Errorf("a clean message is reported as showing %s", leak)
	}
}

// TestTheManagerCachesNoSecretData applies a Secret the way kubectl apply
// does — with its whole content in an annotation — and reads the manager's
// own cache: it must hold the Secret's name, not its data.
func TestTheManagerCachesNoSecretData(t *testing.T) {
	requireCluster(t)
	h := newHarness(t, harnessOptions{})
	applied := map[string][]byte{"token": []byte("s3cr3t-in-an-annotation")}
	must(t, kube.Client.Create(h.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "applied", Namespace: h.ns, Annotations: map[string]string{
			"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"token":"czNjcjN0LWluLWFuLWFubm90YXRpb24="}}`,
		}},
		Data: applied,
	}))
	// An object that refers to the Secret makes the manager watch Secrets.
	h.put("vip.csv", phoneFile(0, 10))
	u := h.object("vip", "vip.csv")
	u.Spec.Source.S3.CertSecretRef = &upv1.SecretReference{Name: "applied"}
	h.create(u)
	h.waitStalled("vip", upv1.ReasonInvalidCredentials) // "applied" has no ca.crt

	cached := &metav1.PartialObjectMetadata{}
	cached.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	err := h.managers[0].mgr.GetCache().Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: "applied"}, cached)
	must(t, err)
	if len(cached.Annotations) != 0 || len(cached.ManagedFields) != 0 {
		t.Errorf("the cache keeps a Secret's annotations %v and managed fields %d", cached.Annotations, len(cached.ManagedFields))
	}
}
