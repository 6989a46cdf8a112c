package e2e

import "testing"

func TestStepDetail(t *testing.T) {
	cases := []struct {
		st   Step
		want string
	}{
		{Step{Position: 0, Strategy: "vacuum", State: "succeeded",
			Before: map[string]float64{"pgvector_hnsw_heap_tids:dead": 2400, "pgvector_index_size_bytes": 3 << 20},
			After:  map[string]float64{"pgvector_index_size_bytes": 3 << 20, "pgvector_hnsw_heap_tids:dead": 0}},
			"0:vacuum succeeded before: pgvector_hnsw_heap_tids:dead=2400 pgvector_index_size_bytes=3MiB | after: pgvector_hnsw_heap_tids:dead=0 pgvector_index_size_bytes=3MiB"},
		{Step{Position: 1, Strategy: "tune_search", State: "rolled_back", After: map[string]float64{"pgvector_recall_ratio": 0.62}, Error: "validation failed"},
			"1:tune_search rolled_back before: none | after: pgvector_recall_ratio=62% error=validation failed"},
		{Step{Position: 2, Strategy: "analyze", State: "succeeded"}, "2:analyze succeeded"},
	}
	for _, c := range cases {
		if got := stepDetail(c.st); got != c.want {
			t.Errorf("stepDetail\n got: %s\nwant: %s", got, c.want)
		}
	}
}

// TestLabelKey: two rules of one alert that differ only in a label other than severity (as
// PgvectorCacheHitDrop's do in vectorheal_severity) are two alerts, as Prometheus has them.
func TestLabelKey(t *testing.T) {
	a := map[string]string{"alertname": "PgvectorCacheHitDrop", "severity": "warning", "vectorheal_severity": "medium"}
	b := map[string]string{"alertname": "PgvectorCacheHitDrop", "severity": "warning", "vectorheal_severity": "high"}
	if LabelKey(a) == LabelKey(b) {
		t.Errorf("alerts differing in vectorheal_severity share the key %q", LabelKey(a))
	}
	c := map[string]string{"vectorheal_severity": "medium", "severity": "warning", "alertname": "PgvectorCacheHitDrop"}
	if LabelKey(a) != LabelKey(c) {
		t.Errorf("the same labels give %q and %q", LabelKey(a), LabelKey(c))
	}
}
