package rules

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/metricdoc"
	"github.com/vectorheal/vectorheal/remediation/engine"
	"github.com/vectorheal/vectorheal/webhook"
)

// operatorInputs are the series the operator records to use the custom-metric templates of
// custom.yml; nothing in vectorheal produces them.
var operatorInputs = []string{
	"custom:quality", "custom:quality:max_drop_per_hour",
	"custom:count", "custom:count:max",
	"custom:staleness", "custom:staleness:max",
}

// prometheusSeries are produced by Prometheus itself.
var prometheusSeries = []string{"up", "ALERTS", "ALERTS_FOR_STATE"}

// published returns every metric vectorheal's packages say they publish.
func published() []metricdoc.Metric {
	var all []metricdoc.Metric
	all = append(all, exporter.Metrics()...)
	all = append(all, webhook.Metrics()...)
	all = append(all, engine.Metrics()...)
	return all
}

// produced returns every series name a rule, dashboard or document may use: the metrics the
// packages publish (with a histogram's _bucket/_sum/_count series), the
// recording rules, Prometheus's own series and the operator's custom-metric inputs.
func produced(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, m := range published() {
		out[m.Name] = true
		if m.Type == "histogram" || m.Type == "summary" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				out[m.Name+s] = true
			}
		}
	}
	files, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Records(files) {
		out[r] = true
	}
	for _, n := range append(operatorInputs, prometheusSeries...) {
		out[n] = true
	}
	return out
}

// metricsIn parses a PromQL expression and returns the metric names its selectors name.
func metricsIn(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, sel := range parser.ExtractSelectors(e) {
		found := false
		for _, m := range sel {
			if m.Name == model.MetricNameLabel {
				found = true
				if m.Type != labels.MatchEqual {
					return nil, fmt.Errorf("metric name matched by %s: name metrics exactly", m)
				}
				names = append(names, m.Value)
			}
		}
		if !found {
			return nil, fmt.Errorf("a selector without a metric name")
		}
	}
	return names, nil
}

// grafanaVarRE matches Grafana variables in a panel query.
var grafanaVarRE = regexp.MustCompile(`\$\{?(__rate_interval|__interval|__range)\}?|\$\{?[A-Za-z_][A-Za-z0-9_]*(:[a-z]+)?\}?`)

// expandGrafana replaces Grafana variables so that the query parses: intervals by durations,
// other variables (which only appear in label matchers) by a placeholder.
func expandGrafana(q string) string {
	return grafanaVarRE.ReplaceAllStringFunc(q, func(v string) string {
		switch strings.Trim(v, "${}") {
		case "__rate_interval", "__interval", "__range":
			return "5m"
		}
		return "x"
	})
}

// labelValuesRE matches Grafana's label_values(metric, label) variable query.
var labelValuesRE = regexp.MustCompile(`^label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\)$`)

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// query is one PromQL query found somewhere, with where it was found.
type query struct{ where, expr string }

func readDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dashboardDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s: %v", dashboardDir, err)
	}
	out := map[string]dashboard{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = d
	}
	return out
}

func dashboardUIDs(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, d := range readDashboards(t) {
		out[d.UID] = true
	}
	return out
}

func dashboardQueries(t *testing.T) []query {
	t.Helper()
	var out []query
	var walk func(file string, ps []panel)
	walk = func(file string, ps []panel) {
		for _, p := range ps {
			for i, tg := range p.Targets {
				out = append(out, query{fmt.Sprintf("%s: panel %q target %d", file, p.Title, i), expandGrafana(tg.Expr)})
			}
			walk(file, p.Panels)
		}
	}
	for file, d := range readDashboards(t) {
		walk(file, d.Panels)
		for _, v := range d.Templating.List {
			q, _ := v.Query.(string)
			if m := labelValuesRE.FindStringSubmatch(q); v.Type == "query" && m != nil {
				out = append(out, query{fmt.Sprintf("%s: variable %s", file, v.Name), expandGrafana(m[1])})
			} else if v.Type == "query" {
				t.Errorf("%s: variable %s: query %q is not label_values(metric, label)", file, v.Name, q)
			}
		}
	}
	return out
}

// alertLabels are label names of the alerts that the alert reference quotes like metric names.
var alertLabels = map[string]bool{"vectorheal_severity": true, "vectorheal_role": true}

// docMetricRE finds series names quoted in the alert reference.
var docMetricRE = regexp.MustCompile("`((?:pgvector_|vectorheal_|index:|target_collector:|parent:|custom:)[A-Za-z0-9_:]*)")

