package uploads

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestMetricsEndpointServesOnlyTheReaderRole runs a manager whose metrics
// are served as main.go serves them by default (HTTPS, authenticated and
// authorized by the API server), with config/rbac's metrics RBAC: an
// anonymous scrape and a token without the reader role are refused, a
// token bound to crowdpack-metrics-reader is served.
func TestMetricsEndpointServesOnlyTheReaderRole(t *testing.T) {
	h := newHarness(t, harnessOptions{noManager: true})
	var auth, reader rbacv1.ClusterRole
	must(t, readManifest("metrics_auth_role.yaml", &auth))
	must(t, readManifest("metrics_reader_role.yaml", &reader))
	auth.Name, reader.Name = "crowdpack-"+auth.Name, "crowdpack-"+reader.Name
	for _, obj := range []*rbacv1.ClusterRole{&auth, &reader} {
		if err := kube.Client.Create(h.ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	bind := func(name, role string, subject rbacv1.Subject) {
		err := kube.Client.Create(h.ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{subject},
		})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	bind("crowdpack-metrics-auth-test", auth.Name, rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: managerUser})
	bind(h.ns+"-prometheus-metrics", reader.Name, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "prometheus", Namespace: h.ns})
	token := func(sa string) string {
		must(t, kube.Client.Create(h.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: h.ns}}))
		req := &authenticationv1.TokenRequest{}
		must(t, kube.Client.SubResource("token").Create(h.ctx,
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: h.ns}}, req))
		return req.Status.Token
	}
	readerToken, otherToken := token("prometheus"), token("someone-else")

	addr := freeAddr(t)
	h.metricsAddr, h.secureMetrics = addr, true
	h.startManager(nil)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the manager's self-signed certificate
	}}
	get := func(token string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/metrics", nil)
		must(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// RBAC reaches the authorizer through informers: wait for the reader's binding.
	deadline := time.Now().Add(20 * time.Second)
	status, body := get(readerToken)
	for status != http.StatusOK && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		status, body = get(readerToken)
	}
	if status != http.StatusOK || !strings.Contains(body, "crowdpack_") {
		t.Fatalf("a token bound to the reader role got %d: %.200s", status, body)
	}
	if status, _ := get(""); status != http.StatusUnauthorized {
		t.Errorf("an anonymous scrape got %d, want 401", status)
	}
	if status, _ := get(otherToken); status != http.StatusForbidden {
		t.Errorf("a token without the reader role got %d, want 403", status)
	}
	plain, err := http.Get("http://" + addr + "/metrics")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode == http.StatusOK {
			t.Error("the endpoint also serves plain HTTP")
		}
	}
}
