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
