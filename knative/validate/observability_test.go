package validate

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

const (
	promDir   = "knative/observability/prometheus"
	dashboard = "knative/observability/grafana/taskfn.json"
)

// rule is one alerting or recording rule of alerts.yml.
type rule struct {
	Alert, Record, Expr string
}

// alertRules decodes alerts.yml strictly with the Prometheus Operator's
// types, which are the rule-file format plus nothing.
func alertRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, promDir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var spec monitoringv1.PrometheusRuleSpec
	if err := yaml.UnmarshalStrict(b, &spec); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var rules []rule
	for _, g := range spec.Groups {
		for _, r := range g.Rules {
			rules = append(rules, rule{Alert: r.Alert, Record: r.Record, Expr: r.Expr.String()})
		}
	}
	return rules
}

// panelExpr is one query of the dashboard.
type panelExpr struct{ panel, expr string }

func dashboardExprs(t *testing.T) []panelExpr {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, dashboard))
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		UID    string            `json:"uid"`
		Title  string            `json:"title"`
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboard, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("%s: uid and title are required for provisioning", dashboard)
	}
	var out []panelExpr
	var walk func([]json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("%s: %v", dashboard, err)
			}
			for _, tg := range p.Targets {
				out = append(out, panelExpr{p.Title, tg.Expr})
			}
			walk(p.Panels) // panels inside collapsed rows
		}
	}
	walk(d.Panels)
	if len(out) == 0 {
		t.Fatalf("%s: no queries", dashboard)
	}
	return out
}

// exportedMetric finds the series a query reads: ours and the Go and
// process collectors'. Recording rules (taskfn:...) come from alerts.yml.
// kafka_... are the Kafka Exporter's (externalMetrics).
var exportedMetric = regexp.MustCompile(`\b(?:taskfn|go|process|kafka)_[a-z0-9_]+`)

// externalMetrics are series the rules read that taskfn does not export,
// and who does. Not checked here: their exporter is not run by the tests.
var externalMetrics = map[string]string{
	"kafka_topic_partition_current_offset": "Kafka Exporter (Strimzi: spec.kafkaExporter of the Kafka resource)",
	"kafka_consumergroup_lag":              "Kafka Exporter (Strimzi: spec.kafkaExporter of the Kafka resource)",
}

// nonHTTPMetrics are taskfn metrics whose meaningful values come from a
// function the end-to-end test does not run (it starts the gateway's
// functions only): metric → that function and the package defining it.
// checkMetricsExported verifies each by source instead: the package names
// the metric and the function is built with the package.
var nonHTTPMetrics = map[string]struct{ fn, pkg string }{
	// Set after each relay run; the writers export it too, always 0.
	"taskfn_outbox_pending": {"relay-outbox", "shared/outbox"},
	// The dev runner's stand-in for the KafkaSources (not deployed).
	"taskfn_kafkasource_deliveries_total":   {"dev", "shared/kafkasource"},
	"taskfn_kafkasource_dead_letters_total": {"dev", "shared/kafkasource"},
}

// checkMetricsExported fails t for every metric the rules and the
// dashboard read that is neither in scraped (what the running functions
// served on /metrics), nor a nonHTTPMetrics entry the sources confirm, nor
// an externalMetrics entry.
func checkMetricsExported(t *testing.T, scraped map[string]bool) {
	t.Helper()
	for metric, where := range referencedMetrics(t) {
		if by, ok := externalMetrics[metric]; ok {
			t.Logf("%s: %s, exported by the %s", where, metric, by)
			continue
		}
		if e, ok := nonHTTPMetrics[metric]; ok {
			if err := exportedBy(metric, e.fn, e.pkg); err != nil {
				t.Errorf("%s uses %s: %v", where, metric, err)
			}
			continue
		}
		if !scraped[metric] {
			t.Errorf("%s uses %s, which no function exports", where, metric)
		}
	}
}

