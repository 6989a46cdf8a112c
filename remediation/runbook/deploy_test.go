package runbook_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// noRepair lists the alerts of rules/ that deploy/runbook.yml deliberately leaves to people or
// to inhibition: symptoms, user-defined figures and vectorheal's own health.
var noRepair = []string{
	"PgvectorLatencySpike", "PgvectorThroughputDrop", "PgvectorCacheHitDrop", "PgvectorIndexSizeSpike",
	"PgvectorProbeErrorRateSpike",
	"PgvectorCustomQualityDegrading", "PgvectorCustomCountHigh", "PgvectorCustomStale",
	// A graph poor from its build: a rebuild reproduces it, so no automatic repair may answer.
	"PgvectorHNSWBornPoorlyConnected",
	// A session, prepared transaction or slot holds the xmin horizon: only a human can end it.
	"PgvectorCleanupBlocked",
}

type ruleAlert struct {
	name   string
	labels map[string]string
}

func ruleAlerts(t *testing.T) []ruleAlert {
	t.Helper()
	files, err := filepath.Glob("../../rules/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files: %v", err)
	}
	var out []ruleAlert
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Groups []struct {
				Rules []struct {
					Alert  string            `yaml:"alert"`
					Expr   string            `yaml:"expr"`
					Labels map[string]string `yaml:"labels"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range doc.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				l := map[string]string{"alertname": r.Alert, "target": "main", "datname": "app",
					"schemaname": "public", "relname": "items", "indexrelname": "items_embedding_idx"}
				for k, v := range r.Labels {
					l[k] = v
				}
				// A rule that joins the index's method in raises alerts with it: the repairable
				// case is IVFFlat's (the only method whose entries select on it).
				if strings.Contains(r.Expr, "group_left (method)") {
					l["method"] = "ivfflat"
				}
				out = append(out, ruleAlert{name: r.Alert, labels: l})
			}
		}
	}
	return out
}

// TestDefaultRunbook loads deploy/runbook.yml with the strategies and figures vectorheal ships
// and checks it against rules/: every alert with a repair selects an entry, every entry is
// selected by some alert.
func TestDefaultRunbook(t *testing.T) {
	reg, err := strategy.Default(strategy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := runbook.Load("../../deploy/runbook.yml", reg, exporter.NewMeasurer(config.Exporter{}).Figures())
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, a := range ruleAlerts(t) {
		matched := rb.Match(a.labels)
		switch {
		case strings.HasPrefix(a.name, "Vectorheal") || slices.Contains(noRepair, a.name):
			if len(matched) > 0 {
				t.Errorf("%s (%v) is listed as having no repair but selects %s", a.name, a.labels, matched[0].Name)
			}
		case len(matched) == 0:
			t.Errorf("alert %s (%v) selects no runbook entry: add one or list it in noRepair and the runbook's header", a.name, a.labels)
		}
		for _, e := range matched {
			used[e.Name] = true
		}
	}
	for _, e := range rb.Entries {
		if !used[e.Name] {
			t.Errorf("entry %s (line %d) is selected by no alert of rules/", e.Name, e.Line)
		}
	}
	// The two severities of PgvectorHNSWFragmented take different repairs.
	crit := rb.Match(map[string]string{"alertname": "PgvectorHNSWFragmented", "severity": "critical"})
	warn := rb.Match(map[string]string{"alertname": "PgvectorHNSWFragmented", "severity": "warning"})
	if len(crit) != 1 || crit[0].Name != "hnsw-fragmented-critical" || len(warn) != 1 || warn[0].Name != "hnsw-fragmented" {
		t.Errorf("fragmentation: critical -> %v, warning -> %v", crit, warn)
	}
	// Recall that tuning cannot lift leads to a rebuild with new parameters, which waits for
	// approval: the entry itself runs tune_search without asking.
	rec := rb.Entry("recall-below-target")
	if rec == nil || rec.Approval != runbook.ApprovalNone || len(rec.Steps) != 2 || rec.Steps[0].Strategy != "tune_search" ||
		rec.Steps[0].OnFailure != runbook.OnFailureEscalate || rec.Steps[0].Approval != runbook.ApprovalNone ||
		rec.Steps[1].Strategy != "hnsw_rebuild" || rec.Steps[1].Approval != runbook.ApprovalRequired ||
		rec.Steps[1].Validate == nil || rec.Steps[1].Validate.Figure != "pgvector_recall_ratio" {
		t.Errorf("recall-below-target: %+v, want tune_search escalating to an hnsw_rebuild awaiting approval, validated by recall", rec)
	}
}

// TestDocExamples parses every runbook example of docs/runbook.md with the real strategies, so
// the documentation cannot drift from what vectorheal accepts.
func TestDocExamples(t *testing.T) {
	data, err := os.ReadFile("../../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := strategy.Default(strategy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	figures := exporter.NewMeasurer(config.Exporter{}).Figures()
	blocks := strings.Split(string(data), "```yaml\n")[1:]
	n := 0
	for i, b := range blocks {
		b, _, _ = strings.Cut(b, "```")
		var doc string
		switch {
		case strings.HasPrefix(b, "entries:"):
			doc = b
		case strings.HasPrefix(b, "- name:"):
			doc = "entries:\n  " + strings.ReplaceAll(strings.TrimRight(b, "\n"), "\n", "\n  ") + "\n"
		default:
			continue
		}
		n++
		if _, err := runbook.Parse(fmt.Sprintf("docs/runbook.md example %d", i+1), []byte(doc), reg, figures); err != nil {
			t.Errorf("example %d does not parse:\n%s\n%v", i+1, doc, err)
		}
	}
	if n < 5 {
		t.Errorf("only %d examples found", n)
	}
}

// TestSchemaKnowsEveryStrategy keeps the per-strategy parameter lists of
// docs/runbook.schema.json in step with the strategies: the names each strategy lists when it
// refuses an unknown parameter are the names the schema offers.
func TestSchemaKnowsEveryStrategy(t *testing.T) {
	data, err := os.ReadFile("../../docs/runbook.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Defs struct {
			Step struct {
				AllOf []struct {
					If struct {
						Properties struct {
							Strategy struct {
								Const string `json:"const"`
							} `json:"strategy"`
						} `json:"properties"`
					} `json:"if"`
					Then struct {
						Properties struct {
							Params struct {
								Properties map[string]json.RawMessage `json:"properties"`
							} `json:"params"`
						} `json:"properties"`
					} `json:"then"`
				} `json:"allOf"`
			} `json:"step"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	inSchema := map[string][]string{}
	for _, c := range schema.Defs.Step.AllOf {
		var names []string
		for k := range c.Then.Properties.Params.Properties {
			names = append(names, k)
		}
		slices.Sort(names)
		inSchema[c.If.Properties.Strategy.Const] = names
	}
	reg, err := strategy.Default(strategy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var schemaNames []string
	for k := range inSchema {
		schemaNames = append(schemaNames, k)
	}
	slices.Sort(schemaNames)
	if !slices.Equal(schemaNames, reg.Names()) {
		t.Errorf("schema describes strategies %v, vectorheal has %v", schemaNames, reg.Names())
	}
	for _, name := range reg.Names() {
		s, _ := reg.Get(name)
		_, err := s.Bind(strategy.Params{"no_such_parameter": 1})
		_, known, ok := strings.Cut(fmt.Sprint(err), "(known: ")
		if !ok {
			t.Errorf("%s: cannot read its parameters from %v", name, err)
			continue
		}
		want := strings.Split(strings.TrimSuffix(known, ")"), ", ")
		slices.Sort(want)
		if !slices.Equal(inSchema[name], want) {
			t.Errorf("%s: schema offers parameters %v, the strategy takes %v", name, inSchema[name], want)
		}
	}
}
