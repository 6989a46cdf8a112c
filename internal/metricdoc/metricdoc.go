// Package metricdoc describes the metrics vectorheal exposes. Each package that publishes
// metrics lists them as []Metric: that list is the one source of truth from which
// docs/metrics.md is generated and against which rules, dashboards and runbooks are checked.
package metricdoc

// Metric describes one metric family.
type Metric struct {
	Name   string   // full name, e.g. pgvector_hnsw_orphan_elements
	Type   string   // gauge, counter, histogram or summary
	Help   string   // the HELP text
	Labels []string // label names, in order
}
