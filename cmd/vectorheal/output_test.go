package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/remediation/engine"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

func TestPrintIssuesShowsSeverity(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	is := []engine.Issue{
		{Alertname: "PgvectorHNSWDeadTuplesPending", Status: "firing", StartsAt: at, TimesReceived: 2,
			Labels:  map[string]string{"target": "main", "schemaname": "public", "indexrelname": "items_idx", "severity": "warning", "vectorheal_severity": "high"},
			Repairs: []engine.IssueRepair{{ID: 3, State: "succeeded"}}},
		{Alertname: "MyOwnAlert", Status: "resolved", StartsAt: at, TimesReceived: 1,
			Labels: map[string]string{"target": "main", "schemaname": "public", "indexrelname": "docs_idx", "severity": "critical"}},
		{Alertname: "Bare", Status: "firing", StartsAt: at, TimesReceived: 1, Labels: map[string]string{"target": "main"}},
	}
	var b bytes.Buffer
	if err := printIssues(&b, is, func(string, string, string) string { return "now" }); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 rows:\n%s", b.String())
	}
	if f := strings.Fields(lines[0]); f[1] != "SEVERITY" {
		t.Errorf("header %q: the second column is not SEVERITY", lines[0])
	}
	for i, want := range []string{"high", "critical", "-"} {
		if f := strings.Fields(lines[i+1]); f[1] != want {
			t.Errorf("row %d: severity %q, want %q: %s", i+1, f[1], want, lines[i+1])
		}
	}
}

// TestPrintRepairDryRunShowsSQL: a dry run ran nothing, so its text shows the SQL each step
// would run; a step that ran shows what it ran, not the plan as well.
func TestPrintRepairDryRunShowsSQL(t *testing.T) {
	r := engine.Repair{ID: 9, State: "dry_run", Entry: "hnsw-dead-tuples", Target: "main", Datname: "app", Schema: "public",
		Index: "items_idx", Priority: 50, RequestedBy: "alertmanager",
		Steps: []engine.Step{
			{Position: 0, Strategy: "reclaim", State: "dry_run", Impact: &strategy.Impact{LockLevel: "SHARE UPDATE EXCLUSIVE",
				IndexBytes: 5 << 20, EstimatedDuration: 95 * time.Second,
				Statements: []string{`REINDEX INDEX CONCURRENTLY "public"."items_idx"`, `VACUUM (ANALYZE) "public"."items"`}}},
			{Position: 1, Strategy: "vacuum", State: "succeeded", Impact: &strategy.Impact{Statements: []string{`VACUUM "public"."items"`}},
				Statements: []string{`VACUUM "public"."items"`}},
		}}
	var b bytes.Buffer
	if err := printRepair(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"estimated=1m35s",
		"  sql (planned): REINDEX INDEX CONCURRENTLY \"public\".\"items_idx\"\n  sql (planned): VACUUM (ANALYZE) \"public\".\"items\"\n",
		"step 2 vacuum: succeeded\n  impact: lock=\"\" index_size=0B extra_disk=0B estimated=unknown\n  sql: VACUUM \"public\".\"items\"\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("printRepair lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "planned") != 2 {
		t.Errorf("planned SQL shown for a step that ran:\n%s", out)
	}
}
