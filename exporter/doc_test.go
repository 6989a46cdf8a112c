package exporter

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/metrics.md from Metrics()")

// TestMetricsDoc keeps docs/metrics.md equal to what Metrics() generates.
func TestMetricsDoc(t *testing.T) {
	path := filepath.Join("..", "docs", "metrics.md")
	want := MetricsMarkdown()
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it with go test ./exporter -run TestMetricsDoc -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: regenerate it with go test ./exporter -run TestMetricsDoc -update", path)
	}
}

// TestMetricsListIsWellFormed checks names, types and labels of the single source of truth.
func TestMetricsListIsWellFormed(t *testing.T) {
	nameRE := regexp.MustCompile(`^(pgvector|vectorheal)_[a-z0-9_]+$`)
	seen := map[string]bool{}
	for _, m := range Metrics() {
		if !nameRE.MatchString(m.Name) || seen[m.Name] {
			t.Errorf("%s: bad or duplicate name", m.Name)
		}
		seen[m.Name] = true
		counter := len(m.Name) > 6 && m.Name[len(m.Name)-6:] == "_total"
		if counter != (m.Type == "counter") {
			t.Errorf("%s: type %s, but _total is for counters only", m.Name, m.Type)
		}
		if m.Help == "" || len(m.Labels) == 0 {
			t.Errorf("%s: help and labels are required", m.Name)
		}
	}
}
