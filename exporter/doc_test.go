package exporter

import (
	"regexp"
	"testing"
)

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