// exportedBy checks that pkg's sources name metric (as a Name: "..."
// string) and that functions/fn is built with pkg.
func exportedBy(metric, fn, pkg string) error {
	files, err := filepath.Glob(filepath.Join(root, pkg, "*.go"))
	if err != nil {
		return err
	}
	found := false
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), `"`+metric+`"`) {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("%s does not define it (nonHTTPMetrics is out of date)", pkg)
	}
	cmd := exec.Command("go", "list", "-deps", "./functions/"+fn)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go list -deps ./functions/%s: %v", fn, err)
	}
	if !slices.Contains(strings.Fields(string(out)), modulePath+"/"+pkg) {
		return fmt.Errorf("functions/%s is not built with %s", fn, pkg)
	}
	return nil
}

// TestNonHTTPMetricsInSources runs the source check of nonHTTPMetrics on
// its own, without the end-to-end test's database.
func TestNonHTTPMetricsInSources(t *testing.T) {
	for metric, e := range nonHTTPMetrics {
		if err := exportedBy(metric, e.fn, e.pkg); err != nil {
			t.Errorf("%s: %v", metric, err)
		}
	}
}

// referencedMetrics returns every metric the rules and the dashboard
// (queries and variables) read, with where each is used.
func referencedMetrics(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range alertRules(t) {
		for _, m := range exportedMetric.FindAllString(r.Expr, -1) {
			out[m] = "rule " + r.Alert + r.Record
		}
	}
	b, err := os.ReadFile(filepath.Join(root, dashboard))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range exportedMetric.FindAllString(string(b), -1) {
		if _, ok := out[m]; !ok {
			out[m] = dashboard
		}
	}
	return out
}

func promtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(lookTool(t, "promtool"), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool(t, filepath.Join(root, promDir), "check", "rules", "alerts.yml")
}

func TestPromtoolTestRules(t *testing.T) {
	promtool(t, filepath.Join(root, promDir), "test", "rules", "alerts_test.yml")
}

// Every alert has a unit test, and names what to look at.
func TestAlertsAreTested(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, promDir, "alerts_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range alertRules(t) {
		if r.Alert != "" && !strings.Contains(string(b), "alertname: "+r.Alert) {
			t.Errorf("alert %s has no test in alerts_test.yml", r.Alert)
		}
	}
}

// The dashboard's queries are PromQL promtool accepts, once Grafana's
// variables are given values: each becomes a recording rule to check.
func TestDashboardQueriesParse(t *testing.T) {
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$namespace", "taskfn")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range dashboardExprs(t) {
		q, err := json.Marshal(vars.Replace(e.expr)) // a JSON string is a YAML string
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %s\n", i, q)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard.yml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, dir, "check", "rules", "dashboard.yml")
}

// Debian's promtool is built without Kubernetes service discovery, so the
// scrape config is checked with its kubernetes_sd_configs swapped for a
// static target; the rest (relabelling, rule files) is promtool's own check.
func TestPromtoolCheckConfig(t *testing.T) {
	src := filepath.Join(root, promDir)
	b, err := os.ReadFile(filepath.Join(src, "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	const sd = "    kubernetes_sd_configs:\n      - role: pod\n"
	if strings.Count(string(b), sd) != 1 {
		t.Fatalf("prometheus.yml: want exactly one %q", sd)
	}
	swapped := strings.Replace(string(b), sd, "    static_configs:\n      - targets: [\"127.0.0.1:8080\"]\n", 1)
	dir := t.TempDir()
	rules, err := os.ReadFile(filepath.Join(src, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"prometheus.yml": []byte(swapped), "alerts.yml": rules} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	promtool(t, dir, "check", "config", "prometheus.yml")
}

func TestPrometheusRuleMatchesRuleFile(t *testing.T) {
	syncEmbedded(t, "knative/observability/prometheusrule.yaml", "spec:", promDir+"/alerts.yml", 2)
}

// Filebeat is not installable here; its config is at least well-formed
// YAML (no duplicate keys) with the parsers the JSON logs need.
func TestFilebeatConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "knative/observability/filebeat/filebeat.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		t.Fatalf("filebeat.yml: %v", err)
	}
	for _, want := range []string{"filebeat.autodiscover", "output.elasticsearch"} {
		if _, ok := cfg[want]; !ok {
			t.Errorf("filebeat.yml: no %s", want)
		}
	}
	for _, want := range []string{"- ndjson:", `target: ""`, "expand_keys: true", "app_kubernetes_io/part-of: taskfn"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("filebeat.yml lacks %q", want)
		}
	}
}
