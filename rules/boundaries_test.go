package rules

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// lookbackDelta is how far back an instant selector looks for a sample (Prometheus's default).
const lookbackDelta = 5 * time.Minute

// windows returns every span an expression looks back over, from the evaluation time to the
// start of a window: a range (plus its offset), or the lookback of an instant selector (plus
// its offset). Prometheus 2 counts a sample exactly at the start of such a span, Prometheus 3
// does not (left-open ranges and lookback).
func windows(t *testing.T, expr string) []time.Duration {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("parse %q: %v", expr, err)
	}
	var out []time.Duration
	inRange := map[*parser.VectorSelector]bool{}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.MatrixSelector:
			vs := n.VectorSelector.(*parser.VectorSelector)
			inRange[vs] = true
			out = append(out, n.Range+vs.OriginalOffset)
		case *parser.SubqueryExpr:
			out = append(out, n.Range+n.OriginalOffset)
		}
		return nil
	})
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && !inRange[vs] {
			out = append(out, lookbackDelta+vs.OriginalOffset)
		}
		return nil
	})
	return out
}

// promtoolFile is the part of a promtool test file the boundary check reads.
type promtoolFile struct {
	RuleFiles          []string       `yaml:"rule_files"`
	EvaluationInterval model.Duration `yaml:"evaluation_interval"`
	Tests              []struct {
		Name     string         `yaml:"name"`
		Interval model.Duration `yaml:"interval"`
		Alerts   []struct {
			EvalTime model.Duration `yaml:"eval_time"`
		} `yaml:"alert_rule_test"`
		Exprs []struct {
			EvalTime model.Duration `yaml:"eval_time"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

// TestPromtoolTestsAvoidWindowBoundaries checks that no sample of a promtool test, input or
// recorded, ever sits exactly at the start of a window its rules read, at any evaluation up to
// the test's last eval_time. Prometheus 2 and 3 disagree about such a sample (3 leaves it out),
// so an expected value that depended on one would hold on one major only. Evaluations every
// 1m1ms (or 5m1ms) over input samples 1m apart never meet a whole-minute window boundary.
func TestPromtoolTestsAvoidWindowBoundaries(t *testing.T) {
	files, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	optional, err := LoadFS(os.DirFS("optional"))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]File{}
	for _, f := range append(files, optional...) {
		byName[f.Name] = f
	}
	tests, err := filepath.Glob(filepath.Join("tests", "*.yml"))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no promtool tests in tests/: %v", err)
	}
	for _, path := range tests {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var pf promtoolFile
		if err := yaml.Unmarshal(data, &pf); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		eval := time.Duration(pf.EvaluationInterval)
		if eval <= 0 {
			t.Errorf("%s: no evaluation_interval", path)
			continue
		}
		spans := map[time.Duration]bool{}
		for _, rf := range pf.RuleFiles {
			f, ok := byName[filepath.Base(rf)]
			if !ok {
				t.Fatalf("%s: rule file %s is not one of rules/*.yml or rules/optional/*.yml", path, rf)
			}
			for _, g := range f.Groups {
				for _, r := range g.Rules {
					for _, w := range windows(t, r.Expr) {
						spans[w] = true
					}
				}
			}
		}
		reported := map[time.Duration]bool{} // one message per window and file
		for _, tc := range pf.Tests {
			step := time.Duration(tc.Interval)
			if step <= 0 {
				t.Errorf("%s: test %q: no interval for its input series", path, tc.Name)
				continue
			}
			var last time.Duration
			for _, a := range tc.Alerts {
				last = max(last, time.Duration(a.EvalTime))
			}
			for _, e := range tc.Exprs {
				last = max(last, time.Duration(e.EvalTime))
			}
		spans:
			for w := range spans {
				if reported[w] {
					continue
				}
				for at := time.Duration(0); at <= last; at += eval {
					start := at - w
					if start < 0 {
						continue
					}
					if start%step == 0 || start%eval == 0 {
						t.Errorf("%s: test %q: at the evaluation at %s a sample sits at the start of a %s window (Prometheus 2 counts it, 3 does not); use an evaluation_interval that is not a whole number of minutes, such as 1m1ms",
							path, tc.Name, model.Duration(at), model.Duration(w))
						reported[w] = true
						continue spans
					}
				}
			}
		}
	}
}
