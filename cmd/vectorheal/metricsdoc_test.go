package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/remediation/engine"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/webhook"
)

var update = flag.Bool("update", false, "rewrite docs/metrics.md from the Metrics() lists")

// TestMetricsDoc keeps docs/metrics.md equal to what the Metrics() lists of every part that
// publishes metrics generate; this binary wires all of them, so the check lives here.
func TestMetricsDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "metrics.md")
	want := exporter.MetricsMarkdown(append(append(webhook.Metrics(), engine.Metrics()...), runbook.Metrics()...))
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it with go test ./cmd/vectorheal -run TestMetricsDoc -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: regenerate it with go test ./cmd/vectorheal -run TestMetricsDoc -update", path)
	}
}
