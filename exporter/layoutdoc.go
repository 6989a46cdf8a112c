package exporter

// layouts is the part of docs/metrics.md that says which figures each index type, operator
// class and table layout gets.
const layouts = `
## What each index type and layout gets

| Indexed values | HNSW structure | IVFFlat structure | Recall probe | Drift score |
|---|---|---|---|---|
| ` + "`vector`" + `, ` + "`halfvec`" + ` (l2, inner product, cosine; l1 on HNSW) | yes | yes | yes | yes |
| ` + "`sparsevec`" + ` (l2, inner product, cosine, l1; HNSW only) | yes | — | yes | no |
| ` + "`bit`" + ` (hamming, jaccard on HNSW; hamming on IVFFlat) | yes | yes | yes | no |

- **IVFFlat over ` + "`bit`" + `.** pgvector stores the centers of a ` + "`bit_hamming_ops`" + ` index as bits
  (k-means on 0/1 values, each center coordinate rounded to a bit) and its entries as
  PostgreSQL's own ` + "`bit`" + ` values. Both are decoded as 0/1 vectors; list sizes, balance and
  centroid quality use hamming distance.
- **Drift** compares vectors parsed from their ` + "`[x,y,...]`" + ` text form, so ` + "`sparsevec`" + ` and ` + "`bit`" + `
  indexes have no ` + "`pgvector_drift_score`" + `; that is not a failure of the drift collector.
- **Expression indexes** (e.g. ` + "`(embedding::halfvec(8))`" + ` over a ` + "`vector`" + ` column) have the
  dimensions of the expression's type (` + "`pgvector_index_info{dimensions=\"8\"}`" + `); the probe and
  drift read the expression, not the column.
- **Partial indexes** (` + "`WHERE category = 1`" + `) are probed and sampled for drift on the rows that
  satisfy the predicate, so the planner uses the index and exact search sees the same rows.
- **Partitioned tables.** ` + "`CREATE INDEX ... ON parent`" + ` makes one index per partition and a
  parent index without storage. Each partition's index is measured as an index of its own (its
  ` + "`relname`" + ` is the partition); the parent is listed (` + "`pgvector_index_info`" + `, and ` + "`pgvector_index_valid`" + ` when 0 or with ` + "`exporter.detail_series`" + `)
  but has no pages to scan and no rows of its own to probe, so it has no structure, recall or
  drift figures and no failing collector. Each partition's index also publishes
  ` + "`pgvector_index_partition_info{parent_schemaname, parent_relname, parent_indexrelname} 1`" + `.
  The parent's names are on that one info series rather than on every series of the partition:
  three more labels on each series would multiply the label sets stored for nothing most
  queries use. Group a partition's figures by the parent the Prometheus way, joining the info
  series:

  ` + "```promql" + `
  sum by (target, datname, parent_schemaname, parent_relname, parent_indexrelname) (
    pgvector_index_size_bytes
    * on (target, datname, schemaname, relname, indexrelname) group_left (parent_schemaname, parent_relname, parent_indexrelname)
    pgvector_index_partition_info
  )
  ` + "```" + `

  The recording rules ` + "`parent:*`" + ` (docs/rules.md) do this for the parent's rollup: elements, heap
  TIDs, dead-entry estimates, size and rows summed, connectivity weighted by live elements and
  recall by live rows; ` + "`vectorheal check`" + ` shows the same rollup under the parent. Alerts and
  repairs stay per partition index (docs/operations.md).
- **Several indexes on one key** (an HNSW and an IVFFlat index on one column while moving from
  one to the other, or two HNSW builds). The planner picks one of them for the application's
  top-k search, but the probe measures each through itself, so the index a team is about to
  switch to has its recall too: inside the probe's read-only transaction it raises the other
  method's search setting to its largest value (` + "`ivfflat.probes`" + ` 32768 when measuring an HNSW
  index, ` + "`hnsw.ef_search`" + ` 1000 when measuring an IVFFlat index), which makes pgvector cost that
  index as a search of all of it; the measured index keeps the settings a new session gets, so
  its figure is unchanged. ` + "`EXPLAIN`" + ` still judges every query: where the planner keeps another
  index (two indexes of one method on one key have no setting to tell them apart; a very large
  HNSW index can stay the cheaper one) or a sequential scan, ` + "`pgvector_probe_index_used`" + ` is 0
  and the index has no recall or latency figure, rather than another index's. PostgreSQL has no
  switch to skip one index: ` + "`enable_indexscan`" + ` turns off every index scan, and marking an index
  invalid or dropping it in a rolled-back transaction writes the catalog, needs ownership and
  takes locks that block the application's queries.
`