// docQueries returns the series names quoted, and the promql blocks written, in a document.
func docQueries(t *testing.T, doc string) []query {
	t.Helper()
	data, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	var out []query
	inPromQL := false
	var block []string
	for i, line := range strings.Split(string(data), "\n") {
		where := fmt.Sprintf("docs/%s:%d", filepath.Base(doc), i+1)
		switch {
		case strings.HasPrefix(line, "```promql"):
			inPromQL, block = true, nil
		case inPromQL && strings.HasPrefix(line, "```"):
			inPromQL = false
			out = append(out, query{where, strings.Join(block, "\n")})
		case inPromQL:
			block = append(block, line)
		default:
			for _, m := range docMetricRE.FindAllStringSubmatch(line, -1) {
				if !alertLabels[m[1]] {
					out = append(out, query{where, m[1]})
				}
			}
		}
	}
	return out
}

// TestMetricReferences checks that every series named by a rule, a dashboard panel or variable,
// or the alert reference is produced by vectorheal, a recording rule or Prometheus.
func TestMetricReferences(t *testing.T) {
	known := produced(t)
	files, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var qs []query
	for _, f := range files {
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				qs = append(qs, query{fmt.Sprintf("rules/%s:%d (%s)", f.Name, r.Line, r.Name()), r.Expr})
			}
		}
	}
	qs = append(qs, dashboardQueries(t)...)
	qs = append(qs, docQueries(t, alertsDoc)...)
	qs = append(qs, docQueries(t, rulesDoc)...)
	checked := 0
	for _, q := range qs {
		names, err := metricsIn(q.expr)
		if err != nil {
			t.Errorf("%s: %v\n%s", q.where, err, q.expr)
			continue
		}
		for _, n := range names {
			checked++
			if !known[n] {
				t.Errorf("%s: %s is produced by neither vectorheal nor a recording rule", q.where, n)
			}
		}
	}
	if checked < 100 {
		t.Errorf("only %d metric references checked; the rules, dashboards and docs should name far more", checked)
	}
}

// TestRecordsDocumented checks that docs/rules.md names every recorded series.
func TestRecordsDocumented(t *testing.T) {
	files, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, q := range docQueries(t, rulesDoc) {
		documented[q.expr] = true
	}
	for _, r := range Records(files) {
		if !documented[r] {
			t.Errorf("docs/rules.md does not describe %s", r)
		}
	}
}

func TestMetricsIn(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
		err  string
	}{
		{`rate(a_total[5m]) / on (x) b`, []string{"a_total", "b"}, ""},
		{`index:x:rate5m > 3`, []string{"index:x:rate5m"}, ""},
		{`{__name__=~"a.*"}`, nil, "name metrics exactly"},
		{`sum(`, nil, "unclosed"},
	} {
		got, err := metricsIn(tc.expr)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: got %v, want error containing %q", tc.expr, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: got %v, %v; want %v", tc.expr, got, err, tc.want)
		}
	}
	if got := expandGrafana(`rate(x{target=~"$target",i="${indexrelname}"}[$__rate_interval])`); got != `rate(x{target=~"x",i="x"}[5m])` {
		t.Errorf("expandGrafana: %s", got)
	}
}

// TestPartitionRollupsRecorded: every figure vectorheal check rolls up for a partitioned index
// has its recording rule, reading the partitions' metric (and the weight of a share-weighted one).
func TestPartitionRollupsRecorded(t *testing.T) {
	files, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{}
	for _, f := range files {
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					exprs[r.Record] = r.Expr
				}
			}
		}
	}
	rollups := exporter.Rollups()
	if len(rollups) == 0 {
		t.Fatal("no rollups")
	}
	for _, ru := range rollups {
		expr, ok := exprs[ru.Record]
		if !ok {
			t.Errorf("vectorheal check rolls up %s but no rule records %s", ru.Metric, ru.Record)
			continue
		}
		names, err := metricsIn(expr)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{ru.Metric, ru.Weight, "index:pgvector_index_partition_info:max"} {
			if want != "" && !slices.Contains(names, want) {
				t.Errorf("%s reads %v, not %s", ru.Record, names, want)
			}
		}
		if ru.WeightLabel != "" && !strings.Contains(expr, `state="`+ru.WeightLabel+`"`) {
			t.Errorf("%s is not weighted by state=%q", ru.Record, ru.WeightLabel)
		}
	}
}
