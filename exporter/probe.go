package exporter

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/measure"
)

// probeMarker starts every probe statement so the pg_stat_statements figures can leave the
// exporter's own queries out.
const probeMarker = "/* vectorheal probe */ "

// recallResult is the outcome of one recall probe.
type recallResult struct {
	k int
	// ratio is recall@k through the index; NaN when !indexUsed.
	ratio float64
	// indexUsed is whether the planner chose the index for every query of the probe. When it
	// did not, the searches would have gone through another index (or none), so the probe
	// measures nothing of this index: ratio is NaN and there are no latencies.
	indexUsed bool
	// latencies of the top-k searches through the index, in seconds.
	latencies []float64
}

// probeStatements are the SQL statements of one index's probe.
type probeStatements struct {
	// search is the top-k search, with the query vector as $1: it orders by the index's own
	// key (column or expression) and repeats a partial index's predicate, so the planner can
	// use the index and exact search compares on the same rows.
	search string
	// sample and sampleBlocks select $1 query vectors among the rows the index holds, the
	// latter from a block sample of $3 percent of the table and its tail from block $4 on:
	// the $2 most recently written rows of these (youngest xmin), the rest at random.
	sample, sampleBlocks string
}

// statementsFor builds the probe's statements for ix. Every identifier and expression in them
// comes from the catalog (quoted names, the server's own text of the index expression and
// predicate); the operator is one of distanceOf's constants.
func statementsFor(ix catalog.Index, op string, k int) probeStatements {
	key, tbl := ix.Key(), ix.QuotedTable()
	filter, rows := "", ` WHERE `+key+` IS NOT NULL`
	if p := ix.Where(); p != "" {
		filter, rows = ` WHERE `+p, rows+` AND `+p
	}
	// k is a literal, not a parameter, and plans are custom: a generic plan does not know the
	// LIMIT and the query vector, and then prefers a sequential scan to the index.
	return probeStatements{
		search: probeMarker + `SELECT ctid::text, (` + key + ` ` + op + ` $1)::float8 FROM ` + tbl + filter +
			` ORDER BY ` + key + ` ` + op + ` $1 LIMIT ` + strconv.Itoa(k),
		sample:       sampleSQL(key, tbl, rows, false),
		sampleBlocks: sampleSQL(key, tbl, rows, true),
	}
}

// sampleSQL selects $1 query vectors among the rows of tbl that match rows (a WHERE clause):
// the $2 with the youngest xmin, then the rest at random. With blocks, the candidates are a
// block sample of $3 percent of the table and every row from block $4 on (the table's tail,
// where appended rows land: newly written rows are too few in a small block sample to be
// found there); without, every row. The choice is made on row positions, so the vectors of
// rows that are not chosen are never read; the chosen rows are fetched by ctid in the same
// statement, that is the same snapshot. age() of a frozen xmin is the largest integer:
// frozen rows are the oldest.
func sampleSQL(key, tbl, rows string, blocks bool) string {
	candidates := `SELECT ctid AS t, age(xmin) AS age FROM ` + tbl + rows
	if blocks {
		candidates = `SELECT DISTINCT ON (t) t, age FROM (
    SELECT ctid AS t, age(xmin) AS age FROM ` + tbl + ` TABLESAMPLE SYSTEM ($3)` + rows + `
    UNION ALL
    SELECT ctid, age(xmin) FROM ` + tbl + rows + ` AND ctid >= format('(%s,0)', $4::bigint)::tid
  ) s`
	}
	return probeMarker + `WITH candidates AS (
  ` + candidates + `
), picked AS (
  SELECT t FROM (SELECT t, random() AS r, row_number() OVER (ORDER BY age, random()) AS newest FROM candidates) c
  ORDER BY newest <= $2 DESC, r LIMIT $1
)
SELECT ` + key + `::text FROM ` + tbl + ` WHERE ctid = ANY (ARRAY(SELECT t FROM picked))`
}

