package exporter

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vectorheal/vectorheal/internal/metricdoc"
)

// withIndex returns the labels that identify one index, with PostgreSQL's own column names,
// followed by extra.
func withIndex(extra ...string) []string {
	return append([]string{"target", "datname", "schemaname", "relname", "indexrelname"}, extra...)
}

// probeBuckets are the upper bounds of pgvector_probe_latency_seconds.
func probeBuckets() []float64 {
	return []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
}

// Metrics lists every metric the exporter publishes. It is the single source of truth: the
// exporter's descriptors are built from it and docs/metrics.md is generated from it.
func Metrics() []metricdoc.Metric {
	g, c, h := "gauge", "counter", "histogram"
	return []metricdoc.Metric{
		// Discovery.
		{Name: "pgvector_index_info", Type: g, Help: "A pgvector index and its build options (m and ef_construction for HNSW, lists for IVFFlat; 0 when not applicable). Always 1.", Labels: withIndex("method", "opclass", "dimensions", "m", "ef_construction", "lists")},
		{Name: "pgvector_index_size_bytes", Type: g, Help: "Size of the index on disk in bytes.", Labels: withIndex()},
		{Name: "pgvector_index_valid", Type: g, Help: "Whether the index is valid (1) or INVALID (0), e.g. a leftover of a failed REINDEX CONCURRENTLY.", Labels: withIndex()},

		// The installed pgvector and its known issues (version.go).
		{Name: "pgvector_extension_info", Type: g, Help: "The pgvector version installed in the target's database (pg_extension.extversion). Always 1.", Labels: []string{"target", "datname", "version"}},
		{Name: "pgvector_known_issue", Type: g, Help: "A known issue of the installed pgvector version (from pgvector's CHANGELOG; see docs/operations.md), the release that fixed it, and what vectorheal gates because of it (comma-separated, or none). Always 1; absent when the version has none.", Labels: []string{"target", "datname", "version", "issue", "fixed_in", "gates"}},

		// HNSW structure, from the pages.
		{Name: "pgvector_hnsw_elements", Type: g, Help: "HNSW graph elements by state: live (has a heap TID), being_deleted (no heap TID, not yet marked deleted), deleted (marked deleted, slot reusable).", Labels: withIndex("state")},
		{Name: "pgvector_hnsw_heap_tids", Type: g, Help: "Heap TIDs held by HNSW elements: live rows, and dead rows deleted from the table but still in the graph until VACUUM.", Labels: withIndex("state")},
		{Name: "pgvector_hnsw_layer_elements", Type: g, Help: "Live HNSW elements present on each layer (level >= layer; every element is on layer 0).", Labels: withIndex("layer")},
		{Name: "pgvector_hnsw_unreachable_elements", Type: g, Help: "Live HNSW elements not reachable from the entry point by following neighbour lists.", Labels: withIndex()},
		{Name: "pgvector_hnsw_connectivity_ratio", Type: g, Help: "Share of live HNSW elements reachable from the entry point (1 = fully connected).", Labels: withIndex()},
		{Name: "pgvector_hnsw_orphan_elements", Type: g, Help: "Live HNSW elements that no live element lists as a neighbour (no live in-neighbour).", Labels: withIndex()},
		{Name: "pgvector_hnsw_entry_point_quality_ratio", Type: g, Help: "Quality of the HNSW entry point from 0 to 1: 0 when missing, not live or without usable neighbours; 1 for a live entry point on the top layer with full neighbour lists (see docs/metrics.md).", Labels: withIndex()},
		{Name: "pgvector_hnsw_neighbor_fill_ratio", Type: g, Help: "Share of neighbour slots holding a valid TID, per layer, over live HNSW elements.", Labels: withIndex("layer")},
		{Name: "pgvector_index_fragmentation_ratio", Type: g, Help: "Share of the HNSW element and neighbour tuple space no live row needs: deleted and being-deleted elements, and the dead heap TIDs' share of live ones.", Labels: withIndex()},
		{Name: "pgvector_index_structural_faults", Type: g, Help: "Structural faults found in the last page scan, by kind (e.g. bad_page, version_mismatch, dangling_neighbor).", Labels: withIndex("kind")},

		// IVFFlat structure, from the pages.
		{Name: "pgvector_ivfflat_lists", Type: g, Help: "Number of IVFFlat lists (centers) in the index.", Labels: withIndex()},
		{Name: "pgvector_ivfflat_recommended_lists", Type: g, Help: "Recommended number of lists for the table's rows now: rows/1000 up to 1M rows, sqrt(rows) above (at least 1).", Labels: withIndex()},
		{Name: "pgvector_ivfflat_list_size_cv", Type: g, Help: "Coefficient of variation (stddev/mean) of the entries per IVFFlat list: 0 = perfectly balanced.", Labels: withIndex()},
		{Name: "pgvector_ivfflat_empty_lists", Type: g, Help: "IVFFlat lists holding no entry.", Labels: withIndex()},
		{Name: "pgvector_ivfflat_centroid_quality_ratio", Type: g, Help: "On a bounded sample of entries, mean distance to their own center over mean distance to the nearest other center (lower is better; near 1 means centers do not separate the data).", Labels: withIndex()},

		// Training staleness.
		{Name: "pgvector_index_training_staleness_seconds", Type: g, Help: "Seconds since the index was (re)built, detected by its relfilenode changing (since first seen when the build predates vectorheal).", Labels: withIndex()},
		{Name: "pgvector_index_rows_changed_since_build_ratio", Type: g, Help: "Rows inserted, updated or deleted in the table since the build, over the index's rows at build.", Labels: withIndex()},

		// Recall probe.
		{Name: "pgvector_recall_ratio", Type: g, Help: "Recall@k of the index measured by the last probe: share of exact top-k neighbours (index scans off) the index search returns with the current hnsw.ef_search / ivfflat.probes.", Labels: withIndex("k")},
		{Name: "pgvector_probe_latency_seconds", Type: h, Help: "Duration of the probe's top-k searches through the index.", Labels: withIndex()},
		{Name: "pgvector_probe_index_used", Type: g, Help: "Whether the planner uses the index for a top-k search (1) or not (0), from EXPLAIN of the probe query.", Labels: withIndex()},
		{Name: "pgvector_probe_errors_total", Type: c, Help: "Recall probes that failed.", Labels: withIndex()},

		// Drift.
		{Name: "pgvector_drift_score", Type: g, Help: "Distribution shift of rows written since the build: their mean distance to the nearest reference vector (IVFFlat centers, or a sample of build-time rows) over the same for build-time rows. 1 means no shift.", Labels: withIndex()},

		// Workload statistics.
		{Name: "pgvector_index_scans_total", Type: c, Help: "Index scans started on the index (pg_stat_user_indexes.idx_scan).", Labels: withIndex()},
		{Name: "pgvector_index_tuples_read_total", Type: c, Help: "Index entries returned by scans of the index (pg_stat_user_indexes.idx_tup_read).", Labels: withIndex()},
		{Name: "pgvector_index_blocks_hit_total", Type: c, Help: "Index blocks found in shared buffers (pg_statio_user_indexes.idx_blks_hit).", Labels: withIndex()},
		{Name: "pgvector_index_blocks_read_total", Type: c, Help: "Index blocks read from disk or the OS cache (pg_statio_user_indexes.idx_blks_read).", Labels: withIndex()},
		{Name: "pgvector_table_dead_tuples", Type: g, Help: "Estimated dead rows of the indexed table (pg_stat_user_tables.n_dead_tup).", Labels: withIndex()},
		{Name: "pgvector_table_live_tuples", Type: g, Help: "Estimated live rows of the indexed table (pg_stat_user_tables.n_live_tup).", Labels: withIndex()},
		{Name: "pgvector_table_last_vacuum_age_seconds", Type: g, Help: "Seconds since the indexed table was last vacuumed, manually or by autovacuum (absent when never).", Labels: withIndex()},
		{Name: "pgvector_table_last_analyze_age_seconds", Type: g, Help: "Seconds since the indexed table was last analyzed, manually or by autovacuum (absent when never).", Labels: withIndex()},
		{Name: "pgvector_query_calls_total", Type: c, Help: "Calls of statements using vector distance operators (pg_stat_statements, when installed).", Labels: []string{"target", "datname"}},
		{Name: "pgvector_query_exec_seconds_total", Type: c, Help: "Execution time of statements using vector distance operators (pg_stat_statements, when installed).", Labels: []string{"target", "datname"}},
		{Name: "pgvector_index_build_progress_ratio", Type: g, Help: "Progress of a running CREATE INDEX / REINDEX of the index (blocks or tuples done over total; present only while one runs).", Labels: withIndex()},
		{Name: "pgvector_vacuum_progress_ratio", Type: g, Help: "Progress of a running VACUUM of a table with a vector index (heap blocks scanned over total; present only while one runs).", Labels: []string{"target", "datname", "schemaname", "relname"}},

		// Self-metrics.
		{Name: "vectorheal_up", Type: g, Help: "Whether the target database answered the last scrape (1) or not (0).", Labels: []string{"target"}},
		{Name: "vectorheal_collector_success", Type: g, Help: "Whether the collector's last run on the target succeeded for every index (1) or not (0).", Labels: []string{"target", "collector"}},
		{Name: "vectorheal_collector_duration_seconds", Type: g, Help: "Duration of the collector's last run on the target (one index for per-index checks).", Labels: []string{"target", "collector"}},
		{Name: "vectorheal_collector_last_success_timestamp_seconds", Type: g, Help: "Unix time of the collector's last successful run on the target.", Labels: []string{"target", "collector"}},
		{Name: "vectorheal_page_reader_available", Type: g, Help: "Whether index pages can be read on the target (1: superuser get_raw_page or the vectorheal.index_page wrapper) or not (0: structure metrics are absent).", Labels: []string{"target"}},
	}
}

// descs holds one descriptor per metric of Metrics, by name.
type descs map[string]*prometheus.Desc

func newDescs() descs {
	d := descs{}
	for _, m := range Metrics() {
		d[m.Name] = prometheus.NewDesc(m.Name, m.Help, m.Labels, nil)
	}
	return d
}

// get returns the descriptor of name; an unknown name is a programming error.
func (d descs) get(name string) *prometheus.Desc {
	desc, ok := d[name]
	if !ok {
		panic(fmt.Sprintf("exporter: metric %s is not listed in Metrics()", name))
	}
	return desc
}
