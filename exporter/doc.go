package exporter

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/metricdoc"
)

// MetricsMarkdown renders docs/metrics.md: the per-index figures of the figure table, the
// other metrics of Metrics, the series an index costs, and how the figures that need a
// definition are computed.
//
// others are the metrics of vectorheal's other parts (receiver, healing engine), listed in a
// section of their own; the exporter cannot import them, so the caller passes them in. It
// stays one long function: most of it is the page's prose, in the order the page reads.
func MetricsMarkdown(others []metricdoc.Metric) []byte {
	var b bytes.Buffer
	b.WriteString(`# Metrics reference

Generated from the exporter's figure table (` + "`exporter/figures.go`" + `) and the ` + "`Metrics()`" + ` lists of
the exporter, the webhook receiver and the healing engine (the single source of truth) by
` + "`go test ./cmd/vectorheal -run TestMetricsDoc -update`" + `; do not edit by hand.

Index labels are PostgreSQL's own names: ` + "`target`" + ` (the configured target), ` + "`datname`" + `,
` + "`schemaname`" + `, ` + "`relname`" + ` (table) and ` + "`indexrelname`" + ` (index).

## Index figures

Every figure below carries the index labels, then the labels listed. **Measurer** is the name a
runbook validation or a strategy's ` + "`figures`" + ` parameter uses to re-measure the figure on the spot
(` + "`vectorheal runbook validate`" + ` accepts only these); figures that need the exporter's history cannot
be re-measured. **Value** is exact, or estimated when it rests on a sample or on PostgreSQL's
statistics estimates. **Default** says what ` + "`/metrics`" + ` publishes of the figure without
` + "`exporter.detail_series`" + ` (see [Series per index](#series-per-index)); with it, every figure is
published whenever it is known.

| Metric | Type | Unit | Index | Labels | Measurer | Value | Default | Help |
|---|---|---|---|---|---|---|---|---|
`)
	figs := map[string]bool{}
	for _, f := range figureTable() {
		figs[f.name] = true
		writeFigureRow(&b, f)
	}
	b.WriteString(`
## Target and exporter metrics

| Metric | Type | Labels | Help |
|---|---|---|---|
`)
	for _, m := range Metrics() {
		if !figs[m.Name] {
			writeRow(&b, m)
		}
	}
	if len(others) > 0 {
		b.WriteString(`
## Receiver and healing engine

| Metric | Type | Labels | Help |
|---|---|---|---|
`)
		for _, m := range others {
			writeRow(&b, m)
		}
	}
	c := seriesPerIndex()
	fmt.Fprintf(&b, `
## Series per index

With the default configuration a healthy index, once every check ran, publishes (counted in
the text format, where each classic bucket of a histogram is a series):

- **HNSW**: %d series plus the probe latency, %d in all, whatever its number of graph layers;
- **IVFFlat**: %d series plus the probe latency, %d in all;
- **probe latency**: %d series in the text format (`+"`_bucket{le=\"+Inf\"}`"+`, `+"`_sum`"+`, `+"`_count`"+`). The
  histogram carries native buckets and, by default, no classic bucket: a Prometheus that scrapes
  native histograms (the `+"`native-histograms`"+` feature of 2.40 and later, a scrape setting in newer
  3.x releases) stores it as one series, and the recording rules read its native buckets. For a
  Prometheus that does not, `+"`exporter.recall.latency_buckets: [0.001, 0.01, 0.1, 1]`"+` is the small
  classic set (%d more series per index) from which `+"`index:pgvector_probe_latency_seconds:p99_15m`"+`
  is computed; the mean latency and its anomaly alert need no bucket;
- **filtered queries**: %d series per query set declared for the index in
  `+"`exporter.filtered_queries`"+` (label `+"`query`"+`; none by default), whatever its number of samples;
- **the index of a partition**: %d more, `+"`pgvector_index_partition_info`"+`; a partitioned table's
  parent index publishes only its catalog figures (`+"`pgvector_index_info`"+`, `+"`pgvector_index_size_bytes`"+` 0).

What a healthy index does not publish by default (column **Default** above) is still measured:
`+"`vectorheal check`"+`, the Measurer of repairs and runbook validations read every figure. Left out are
the per-layer series, scan diagnostics, the baselines only the Measurer reads, and statistics no
rule reads; `+"`pgvector_hnsw_unreachable_elements`"+` is
`+"`pgvector_hnsw_elements{state=\"live\"} * (1 - pgvector_hnsw_connectivity_ratio)`"+`, which the rules
and dashboards compute; `+"`pgvector_index_valid`"+` and `+"`pgvector_probe_index_used`"+` are published when
0 (an index is valid unless it says otherwise, and `+"`pgvector_recall_ratio`"+` is published exactly
when the probe used the index); elements being deleted or deleted appear when there are some.

`+"`exporter.detail_series: true`"+` publishes every series, as before it was bounded: an HNSW index
then publishes %d series plus %d per graph layer (a million elements at m = 16 have about 5
layers), an IVFFlat index %d, each plus the probe latency, which with
`+"`exporter.recall.latency_buckets`"+` unset gets %d classic buckets (0.5ms to 5s; %d series in the
text format).

Structural fault kinds appear only once a scan of the current build found them (and then stay,
at 0 when a later scan finds none, until the index is rebuilt), so a healthy index has none.
Figures of a check that has not run or failed, build and vacuum progress outside a build or
vacuum, and vacuum and analyze ages of a table never vacuumed or analyzed are absent.
`, c.hnsw, c.hnsw+c.latency, c.ivfflat, c.ivfflat+c.latency, c.latency, len(config.SmallLatencyBuckets()),
		c.perFiltered, c.partition, c.detailHNSW, c.detailPerLayer, c.detailIVFFlat,
		len(config.DetailLatencyBuckets()), len(config.DetailLatencyBuckets())+3)
	b.WriteString(definitions)
	b.WriteString(layouts)
	return b.Bytes()
}

