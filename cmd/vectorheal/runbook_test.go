package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/remediation/strategy"
)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRunbookValidate(t *testing.T) {
	code, out, errs := runCLI("runbook", "validate", "../../deploy/runbook.yml")
	if code != 0 || !strings.HasPrefix(out, "../../deploy/runbook.yml: OK (") || errs != "" {
		t.Errorf("default runbook: exit %d\n%s%s", code, out, errs)
	}
	// A valid runbook selecting an alert no shipped rule raises: accepted, with a warning.
	typo := writeFile(t, t.TempDir(), "typo.yml", "entries:\n  - name: typo\n    matchers: ['alertname=\"PgvectorHNSWOrphan\"']\n    steps:\n      - strategy: vacuum\n")
	code, _, errs = runCLI("runbook", "validate", typo)
	if want := typo + `: warning: line 2: entry typo selects alertname "PgvectorHNSWOrphan", which no rule in rules/ raises`; code != 0 || !strings.Contains(errs, want) {
		t.Errorf("exit %d, stderr %q, want 0 and %q", code, errs, want)
	}
	bad := writeFile(t, t.TempDir(), "bad.yml", `entries:
  - name: a
    matchers: ['alertname=="A"']
    steps:
      - strategy: vacuum
        params: {full: true}
        validate: {figure: pgvector_nonsense, op: "<", value: 1}
      - strategy: reindex
        params: {figures: [pgvector_index_size_bytes, pgvector_made_up]}
`)
	code, _, errs = runCLI("runbook", "validate", bad)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{
		bad + `:3: entries[0].matchers[0]: cannot parse "alertname==\"A\""`,
		bad + `:6: entries[0].steps[0].params: vacuum: `,
		bad + `:7: entries[0].steps[0].validate.figure: unknown figure "pgvector_nonsense"`,
		bad + `:9: entries[0].steps[1].params.figures[1]: unknown figure "pgvector_made_up"`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("errors do not contain %q:\n%s", want, errs)
		}
	}
}

func TestRunbookTest(t *testing.T) {
	code, out, errs := runCLI("runbook", "test", "../../deploy/runbook.yml",
		"--alert", `alertname="PgvectorHNSWDeadTuplesPending"`, "--alert", "target=main,indexrelname=items_idx",
		"--expect", "hnsw-dead-tuples")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		`alert {alertname="PgvectorHNSWDeadTuplesPending", indexrelname="items_idx", target="main"}`,
		"1. hnsw-dead-tuples (line ",
		"step 1: reclaim",
		"validate pgvector_hnsw_heap_tids:dead (where unknown: pgvector_index_dead_entries_estimated) < 1000 or < before × 0.5 (wait 10s, up to 3 attempts)",
		"step 2: reindex",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Strategy parameters are name=value pairs, not a Go map.
	code, out, _ = runCLI("runbook", "test", "../../deploy/runbook.yml", "--alert", `alertname="PgvectorRecallBelowTarget"`)
	if code != 0 || !strings.Contains(out, "step 1: tune_search target_recall=0.95\n") || strings.Contains(out, "map[") {
		t.Errorf("parameters: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI("runbook", "test", "../../deploy/runbook.yml", "--alert", `alertname="VectorhealTargetDown"`, "--expect", "")
	if code != 0 || !strings.Contains(out, "no entry matches") {
		t.Errorf("unmatched alert: exit %d\n%s", code, out)
	}
	code, _, errs = runCLI("runbook", "test", "../../deploy/runbook.yml", "--alert", `alertname="PgvectorHNSWOrphansDecayed"`, "--expect", "other")
	if code != 1 || !strings.Contains(errs, `expected entries "other", got "hnsw-orphans"`) {
		t.Errorf("--expect mismatch: exit %d, %s", code, errs)
	}
	code, _, errs = runCLI("runbook", "test", "../../deploy/runbook.yml", "--alert", `alertname=~"X"`)
	if code != 1 || !strings.Contains(errs, "is not a label value") {
		t.Errorf("regex as a label: exit %d, %s", code, errs)
	}
}

// With an index described, a reclaim step shows the path it would choose and the estimate;
// the numbers are the cost model's (ChooseRepair), whatever the machine.
func TestRunbookTestShowsReclaimEstimate(t *testing.T) {
	args := []string{"runbook", "test", "../../deploy/runbook.yml", "--alert", `alertname="PgvectorHNSWDeadTuplesPending"`,
		"--index-size", "166MB", "--elements", "200000"}
	want, err := strategy.ChooseRepair(strategy.CostInput{Method: "hnsw", SizeBytes: 166 << 20, Elements: 200000, DeadShare: 0.001,
		M: 16, Need: strategy.NeedDeadEntries, PgvectorVersion: "0.8.6"})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(append(args, "--dead-share", "0.001", "--pgvector", "0.8.6")...)
	line := fmt.Sprintf("estimate: chooses %s, est. %s: %s\n", want.Path, want.Chosen().Duration.Round(time.Second), want.Reason)
	if code != 0 || !strings.Contains(out, "step 1: reclaim") || !strings.Contains(out, line) || strings.Count(out, "estimate:") != 1 {
		t.Errorf("exit %d, want the reclaim step only with %q:\n%s%s", code, line, out, errs)
	}
	code, out, _ = runCLI(append(args, "--dead-share", "0.001", "--pgvector", "0.8.0")...)
	if code != 0 || !strings.Contains(out, "chooses reindex+vacuum") || !strings.Contains(out, "vacuum refused: pgvector 0.8.0 < 0.8.4") {
		t.Errorf("gated version: exit %d\n%s", code, out)
	}
	code, _, errs = runCLI("runbook", "test", "../../deploy/runbook.yml", "--alert", `alertname="X"`, "--dead-share", "0.2")
	if code != 1 || !strings.Contains(errs, "give --index-size too") {
		t.Errorf("facts without a size: exit %d, %s", code, errs)
	}
}
