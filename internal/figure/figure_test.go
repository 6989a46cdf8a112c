package figure

import (
	"math"
	"testing"
)

func TestValue(t *testing.T) {
	cases := []struct {
		name string
		v    float64
		want string
	}{
		{"pgvector_hnsw_heap_tids:dead", 2400, "2400"},
		{"pgvector_hnsw_heap_tids:dead", 0, "0"},
		{"pgvector_ivfflat_list_size_cv", 0.43217, "0.432"},
		{"pgvector_ivfflat_recommended_lists", 141.42, "141"},
		{"pgvector_index_size_bytes", 512, "512B"},
		{"pgvector_index_size_bytes", 2 << 20, "2MiB"},
		{"pgvector_index_size_bytes", 2.5 * (1 << 30), "2.5GiB"},
		{"pgvector_index_size_bytes", 1234567, "1.18MiB"},
		{"pgvector_recall_ratio", 0.9412, "94.1%"},
		{"pgvector_recall_ratio", 1, "100%"},
		{"pgvector_index_fragmentation_ratio", 0.001, "0.1%"},
		{"pgvector_probe_latency_seconds", 0.0123, "12.3ms"},
		{"pgvector_probe_latency_seconds", 0.000456, "456µs"},
		{"pgvector_probe_latency_seconds", 1.5, "1.5s"},
		{"pgvector_probe_latency_seconds", 90.4, "1m30s"},
		{"pgvector_probe_latency_seconds", 0, "0s"},
		{"pgvector_recall_ratio", math.NaN(), "NaN"},
		{"pgvector_table_dead_tuples", math.Inf(1), "+Inf"},
	}
	for _, c := range cases {
		if got := Value(c.name, c.v); got != c.want {
			t.Errorf("Value(%q, %v) = %q, want %q", c.name, c.v, got, c.want)
		}
	}
}

func TestPairs(t *testing.T) {
	m := map[string]float64{"pgvector_recall_ratio": 0.5, "pgvector_hnsw_heap_tids:dead": 12, "pgvector_index_size_bytes": 8192}
	want := "pgvector_hnsw_heap_tids:dead=12 pgvector_index_size_bytes=8KiB pgvector_recall_ratio=50%"
	for range 20 { // map order varies between runs; the output must not
		if got := Pairs(m); got != want {
			t.Fatalf("Pairs = %q, want %q", got, want)
		}
	}
	if got := Pairs(nil); got != "none" {
		t.Errorf("Pairs(nil) = %q, want none", got)
	}
}
