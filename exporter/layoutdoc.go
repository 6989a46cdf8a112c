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
  one to the other, or two HNSW builds). The planner picks one of them for a top-k search; the
  probe publishes recall only for the index the planner used (` + "`pgvector_probe_index_used`" + ` 1),
  and none for the others, whose ` + "`pgvector_probe_index_used`" + ` is 0. So lowering ` + "`ivfflat.probes`" + `,
  which makes the IVFFlat index cheaper and the planner's choice, shows as a low recall of the
  IVFFlat index and never of the HNSW index. The other way, measuring each index through itself,
  would need the planner to skip the other indexes of the table inside the probe's read-only
  transaction, and PostgreSQL has no such switch: ` + "`enable_indexscan`" + ` turns off every index scan;
  pgvector's own settings change what is measured and do not reliably flip the choice (and two
  HNSW indexes on one column have none to tell them apart); marking an index invalid in
  ` + "`pg_index`" + ` or dropping it in a rolled-back transaction writes the catalog, needs ownership and
  takes locks that block the application's queries. Measuring what the planner does also
  measures what queries see: an index the planner does not use serves no query, and once it
  does, the probe measures it.
`