// probe measures recall@k of ix: it samples up to queries values of the index's key from the
// rows the index holds (newest of them from the most recently written rows, the rest at
// random; see config.RecallCheck.NewestShare), searches their k nearest neighbours through the index with the
// session's current hnsw.ef_search / ivfflat.probes, then exactly with index scans off, and
// compares with measure.Hits: ties at the k-th distance count as hits, so recall is not
// understated when several rows are equally near. Recall is measured only when EXPLAIN shows
// the planner choosing ix for every query: with another index on the same key (an HNSW and an
// IVFFlat during a migration) the searches would measure the other one. It returns nil without error when
// there is nothing to probe: no row to take a query from, or a partitioned table's parent
// index, which has no storage (each partition's index is probed on its own).
func probe(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, queries, newest, k int, timeout time.Duration) (*recallResult, error) {
	if ix.Partitioned {
		return nil, nil
	}
	op, _, err := distanceOf(ix)
	if err != nil {
		return nil, err
	}
	stmts := statementsFor(ix, op, k)
	res := &recallResult{k: k}
	var empty bool
	err = readOnly(ctx, pool, timeout, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_custom_plan`); err != nil {
			return fmt.Errorf("set plan_cache_mode: %w", err)
		}
		if err := currentSearchSettings(ctx, tx); err != nil {
			return err
		}
		if err := costOutOtherMethod(ctx, tx, ix); err != nil {
			return err
		}
		qs, err := sampleVectors(ctx, tx, ix, stmts, queries, newest)
		if err != nil {
			return err
		}
		if len(qs) == 0 {
			empty = true
			return nil
		}
		if res.indexUsed, err = usesIndexForAll(ctx, tx, ix, stmts.search, qs); err != nil {
			return err
		}
		if !res.indexUsed {
			res.ratio = math.NaN()
			return nil
		}
		approx := make([][]measure.Row, len(qs))
		for i, q := range qs {
			start := time.Now()
			approx[i], err = topK(ctx, tx, stmts.search, q)
			if err != nil {
				return fmt.Errorf("index search: %w", err)
			}
			res.latencies = append(res.latencies, time.Since(start).Seconds())
		}
		if _, err := tx.Exec(ctx, `SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off`); err != nil {
			return fmt.Errorf("turn index scans off: %w", err)
		}
		var hits, want int
		for i, q := range qs {
			exact, err := topK(ctx, tx, stmts.search, q)
			if err != nil {
				return fmt.Errorf("exact search: %w", err)
			}
			h, w := measure.Hits(approx[i], exact)
			hits += h
			want += w
		}
		if want == 0 {
			empty = true
			return nil
		}
		res.ratio = float64(hits) / float64(want)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: recall probe: %w", ix, err)
	}
	if empty {
		return nil, nil
	}
	return res, nil
}

// searchSettingsSQL reads the hnsw.* and ivfflat.* settings a new session of this role in this
// database starts with (ALTER DATABASE / ROLE ... SET), the most specific one winning as in
// PostgreSQL: database and role, then role, then database, then every database.
const searchSettingsSQL = `
SELECT DISTINCT ON (name) name, value
FROM (
  SELECT split_part(c, '=', 1) AS name, substr(c, strpos(c, '=') + 1) AS value,
         (s.setrole <> 0)::int * 2 + (s.setdatabase <> 0)::int AS rank
  FROM pg_db_role_setting s, unnest(s.setconfig) AS c
  WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
    AND s.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = current_user))
) AS settings
WHERE name LIKE 'hnsw.%' OR name LIKE 'ivfflat.%'
ORDER BY name, rank DESC`

// currentSearchSettings applies to the transaction the search settings a new session would
// have: a pooled session keeps the values it started with, so without this the probe would
// not see an ALTER DATABASE ... SET hnsw.ef_search (e.g. a tuning repair) until its connection
// is replaced. Names and values are passed to set_config as data.
func currentSearchSettings(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, searchSettingsSQL)
	if err != nil {
		return fmt.Errorf("read search settings: %w", err)
	}
	type setting struct{ name, value string }
	settings, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (setting, error) {
		var s setting
		err := r.Scan(&s.name, &s.value)
		return s, err
	})
	if err != nil {
		return fmt.Errorf("read search settings: %w", err)
	}
	for _, s := range settings {
		if _, err := tx.Exec(ctx, `SELECT set_config($1, $2, true)`, s.name, s.value); err != nil {
			return fmt.Errorf("apply %s = %s: %w", s.name, s.value, err)
		}
	}
	return nil
}

// costOut is the setting that makes an index of method am the planner's dearest choice for a
// top-k search, and the value that does it (ok false for other methods): pgvector estimates
// the cost of returning the first rows as the index's whole cost times the share it expects
// to search, probes/lists for IVFFlat (1 at the largest probes) and, for HNSW, a share that
// grows with ef_search (1 at the largest ef_search on all but very large indexes).
func costOut(am string) (setting, value string, ok bool) {
	switch am {
	case "ivfflat":
		return "ivfflat.probes", "32768", true
	case "hnsw":
		return "hnsw.ef_search", "1000", true
	}
	return "", "", false
}

// costOutOtherMethod makes the planner pass over the table's vector indexes of the other
// method for the rest of the transaction, so that with an HNSW and an IVFFlat index on one
// key (a move from one to the other) each is measured through itself: the setting raised is
// the other method's only, so what is measured of ix is unchanged. EXPLAIN still judges each
// query (usesIndexForAll): two indexes of one method on one key have no setting to tell them
// apart, and a very large HNSW index may stay cheaper than the IVFFlat index even so.
func costOutOtherMethod(ctx context.Context, tx pgx.Tx, ix catalog.Index) error {
	var others []string
	rows, err := tx.Query(ctx, `SELECT DISTINCT am.amname FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
		WHERE i.indrelid = $1 AND i.indexrelid <> $2 AND i.indisvalid AND am.amname <> $3`, ix.TableOID, ix.OID, ix.Method)
	if err == nil {
		others, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return fmt.Errorf("list the table's other indexes: %w", err)
	}
	for _, am := range others {
		if setting, value, ok := costOut(am); ok {
			if _, err := tx.Exec(ctx, `SELECT set_config($1, $2, true)`, setting, value); err != nil {
				return fmt.Errorf("pass over the table's %s indexes (%s = %s): %w", am, setting, value, err)
			}
		}
	}
	return nil
}

// sampleVectors returns up to n values of the index's key, in text form, from rows the index
// holds: newest of them the most recently written of the candidates, the rest at random.
// Large tables are sampled by block (TABLESAMPLE SYSTEM) plus the pages at the table's end, so
// the probe reads a bounded number of pages.
func sampleVectors(ctx context.Context, tx pgx.Tx, ix catalog.Index, stmts probeStatements, n, newest int) ([]string, error) {
	var rows, pages float64
	if err := tx.QueryRow(ctx, `SELECT reltuples::float8, relpages::float8 FROM pg_class WHERE oid = $1`, ix.TableOID).Scan(&rows, &pages); err != nil {
		return nil, fmt.Errorf("table rows: %w", err)
	}
	if rows < 10000 || pages < 1 {
		return collectVectors(ctx, tx, stmts.sample, n, newest)
	}
	// The tail holds about 10 candidate rows per wanted newest vector (at least one page);
	// relpages may be behind the table's end, which only widens the tail.
	tail := int64(pages) - int64(math.Max(1, math.Ceil(float64(10*newest)*pages/rows)))
	if newest == 0 {
		tail = math.MaxUint32 // past any block: no tail
	}
	// About 20 candidate rows per wanted vector; SYSTEM picks whole pages, so a small
	// percentage can hit too few of them (or of a partial index's rows): widen it tenfold
	// until enough rows come back.
	for pct := math.Min(100, 100*float64(n*20)/rows); ; pct = math.Min(100, pct*10) {
		out, err := collectVectors(ctx, tx, stmts.sampleBlocks, n, newest, pct, max(tail, 0))
		if err != nil || len(out) >= n || pct >= 100 {
			return out, err
		}
	}
}

func collectVectors(ctx context.Context, tx pgx.Tx, q string, args ...any) ([]string, error) {
	r, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sample query vectors: %w", err)
	}
	out, err := pgx.CollectRows(r, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("sample query vectors: %w", err)
	}
	return out, nil
}

// histogram returns the probe's search latencies as a histogram without classic buckets.
func (r *recallResult) histogram() *histogram {
	h := newHistogram(nil)
	for _, l := range r.latencies {
		h.observe(l)
	}
	return h
}

// topK runs the top-k search with the query vector q and returns its rows, nearest first.
func topK(ctx context.Context, tx pgx.Tx, search, q string) ([]measure.Row, error) {
	rows, err := tx.Query(ctx, search, q)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[measure.Row])
}

// usesIndexForAll reports whether the planner chooses ix for the probe's top-k search with
// each of the query vectors qs. Plans are custom, so each query is planned for its vector.
func usesIndexForAll(ctx context.Context, tx pgx.Tx, ix catalog.Index, search string, qs []string) (bool, error) {
	for _, q := range qs {
		used, err := measure.UsesIndex(ctx, tx, ix.Name, search, q)
		if err != nil || !used {
			return false, err
		}
	}
	return true, nil
}
