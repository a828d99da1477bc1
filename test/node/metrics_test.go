//go:build e2enode

package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	scraperNamespace   = "monitoring"
	metricsReaderRole  = "crowdpack-metrics-reader"
	metricsServiceName = "crowdpack-controller-manager-metrics"
)

// tokensSeen are the bearer tokens the suite sent; the manager's logs must
// hold none of them.
var tokensSeen []string

// theMetricsEndpointAnswersOnlyTheReaderRole scrapes the manager through
// its metrics Service (kube-proxy's rules) with the token of a
// ServiceAccount bound to crowdpack-metrics-reader, and is refused with
// one that is not bound and with none.
func theMetricsEndpointAnswersOnlyTheReaderRole(t *testing.T) {
	ctx := context.Background()
	deleteNamespace(t, scraperNamespace)
	must(t, kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: scraperNamespace}}))
	reader := serviceAccountToken(t, "prometheus")
	stranger := serviceAccountToken(t, "stranger")
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "e2e-prometheus-metrics-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: metricsReaderRole},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: scraperNamespace}}}
	_ = kube.Delete(ctx, binding)
	must(t, kube.Create(ctx, binding))
	t.Cleanup(func() { _ = kube.Delete(context.Background(), binding) })

	url := metricsURL(t)
	eventually(t, time.Minute, "metrics with the reader's token", func(context.Context) error {
		status, body, err := scrape(url, reader)
		if err != nil {
			return err
		}
		if status != http.StatusOK || !strings.Contains(body, "crowdpack_build_info") {
			return fmt.Errorf("%s answered %d, want 200 with crowdpack_build_info: %.200s", url, status, body)
		}
		return nil
	})
	for _, c := range []struct{ who, token string }{{"a ServiceAccount without the role", stranger}, {"no token", ""}} {
		status, _, err := scrape(url, c.token)
		must(t, err)
		if status != http.StatusForbidden && status != http.StatusUnauthorized {
			t.Errorf("%s got %d from %s, want 401 or 403", c.who, status, url)
		}
	}
}

// metricsURL is the metrics Service's cluster address: the host reaches it
// through kube-proxy's rules, as a scraper in the cluster would.
func metricsURL(t *testing.T) string {
	t.Helper()
	svc := &corev1.Service{}
	must(t, kube.Get(context.Background(), clientKey(managerNamespace, metricsServiceName), svc))
	return "https://" + net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port))) + "/metrics"
}

func serviceAccountToken(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	must(t, ignoreExists(kube.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: scraperNamespace, Name: name}})))
	tr, err := clientset.CoreV1().ServiceAccounts(scraperNamespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	must(t, err)
	tokensSeen = append(tokensSeen, tr.Status.Token)
	return tr.Status.Token
}

// scrape GETs url with token; the manager's serving certificate is its own
// self-signed one, as Prometheus is told to accept (insecure_skip_verify).
func scrape(url, token string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the manager's self-signed metrics certificate
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
