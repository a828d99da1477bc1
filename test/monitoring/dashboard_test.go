// Package monitoring checks that the Grafana dashboard (config/grafana) and
// the alerts (config/prometheus) query only metrics the manager exports: a
// renamed metric fails here, not silently on a dashboard.
package monitoring

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/crowdpack/crowdpack/controllers"
	"github.com/crowdpack/crowdpack/controllers/uploads"
	"github.com/crowdpack/crowdpack/internal/metrics"
	"github.com/crowdpack/crowdpack/internal/testutil/kubetest"
	"github.com/crowdpack/crowdpack/internal/testutil/repo"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// grafanaVariables are what Grafana puts in place of its variables before
// the query reaches Prometheus.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "5m", "${__rate_interval}", "5m",
	"$__interval", "1m", "$__range", "1h",
	"${job}", "crowdpack", "$job", "crowdpack",
)

// query is one PromQL expression and where it comes from.
type query struct{ where, expr string }

func dashboardQueries(t *testing.T, path string) []query {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	var qs []query
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			qs = append(qs, query{fmt.Sprintf("panel %q query %s", p.Title, tg.RefID), tg.Expr})
		}
	}
	// label_values(METRIC, label) is Grafana's, not PromQL: its metric is checked.
	labelValues := regexp.MustCompile(`^label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*),\s*[a-zA-Z_]+\)$`)
	for _, v := range dash.Templating.List {
		if v.Definition == "" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(metric, label)", v.Name, v.Definition)
			continue
		}
		qs = append(qs, query{"variable " + v.Name, m[1]})
	}
	return qs
}

func alertQueries(t *testing.T, path string) []query {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert string `json:"alert"`
					Expr  string `json:"expr"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &rule); err != nil {
		t.Fatal(err)
	}
	var qs []query
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{"alert " + r.Alert, r.Expr})
		}
	}
	return qs
}

// metricNames parses expr with Prometheus's own parser and returns the
// metric names its selectors name.
func metricNames(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVariables.Replace(expr))
	if err != nil {
		return nil, err
	}
	var names []string
	var failed error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			failed = fmt.Errorf("selector %s names no metric", vs)
		}
		names = append(names, name)
		return nil
	})
	return names, failed
}

// exported are the names the manager serves: scraped from the metrics
// endpoint of a manager running the operator's controllers (controller-runtime's
// own metrics have series once the controllers start), and crowdpack's own
// metrics by their descriptions (a labelled metric has no series until its
// first event).
func exported(t *testing.T) map[string]bool {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "bin", "kube-apiserver")); err != nil && os.Getenv("KUBEBUILDER_ASSETS") == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no kube-apiserver: make tools")
		}
		t.Skip("no kube-apiserver in bin/: make tools")
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	kube, err := kubetest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.Stop() })

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	mgr, err := ctrl.NewManager(kube.Config, ctrl.Options{
		Scheme:                 kube.Scheme,
		Metrics:                metricsserver.Options{BindAddress: addr},
		HealthProbeBindAddress: "0",
		Cache:                  controllers.CacheOptions("", "crowdpack-system"),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &uploads.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("crowdpack"),
		NewWeChatPay: func(creds *wechatpay.Credentials) (wechatpay.API, error) {
			return nil, fmt.Errorf("no WeChat Pay in this test")
		},
		MaxConcurrentReconciles: 1, RetryBaseDelay: time.Second, RetryMaxDelay: time.Second,
		BrandSecretNamespace: "crowdpack-system",
	}
	if err := controllers.Setup(ctx, mgr, r, "crowdpack-system"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	names := map[string]bool{}
	for _, n := range metrics.Names() {
		names[n] = true
	}
	typeLine := regexp.MustCompile(`(?m)^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		body := scrape(t, "http://"+addr+"/metrics")
		for _, m := range typeLine.FindAllStringSubmatch(body, -1) {
			switch m[2] {
			case "histogram":
				names[m[1]+"_bucket"], names[m[1]+"_sum"], names[m[1]+"_count"] = true, true, true
			case "summary":
				names[m[1]], names[m[1]+"_sum"], names[m[1]+"_count"] = true, true, true
			default:
				names[m[1]] = true
			}
		}
		if names["controller_runtime_reconcile_errors_total"] && names["workqueue_queue_duration_seconds_bucket"] {
			return names
		}
		if time.Now().After(deadline) {
			t.Fatalf("the manager's metrics never listed controller-runtime's:\n%s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return string(data)
}

// Every panel's PromQL and every alert parses with Prometheus's parser and
// queries only metrics the manager exports.
func TestTheDashboardAndAlertsQueryOnlyExportedMetrics(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	queries := dashboardQueries(t, filepath.Join(root, "config", "grafana", "crowdpack.json"))
	if len(queries) < 15 {
		t.Fatalf("only %d dashboard queries found", len(queries))
	}
	queries = append(queries, alertQueries(t, filepath.Join(root, "config", "prometheus", "alerts.yaml"))...)
	names := exported(t)
	used := map[string]bool{}
	for _, q := range queries {
		ms, err := metricNames(q.expr)
		if err != nil {
			t.Errorf("%s: %v\n%s", q.where, err, q.expr)
			continue
		}
		for _, m := range ms {
			used[m] = true
			if !names[m] {
				t.Errorf("%s queries %s, which the manager does not export", q.where, m)
			}
		}
	}
	// Each of crowdpack's metrics is on the dashboard.
	for _, n := range metrics.Names() {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		shown := false
		for u := range used {
			shown = shown || strings.HasPrefix(u, base)
		}
		if !shown {
			t.Errorf("no panel shows %s", base)
		}
	}
}

// A misspelt metric is caught: the check is not vacuous.
func TestAMisspeltMetricIsCaught(t *testing.T) {
	ms, err := metricNames(`sum by (endpoint) (rate(crowdpack_wechatpay_request_total{job=~"$job"}[$__rate_interval]))`)
	if err != nil || len(ms) != 1 || ms[0] != "crowdpack_wechatpay_request_total" {
		t.Fatalf("metricNames = %v, %v", ms, err)
	}
	known := map[string]bool{}
	for _, n := range metrics.Names() {
		known[n] = true
	}
	if known[ms[0]] {
		t.Error("a misspelt name is taken for an exported one")
	}
	if _, err := metricNames(`sum(rate(crowdpack_uploads[5m]`); err == nil {
		t.Error("an unbalanced query parses")
	}
}