// seriesCounts are the series a healthy index publishes, by default and with
// exporter.detail_series, as docs/metrics.md states them; TestSeriesPerHealthyIndex holds the
// exporter to them, and TestSeriesPerIndexOnPostgres measures them on real indexes.
type seriesCounts struct {
	hnsw, ivfflat, latency                    int // by default; latency in the text format
	detailHNSW, detailPerLayer, detailIVFFlat int // with exporter.detail_series, without latency
	perFiltered, partition                    int
}

func seriesPerIndex() seriesCounts {
	return seriesCounts{hnsw: 22, ivfflat: 17, latency: 3, detailHNSW: 35, detailPerLayer: 2, detailIVFFlat: 29,
		perFiltered: len(filteredFigures()), partition: 1}
}

func writeFigureRow(b *bytes.Buffer, f figure) {
	code := func(ss []string) string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = "`" + s + "`"
		}
		return strings.Join(out, ", ")
	}
	methods := "all"
	if f.methods != nil {
		methods = strings.Join(f.methods, ", ")
	}
	measured := code(f.measuredNames())
	if measured == "" {
		measured = "no: " + f.unmeasured
	}
	value := "exact"
	if f.estimated {
		value = "estimated"
	}
	unit := f.unit
	if unit == "" {
		unit = "count"
	}
	if f.typ == counterType && strings.HasSuffix(f.name, "_seconds_total") {
		unit = "seconds"
	}
	published := "yes"
	if f.byDefault != nil {
		published = f.byDefault.when
	}
	fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s | %s | %s | %s | %s |\n", f.name, f.typ, unit, methods, code(f.labels), measured, value,
		published, strings.ReplaceAll(f.help, "|", `\|`))
}

func writeRow(b *bytes.Buffer, m metricdoc.Metric) {
	labels := make([]string, len(m.Labels))
	for i, l := range m.Labels {
		labels[i] = "`" + l + "`"
	}
	fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", m.Name, m.Type, strings.Join(labels, ", "), strings.ReplaceAll(m.Help, "|", `\|`))
}

