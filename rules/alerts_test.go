package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const (
	runbookBase   = "https://github.com/vectorheal/vectorheal/blob/main/docs/alerts.md#"
	dashboardBase = "http://grafana:3000/d/"
	alertsDoc     = "../docs/alerts.md"
	rulesDoc      = "../docs/rules.md"
	dashboardDir  = "../deploy/grafana/dashboards"
)

// indexLabels identify the index an alert is about; the repair engine needs all of them.
var indexLabels = []string{"target", "datname", "schemaname", "relname", "indexrelname"}

// severityOf maps the seed's levels onto the severity values Alertmanager routes usually use.
var severityOf = map[string]string{"low": "info", "medium": "warning", "high": "warning", "critical": "critical"}

var alertNameRE = regexp.MustCompile(`^(Pgvector|Vectorheal)[A-Z][A-Za-z0-9]+$`)

func loadAlerts(t *testing.T) []Rule {
	t.Helper()
	files, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return Alerts(files)
}

// isIndexAlert says whether an alert is about one index: it links to the index dashboard.
func isIndexAlert(r Rule) bool {
	return strings.HasPrefix(r.Annotations["dashboard_url"], dashboardBase+"vectorheal-index/")
}

func TestAlertsWellFormed(t *testing.T) {
	doc, err := os.ReadFile(alertsDoc)
	if err != nil {
		t.Fatalf("read the alert reference: %v", err)
	}
	sections := docSections(string(doc))
	uids := dashboardUIDs(t)
	tiers := map[string][]string{}
	for _, r := range loadAlerts(t) {
		where := fmt.Sprintf("alert %s (line %d)", r.Alert, r.Line)
		if !alertNameRE.MatchString(r.Alert) {
			t.Errorf("%s: name must be CamelCase starting with Pgvector or Vectorheal", where)
		}
		if time.Duration(r.For) < time.Minute {
			t.Errorf("%s: for is %v; every alert needs a hold of at least 1m against flapping", where, r.For)
		}
		vs := r.Labels["vectorheal_severity"]
		if want, ok := severityOf[vs]; !ok {
			t.Errorf("%s: vectorheal_severity %q is not one of low, medium, high, critical", where, vs)
		} else if r.Labels["severity"] != want {
			t.Errorf("%s: severity %q, want %q for vectorheal_severity %q", where, r.Labels["severity"], want, vs)
		}
		if slices.Contains(tiers[r.Alert], vs) {
			t.Errorf("%s: two tiers with vectorheal_severity %q", where, vs)
		}
		tiers[r.Alert] = append(tiers[r.Alert], vs)
		if role, ok := r.Labels["vectorheal_role"]; ok && role != "cause" && role != "symptom" {
			t.Errorf("%s: vectorheal_role %q is not cause or symptom", where, role)
		}
		for k := range r.Labels {
			if !slices.Contains([]string{"severity", "vectorheal_severity", "vectorheal_role"}, k) {
				t.Errorf("%s: unexpected label %q (labels identifying the index come from the expression)", where, k)
			}
		}
		var keys []string
		for k := range r.Annotations {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := []string{"dashboard_url", "description", "runbook_url", "summary"}; !slices.Equal(keys, want) {
			t.Errorf("%s: annotations %v, want exactly %v", where, keys, want)
		}
		if !strings.Contains(r.Annotations["description"], "$value") {
			t.Errorf("%s: description does not show the value ($value)", where)
		}
		if got, want := r.Annotations["runbook_url"], runbookBase+strings.ToLower(r.Alert); got != want {
			t.Errorf("%s: runbook_url %q, want %q", where, got, want)
		}
		uid, ok := strings.CutPrefix(r.Annotations["dashboard_url"], dashboardBase)
		uid, _, _ = strings.Cut(uid, "/")
		if !ok || !uids[uid] {
			t.Errorf("%s: dashboard_url %q does not point at a shipped dashboard (uids %v)", where, r.Annotations["dashboard_url"], uids)
		}
		if isIndexAlert(r) {
			for _, l := range []string{"target", "indexrelname"} {
				if !strings.Contains(r.Annotations["dashboard_url"], "{{ $labels."+l+" }}") {
					t.Errorf("%s: dashboard_url does not select the index's %s", where, l)
				}
			}
		}
		if !sections[r.Alert] {
			t.Errorf("%s: docs/alerts.md has no section \"## %s\"", where, r.Alert)
		}
	}
	for name := range sections {
		if _, ok := tiers[name]; !ok {
			t.Errorf("docs/alerts.md has a section for %s, which no rule raises", name)
		}
	}
}

// docSections returns the alert names that head a "## " section of the alert reference.
func docSections(doc string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(doc, "\n") {
		if name, ok := strings.CutPrefix(line, "## "); ok && alertNameRE.MatchString(strings.TrimSpace(name)) {
			out[strings.TrimSpace(name)] = true
		}
	}
	return out
}

// promtoolTests is the part of a promtool test file the coverage check reads.
type promtoolTests struct {
	Tests []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels map[string]string `yaml:"exp_labels"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestEveryAlertTested checks that the promtool tests make every alert, and every severity tier
// of it, fire at least once with the index labels, and check it quiet at least once.
func TestEveryAlertTested(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("tests", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool tests: %v", err)
	}
	fired := map[string]bool{} // alertname/vectorheal_severity
	quiet := map[string]bool{} // alertname
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var pt promtoolTests
		if err := yaml.Unmarshal(data, &pt); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range pt.Tests {
			for _, c := range tc.AlertRuleTest {
				if len(c.ExpAlerts) == 0 {
					quiet[c.Alertname] = true
				}
				for _, a := range c.ExpAlerts {
					if a.ExpLabels["alertname"] != c.Alertname {
						t.Errorf("%s: %q: expected alert labelled %q under alertname %q", f, tc.Name, a.ExpLabels["alertname"], c.Alertname)
					}
					fired[c.Alertname+"/"+a.ExpLabels["vectorheal_severity"]] = true
				}
			}
		}
	}
	for _, r := range loadAlerts(t) {
		if !fired[r.Alert+"/"+r.Labels["vectorheal_severity"]] {
			t.Errorf("alert %s tier %s never fires in a promtool test", r.Alert, r.Labels["vectorheal_severity"])
		}
		if !quiet[r.Alert] {
			t.Errorf("alert %s is never checked quiet in a promtool test", r.Alert)
		}
	}
}

// TestIndexAlertsCarryIndexLabels checks, on every firing case of the promtool tests, that alerts
// about an index carry all the labels the repair engine resolves the index from.
func TestIndexAlertsCarryIndexLabels(t *testing.T) {
	index := map[string]bool{}
	for _, r := range loadAlerts(t) {
		index[r.Alert] = isIndexAlert(r)
	}
	files, _ := filepath.Glob(filepath.Join("tests", "*.yml"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var pt promtoolTests
		if err := yaml.Unmarshal(data, &pt); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range pt.Tests {
			for _, c := range tc.AlertRuleTest {
				if !index[c.Alertname] {
					continue
				}
				for _, a := range c.ExpAlerts {
					for _, l := range indexLabels {
						if a.ExpLabels[l] == "" {
							t.Errorf("%s: %q: %s fires without label %s", f, tc.Name, c.Alertname, l)
						}
					}
				}
			}
		}
	}
}
