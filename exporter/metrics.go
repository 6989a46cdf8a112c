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

// Metrics lists every metric the exporter publishes: the per-index figures of figureTable,
// then the metrics of a target and the exporter's own. It is the single source of truth: the
// exporter's descriptors are built from it and docs/metrics.md is generated from it.
func Metrics() []metricdoc.Metric {
	var out []metricdoc.Metric
	for _, f := range figureTable() {
		out = append(out, f.metric())
	}
	g, c := "gauge", "counter"
	return append(out, []metricdoc.Metric{
		// Per target or table.
		// The installed pgvector and its known issues (version.go).
		{Name: "pgvector_extension_info", Type: g, Help: "The pgvector version installed in the target's database (pg_extension.extversion). Always 1.", Labels: []string{"target", "datname", "version"}},
		{Name: "pgvector_known_issue", Type: g, Help: "A known issue of the installed pgvector version (from pgvector's CHANGELOG; see docs/operations.md), the release that fixed it, and what vectorheal gates because of it (comma-separated, or none). Always 1; absent when the version has none.", Labels: []string{"target", "datname", "version", "issue", "fixed_in", "gates"}},
		{Name: "pgvector_query_calls_total", Type: c, Help: "Calls of statements using vector distance operators (pg_stat_statements, when installed).", Labels: []string{"target", "datname"}},
		{Name: "pgvector_query_exec_seconds_total", Type: c, Help: "Execution time of statements using vector distance operators (pg_stat_statements, when installed).", Labels: []string{"target", "datname"}},
		// The oldest holder of the database's xmin horizon (stats.go, internal/horizon): one
		// series each per database, whose kind and holder labels change with the holder.
		{Name: "pgvector_xmin_horizon_age_seconds", Type: g, Help: "How long the oldest holder of the database's xmin horizon has held it: a session (since its transaction began; kind session or idle_in_transaction, holder its pid) or a prepared transaction (since PREPARE; holder its gid) older than exporter.xmin_horizon_min_age. Dead rows deleted after it can be removed neither by VACUUM nor by a rebuild. Absent when none holds, and for slots and standby feedback, whose start is not recorded (see pgvector_xmin_horizon_age_xids).", Labels: []string{"target", "datname", "kind", "holder"}},
		{Name: "pgvector_xmin_horizon_age_xids", Type: g, Help: "Transactions started since the oldest xmin the database's oldest horizon holder keeps (age(xmin)): as pgvector_xmin_horizon_age_seconds, plus replication slots with an xmin (kind replication_slot, holder the slot) and walsenders reporting hot_standby_feedback (kind standby_feedback, holder the pid). Absent when none holds.", Labels: []string{"target", "datname", "kind", "holder"}},
		{Name: "pgvector_vacuum_progress_ratio", Type: g, Help: "Progress of a running VACUUM of a table with a vector index (heap blocks scanned over total; present only while one runs).", Labels: []string{"target", "datname", "schemaname", "relname"}},

		// Self-metrics.
		{Name: "vectorheal_shard_info", Type: g, Help: "This replica's shard of the indexes it measures (--exporter.shard of --exporter.total-shards, split by --exporter.shard-by): by index, it measures the indexes whose (target, database, index) hashes to it, and the figures of a target as a whole when the target's name does; by target, everything of the targets whose name hashes to it and nothing of the others. Present only with more than one shard.", Labels: []string{"shard", "total_shards", "by"}},
		{Name: "vectorheal_up", Type: g, Help: "Whether the target database answered the last scrape (1) or not (0).", Labels: []string{"target"}},
		{Name: "vectorheal_collector_success", Type: g, Help: "Whether the collector's last run on the target succeeded for every index (1) or not (0).", Labels: []string{"target", "collector"}},
		{Name: "vectorheal_collector_duration_seconds", Type: g, Help: "Duration of the collector's last run on the target (one index for per-index checks).", Labels: []string{"target", "collector"}},
		{Name: "vectorheal_collector_last_success_timestamp_seconds", Type: g, Help: "Unix time of the collector's last successful run on the target.", Labels: []string{"target", "collector"}},
		{Name: "vectorheal_index_reads_server", Type: g, Help: "Where the checks that read an index itself (page scans, recall and filtered probes) read on the target: 1 for the server they read on now, standby (targets[].standby) or primary. Present once a check ran on a target with a standby.", Labels: []string{"target", "server"}},
		{Name: "vectorheal_standby_replay_lag_seconds", Type: g, Help: "How far the target's standby's replay is behind the primary, in time since the last transaction it replayed (0 when it has replayed everything the primary wrote). Over targets[].standby.max_lag, checks read on the primary.", Labels: []string{"target"}},
		{Name: "vectorheal_standby_replay_lag_bytes", Type: g, Help: "WAL the target's primary wrote that its standby has not replayed.", Labels: []string{"target"}},
		{Name: "vectorheal_standby_replay_paused", Type: g, Help: "Whether the target's standby's replay is paused (pg_wal_replay_pause()): checks then read on the primary.", Labels: []string{"target"}},
		{Name: "vectorheal_standby_replay_conflicts_total", Type: c, Help: "Reads on the target's standby it cancelled for a replay conflict (a VACUUM replayed that removed rows the read's snapshot needed, a lock); each is retried, up to 3 tries. See docs/operations.md for the standby settings that avoid them.", Labels: []string{"target"}},
		{Name: "vectorheal_structure_scan_budget_pages_per_second", Type: g, Help: "Page budget of the target's structure scans: exporter.structure.max_pages_per_second, or with exporter.structure.adaptive the rate the latest scan's budget is at (or ended at) between min_pages_per_second and that ceiling. Present once a scan with a budget has run.", Labels: []string{"target"}},
		{Name: "vectorheal_structure_scan_backoffs_total", Type: c, Help: "Times an adaptive page budget of the target's structure scans was halved because the application's latency (pg_stat_statements, statements with a vector operator, vectorheal's probes left out) rose above its level before the scan times exporter.structure.latency_factor. Present with exporter.structure.adaptive once a scan with a budget has run.", Labels: []string{"target"}},
		{Name: "vectorheal_page_reader_available", Type: g, Help: "Whether index pages can be read on the target (1: superuser get_raw_page or the index_page wrapper of exporter.page_reader_schema) or not (0: structure metrics are absent).", Labels: []string{"target"}},
		{Name: "vectorheal_heap_reader_available", Type: g, Help: "Whether the heap pages of indexed tables can be read to follow HOT chains (1: superuser get_raw_page or the heap_page wrapper of exporter.page_reader_schema) or not (0: pgvector_hnsw_heap_tids is absent while a TID needs its chain followed, and pgvector_index_dead_entries_estimated stands in).", Labels: []string{"target"}},
	}...)
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