const definitions = `
## How the figures are obtained

- **Schedules.** Structure scans, the recall probe, drift and user SQL metrics run in the
  background, each on its interval (` + "`exporter.structure`, `exporter.recall`, `exporter.drift`" + `,
  per custom metric), in a read-only transaction with ` + "`SET LOCAL statement_timeout`" + ` set to the
  check's timeout. At most ` + "`targets[].max_concurrent_checks`" + ` run at once per target and
  ` + "`exporter.max_concurrent_checks`" + ` overall; when more are due than may run, a freed slot goes
  to the check that has been due the longest, so a slow scan of a big index, or a fleet larger
  than the slots, delays the most recently refreshed figures and never the same index round
  after round. First runs are spread over a quarter of the interval and later runs by ±10 %. A scrape reads their latest results and the cheap statistics
  (` + "`pg_stat_user_indexes`, `pg_statio_user_indexes`, `pg_stat_user_tables`, `pg_stat_statements`" + `,
  ` + "`pg_stat_progress_create_index`, `pg_stat_progress_vacuum`" + `), bounded by ` + "`exporter.statistics_timeout`" + `.
  A failed check removes that index's figures of the check until it succeeds again and sets
  ` + "`vectorheal_collector_success`" + ` to 0; the recall probe also counts ` + "`pgvector_probe_errors_total`" + `.
  Collectors are ` + "`discovery`, `statistics`, `extension`, `structure`, `recall`, `drift`, `custom:<metric>` and `filtered:<query>`" + `.
- **pgvector version.** Each scrape reads ` + "`pg_extension.extversion`" + ` (collector ` + "`extension`" + `) and
  publishes the known issues of that version from pgvector's CHANGELOG (docs/operations.md).
- **Discovery** lists the target's hnsw and ivfflat indexes (filtered by ` + "`include`/`exclude`" + `) every
  ` + "`exporter.discovery_interval`" + `. INVALID indexes are published with ` + "`pgvector_index_valid 0`" + ` and
  are not probed or scanned.
- **Page reading.** Structure figures come from the index pages. As superuser the exporter uses
  pageinspect's ` + "`get_raw_page`" + `; otherwise it uses ` + "`index_page(regclass, integer)`" + ` in the schema
  ` + "`exporter.page_reader_schema`" + ` (default ` + "`vectorheal_pages`" + `), a SECURITY DEFINER wrapper that
  ` + "`vectorheal migrate`" + ` installs in each target database with a superuser ` + "`migrate_dsn`" + `. The
  wrapper refuses every relation that is not an hnsw or ivfflat index; EXECUTE is revoked from
  PUBLIC and granted to the predefined role ` + "`pg_monitor`" + `, so a monitoring login needs
  ` + "`GRANT pg_monitor TO <role>`" + ` (and SELECT on the indexed tables for dead heap TIDs, the probe and
  drift). Index pages hold the indexed vectors, so members of ` + "`pg_monitor`" + ` can read those
  vectors through the wrapper: grant it only to roles trusted with the data. Dead heap TIDs are
  exact only when the HOT chain of a TID whose row moved is followed on its heap page: the
  second wrapper, ` + "`heap_page(regclass, integer)`" + `, returns a heap page of a table that has an
  hnsw or ivfflat index, to a session user who may SELECT from that table, with every byte but
  the page header, the line pointers and each tuple's fixed 23-byte header zeroed. Without it
  ` + "`vectorheal_heap_reader_available`" + ` is 0 and ` + "`pgvector_hnsw_heap_tids`" + ` is absent whenever a
  scan meets such a TID (its upper bound would raise alerts and repairs);
  ` + "`pgvector_index_dead_entries_estimated`" + ` stands in, in the rules and in validations. Without
  either wrapper, structure metrics are absent and ` + "`vectorheal_page_reader_available`" + ` is 0; the
  reason is logged once. The role's access is found from the catalog only, so a role without
  USAGE on the schema gets the reason, never an error.
- **Entry point quality** is 0 when the metapage's entry point is missing, not live or its
  neighbour tuple is unusable, and 1 for an empty graph; otherwise
  (min(level, top)+1)/(top+1), halved when the level differs from the metapage's entry level,
  times min(1, used/wanted): level is the entry point's level, top the highest level of any
  live element, used its filled neighbour slots on layers 0..min(level, top), wanted the most
  neighbours those layers could give it. 1.0 is a live entry point on the top layer with full
  neighbour lists.
- **Reachability** is a breadth-first walk from the entry point over every valid neighbour slot
  (of neighbour tuples whose version matches their element's), through elements in any state;
  orphans are live elements other than the entry point that no live element lists as a
  neighbour.
- **On a busy index.** A page scan reads pages one at a time while the application writes, so
  it can see a state that existed only between two WAL records (a list linked to an element
  whose page was read before the insert; a neighbour tuple rewritten after its element was
  read). Each scan reads the WAL insert position (on a standby, the replay position) before its
  first page: a page whose LSN is not newer shows the index as of that moment. A structural
  fault whose pages are all such is counted at once; one that involves a page written during
  the scan is read again, its pages together under a new fence, up to three times, and counts
  only when the re-read still shows it. What stays unsettled is
  ` + "`pgvector_index_structural_faults_unconfirmed`" + `, never a fault; ` + "`pgvector_index_scan_pages_changed`" + `
  says how many pages were written during the scan. Unlogged indexes carry no page LSN: their
  cross-page faults are always unconfirmed. An index that gets a new file node during the scan
  (REINDEX, VACUUM FULL) is scanned again. Element counts, layers and neighbour fill are read
  from single page images (exact for each page as read); unreachable elements and orphans leave
  out live elements on pages written during the scan whose in-links may sit on pages read
  before; dead heap TIDs are classified when the heap is read, after the index page; IVFFlat
  list sizes count each page as read. On a quiet index all of this equals a snapshot.
- **Duplicate neighbours** (HNSW) are live elements that list one neighbour twice on one layer
  (pgvector up to 0.8.6: an insert racing a vacuum). Each list is read from one page image, so
  the count is exact. The same neighbour on two layers of an element above layer 0 is normal
  and not counted.
- **Fragmentation** (HNSW) is the share of element and neighbour tuple bytes no live row needs:
  deleted and being-deleted elements with their neighbour tuples, plus live ones weighted by
  the dead share of heap TIDs. Free space on pages is not counted.
- **Centroid quality** is, over a bounded sample of entries, the mean distance to their own
  center divided by the mean distance to the nearest other center (lower is better).
- **Training staleness.** The exporter notices a (re)build by the index's relfilenode changing
  (or a new index OID, as after ` + "`REINDEX CONCURRENTLY`" + `) and records the moment, the index's rows
  and the table's write counter (` + "`n_tup_ins + n_tup_upd + n_tup_del`" + `) in the state store's
  ` + "`index_builds`" + ` table (in memory without a state store). An index built before vectorheal first
  saw it counts from that first sight. Rows changed since build = writes since then over rows
  at build; it is absent after a statistics reset until the counter passes the recorded value.
- **As-built baselines.** pgvector's builds are not perfect graphs (measured on PostgreSQL 15,
  pgvector 0.8.0: 1,270–1,302 orphans in a fresh 200k × 128-d build; about 2% unreachable at
  m = 8, ef_construction = 32; about 45% unreachable for inner product over vectors of unequal
  norms), so the HNSW structure alerts compare today's figures with the index's own. The first
  structure scan of a build records its connectivity, orphan share, layer-0 neighbour fill,
  layers, orphan and unreachable counts, and the first recall probe its recall at the settings a
  new session gets, in the state store's ` + "`index_as_built`" + ` table (in memory without a state store;
  the first replica to record a figure wins). The basis is ` + "`build`" + ` when that scan finds no deleted
  or being-deleted element and, read exactly from the heap, no dead heap TID; otherwise
  ` + "`first_seen`" + `: an index first measured after churn is judged from that point on until a rebuild
  gives it a baseline of its own, and meanwhile the dead-entry and fragmentation alerts, which
  need no baseline, still fire. A rebuild (new relfilenode or OID) starts a new baseline; a
  restart reads the recorded one back. ` + "`pgvector_index_as_built_timestamp_seconds{basis}`" + ` says when
  and on which basis. Without page access (managed PostgreSQL) only recall is recorded, with
  basis ` + "`first_seen`" + `. The repair engine reads the same baseline through the Measurer to judge a
  repair by the figures the index had when it was built.
- **Recall probe.** Up to ` + "`exporter.recall.queries`" + ` query vectors are sampled from the rows the
  index holds: the indexed value is not NULL and, for a partial index, its predicate holds
  (every row is a candidate below 10 000 rows; above, a ` + "`TABLESAMPLE SYSTEM`" + ` of about 20 rows per
  query, widened tenfold while too few rows come back, and the table's last pages, where
  appended rows land). ` + "`exporter.recall.newest_share`" + ` of them (default half) are the candidates
  written last (youngest ` + "`xmin`" + `), the rest are drawn at random: applications mostly ask about
  recent data, and data drifting where the index was not built for is recent and at first a
  small share of the table, too small for uniform queries to see it. Each is searched top-k through the index with
  the current ` + "`hnsw.*`" + ` / ` + "`ivfflat.*`" + ` settings (those a new session of the role gets, so an
  ` + "`ALTER DATABASE/ROLE ... SET hnsw.ef_search`" + ` counts at once, though pooled sessions keep their
  start values), then exactly with ` + "`enable_indexscan`" + ` and ` + "`enable_bitmapscan`" + ` off. The query
  orders by the index's own key, the column or the indexed expression as the server prints it
  (` + "`pg_get_indexdef`" + `), and repeats a partial index's predicate (` + "`pg_get_expr`" + ` of ` + "`indpred`" + `), so
  the planner can use the index and exact search compares on the same rows. Recall is the share
  of exact neighbours found: a returned row counts when it is one of the exact rows or its
  distance is not beyond the exact k-th within 1e-6·(1+|k-th|) (ties; pgvector's distances
  carry single-precision rounding), each row once; the same definition judges
  ` + "`hnsw_rebuild`" + `'s new index before it is swapped in. ` + "`pgvector_probe_index_used`" + ` is 1
  when ` + "`EXPLAIN`" + ` of the query shows a scan of the index for every query vector.
  Only then are ` + "`pgvector_recall_ratio`" + ` and the latencies published: when the planner chooses
  a sequential scan or another index on the same key (despite the other method's setting
  raised to its largest value; see "Several indexes on one key"), the probe would
  measure that and not the index, so the index gets no recall figure (and a repair's validation
  of it fails, saying so). The probe orders by the operator class's own ordering operator as
  the catalog names it, schema-qualified (` + "`OPERATOR(public.<->)`" + ` for ` + "`vector_l2_ops`" + `;
  ` + "`<=>`" + ` cosine, ` + "`<#>`" + ` inner product, ` + "`<+>`" + ` l1, ` + "`<~>`" + ` hamming, ` + "`<%>`" + ` jaccard), so a
  ` + "`search_path`" + ` with an operator of the same name ahead of pgvector's does not change it. The probe's statements carry the comment
  ` + "`/* vectorheal probe */`" + ` and are left out of ` + "`pgvector_query_*`" + `.
- **Filtered queries.** Each query set of ` + "`exporter.filtered_queries`" + ` runs on its own schedule
  (collector ` + "`filtered:<name>`" + `) in one read-only transaction bounded by its ` + "`timeout`" + `. It samples
  ` + "`samples`" + ` query vectors from the indexed column (as the recall probe does) and, independently,
  as many rows of the ` + "`filters`" + ` columns (non-NULL, ` + "`ORDER BY random()`" + `): an application's query
  vector does not come from a row that matches its own filter. Each pair runs the configured SQL
  (` + "`$1`" + ` the vector, then the filter values as text in order, then k) through the index with the
  settings a new session gets (` + "`hnsw.ef_search`, `hnsw.iterative_scan`, `hnsw.max_scan_tuples`, `ivfflat.*`" + `),
  timed, then exactly with ` + "`enable_indexscan`" + ` and ` + "`enable_bitmapscan`" + ` off. A query is short when the
  index returned fewer rows than exact search (which returns k, or every matching row when fewer
  match: a filter matching 3 rows is not short at 3). Recall is the share of exact rows the index
  returned, rows compared by all their values, so return a key (e.g. ` + "`id`" + `). Figures are per query
  set (label ` + "`query`" + `), never per sample; the Measurer's value of each is the worst query set of the
  index (highest short share and latency, lowest rows, recall and index use), so a repair is judged
  by every filtered query of the index. Statements carry the probe's comment and are left out of
  ` + "`pgvector_query_*`" + `.
- **Drift score.** Rows written since the build are those whose ` + "`xmin`" + ` is newer than the
  transaction counter recorded with the build. For IVFFlat (pages readable) the reference is the
  index's centers, which never move after the build: score = mean distance of a sample of new
  rows to their nearest center over the same mean for a sample of build-time rows. For HNSW
  (or IVFFlat without page access) the reference is a sample of build-time rows, and the
  baseline a second, disjoint sample of build-time rows. Distances are the index's own, except
  inner product, replaced by l2. 1.0 means no shift; with no row written since the build the
  score is 1. Samples (` + "`exporter.drift.sample_size`" + `) use ` + "`ORDER BY random()`" + ` over each side's rows,
  bounded by the check's timeout.
- **Dead entries, estimated** (` + "`pgvector_index_dead_entries_estimated`" + `), for roles that cannot read
  pages and heap (managed PostgreSQL: RDS, Cloud SQL, Azure, Supabase, Neon). A delete, an update
  that is not HOT and an aborted insert each leave, in every index of the table, an entry
  pointing at a dead row version, which searches visit and discard until VACUUM removes it
  (pruning a page keeps the line pointer such an entry points at). A HOT update (no indexed
  column changed, room on the page) leaves none: the entry keeps pointing at the root of the
  row's chain. ` + "`n_dead_tup`" + ` counts every dead version, HOT ones until pruning removes them, and is
  set anew by each VACUUM (to the dead rows it could not remove yet) and ANALYZE (from its
  sample); ` + "`n_tup_del + n_tup_upd − n_tup_hot_upd`" + `, counted since the statistics were reset, includes
  every delete and non-HOT update since the last VACUUM. The estimate is the smaller of the two:
  exact while no VACUUM ran since the reset (measured: 1,000 deletes, 500 HOT and 200 non-HOT
  updates, 208 HOT versions pruned — ` + "`n_dead_tup`" + ` 1,492, estimate 1,200, exact 1,200), and otherwise
  an over-count by at most the HOT versions not yet pruned; a table only ever HOT-updated gives
  0, however many dead versions it holds. The rules use the exact count
  (` + "`pgvector_hnsw_heap_tids{state=\"dead\"}`" + `) where it is published and the estimate otherwise, so by
  default the estimate is published for the HNSW indexes without the exact count; with
  ` + "`exporter.detail_series`" + ` it is published for every index, also where the exact count exists, so
  the two can be compared. It is the table's figure, not
  the index's: a partial index holds entries only for the rows its predicate selects, and an
  index rebuilt since the rows died holds none of them, yet the estimate counts them until the
  table's next VACUUM (which then has little to do in that index).
- **xmin horizon holder** (` + "`pgvector_xmin_horizon_age_seconds`, `pgvector_xmin_horizon_age_xids`" + `), one
  series each per database, labelled by ` + "`kind`" + ` and ` + "`holder`" + `: the oldest of what VACUUM must still
  respect in the database (PostgreSQL's ` + "`ComputeXidHorizons`" + `) — backends of the database with a
  ` + "`backend_xmin`" + ` or ` + "`backend_xid`" + ` (` + "`session`" + `, ` + "`idle_in_transaction`" + `; holder the pid), prepared
  transactions of the database (` + "`prepared`" + `; holder the gid), replication slots of the cluster with
  an ` + "`xmin`" + ` (` + "`replication_slot`" + `; their ` + "`catalog_xmin`" + ` holds back catalogs only and is not counted)
  and walsenders reporting ` + "`hot_standby_feedback`" + ` (` + "`standby_feedback`" + `; holder the pid). Rows deleted
  after it can be removed neither by VACUUM nor by a rebuild of an index, which copies every row
  an old snapshot may still see. Sessions and prepared transactions younger than
  ` + "`exporter.xmin_horizon_min_age`" + ` (1m) are not named: they are ordinary work, and a new pid each
  scrape would make a new series each scrape. Left out: vectorheal's own reads (application_name
  ` + "`vectorheal`" + `, bounded by their statement timeouts) and backends running a VACUUM (other vacuums
  ignore them); vectorheal's own rebuilds (` + "`vectorheal-repair`" + `) are counted, as they hold the horizon
  while they run. The labels change with the holder, so a database has at most one series of each at
  a time. Seconds are since the holder's transaction began or since PREPARE; PostgreSQL records no
  start for slots and standby feedback, so they have only the age in transactions. Read on every
  scrape with the statistics. Without ` + "`pg_read_all_stats`" + ` (` + "`pg_monitor`" + `) other roles' backends and the
  walsenders show no xmin: only the role's own sessions, prepared transactions and slots are seen.
- **Build and vacuum progress** are present only while a ` + "`CREATE INDEX`/`REINDEX`" + ` of a visible index
  or a ` + "`VACUUM`" + ` of a table with a vector index runs.
`
