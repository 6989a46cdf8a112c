package strategy

import "testing"

// TestNeedsHorizon: which steps the engine holds back while the xmin horizon is held. A step
// that removes dead rows always; a rebuild only when judged on dead rows, so a REINDEX for
// structural faults or an INVALID index still runs.
func TestNeedsHorizon(t *testing.T) {
	reg, err := Default(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		strategy string
		figures  []string
		want     bool
	}{
		{"vacuum", nil, true},
		{"vacuum", []string{"pgvector_index_size_bytes", ""}, true},
		{"reclaim", []string{"pgvector_hnsw_heap_tids:dead", "pgvector_index_dead_entries_estimated"}, true},
		{"reindex", []string{"pgvector_hnsw_heap_tids:dead", "pgvector_index_dead_entries_estimated"}, true},
		{"reindex", []string{"pgvector_table_dead_tuples", ""}, true},
		{"reindex", []string{"pgvector_index_structural_faults", ""}, false},
		{"reindex", []string{"pgvector_index_valid", ""}, false},
		{"reindex", nil, false},
		{"hnsw_rebuild", []string{"pgvector_hnsw_connectivity_ratio", ""}, false},
		{"ivfflat_retrain", []string{"pgvector_index_dead_entries_estimated", ""}, true},
		{"analyze", []string{"pgvector_table_dead_tuples", ""}, false},
		{"tune_search", []string{"pgvector_recall_ratio", ""}, false},
	} {
		d, ok := reg.Get(tc.strategy)
		if !ok {
			t.Fatalf("no strategy %s", tc.strategy)
		}
		if got := NeedsHorizon(d.Spec(), tc.figures...); got != tc.want {
			t.Errorf("NeedsHorizon(%s, %q) = %v, want %v", tc.strategy, tc.figures, got, tc.want)
		}
	}
}
