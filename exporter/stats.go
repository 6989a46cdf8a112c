package exporter

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/horizon"
	"github.com/vectorheal/vectorheal/internal/measure"
)

// indexStats are the cheap per-index statistics read on every scrape.
type indexStats struct {
	scans, tupRead, blksHit, blksRead float64
	sizeBytes                         float64
	deadTup, liveTup, writes          float64
	// The table's cumulative deletes, updates and HOT updates (pg_stat_user_tables), for the
	// share of dead rows that left an index entry behind.
	deletes, updates, hotUpdates float64
	vacuumAge, analyzeAge        *float64 // nil when never
	buildProgress                *float64 // nil unless CREATE INDEX / REINDEX runs
}

// targetStats are the cheap statistics of one target.
type targetStats struct {
	datname string
	indexes map[uint32]*indexStats
	// Statements using vector distance operators, when pg_stat_statements is installed.
	queryCalls, queryExecSeconds *float64
	// Running VACUUM progress by table OID.
	vacuum map[uint32]float64
	// The oldest holder of the database's xmin horizon; nil when none (readHorizon).
	horizon *horizon.Holder
}

const indexStatsSQL = `
SELECT s.indexrelid, s.idx_scan, s.idx_tup_read, coalesce(io.idx_blks_hit, 0), coalesce(io.idx_blks_read, 0),
       coalesce(t.n_dead_tup, 0), coalesce(t.n_live_tup, 0),
       coalesce(t.n_tup_ins + t.n_tup_upd + t.n_tup_del, 0),
       coalesce(t.n_tup_del, 0), coalesce(t.n_tup_upd, 0), coalesce(t.n_tup_hot_upd, 0),
       extract(epoch FROM now() - greatest(t.last_vacuum, t.last_autovacuum))::float8,
       extract(epoch FROM now() - greatest(t.last_analyze, t.last_autoanalyze))::float8
FROM pg_stat_user_indexes s
LEFT JOIN pg_statio_user_indexes io ON io.indexrelid = s.indexrelid
LEFT JOIN pg_stat_user_tables t ON t.relid = s.relid
WHERE s.indexrelid = ANY($1)`

const buildProgressSQL = `
SELECT index_relid,
       CASE WHEN blocks_total > 0 THEN blocks_done::float8 / blocks_total
            WHEN tuples_total > 0 THEN tuples_done::float8 / tuples_total ELSE 0 END
FROM pg_stat_progress_create_index
WHERE datname = current_database() AND index_relid = ANY($1)`

const vacuumProgressSQL = `
SELECT relid, CASE WHEN heap_blks_total > 0 THEN heap_blks_scanned::float8 / heap_blks_total ELSE 0 END
FROM pg_stat_progress_vacuum
WHERE datname = current_database() AND relid = ANY($1)`

// The statements that use a distance operator, except vectorheal's own probes: their calls,
// execution time (s) and sum of squared execution times (s²). pg_stat_statements keeps a
// mean and a population standard deviation per entry, so calls × (stddev² + mean²) is the
// entry's sum of squares: it adds up over entries, and two readings give the standard
// deviation of the statements between them (the adaptive page budget's signal, budget.go).
const statementsSQL = `
SELECT coalesce(sum(calls), 0)::float8, coalesce(sum(total_exec_time), 0)::float8 / 1000,
       coalesce(sum(calls * (stddev_exec_time ^ 2 + mean_exec_time ^ 2)), 0)::float8 / 1e6
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND query ~ '<->|<=>|<#>|<\+>|<~>|<%>' AND query NOT LIKE '%/* vectorheal probe */%'`

// readIndexStats reads the statistics and the size of each of the indexes.
func readIndexStats(ctx context.Context, tx pgx.Tx, indexOIDs []uint32) (map[uint32]*indexStats, error) {
	rows, err := tx.Query(ctx, indexStatsSQL, indexOIDs)
	if err != nil {
		return nil, fmt.Errorf("index statistics: %w", err)
	}
	out := map[uint32]*indexStats{}
	for rows.Next() {
		var oid uint32
		s := &indexStats{}
		var scans, tupRead, hit, read, dead, live, writes, del, upd, hot int64
		if err := rows.Scan(&oid, &scans, &tupRead, &hit, &read, &dead, &live, &writes, &del, &upd, &hot, &s.vacuumAge, &s.analyzeAge); err != nil {
			rows.Close()
			return nil, fmt.Errorf("index statistics: %w", err)
		}
		s.scans, s.tupRead, s.blksHit, s.blksRead = float64(scans), float64(tupRead), float64(hit), float64(read)
		s.deadTup, s.liveTup, s.writes = float64(dead), float64(live), float64(writes)
		s.deletes, s.updates, s.hotUpdates = float64(del), float64(upd), float64(hot)
		out[oid] = s
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index statistics: %w", err)
	}
	sizes, err := measure.Sizes(ctx, tx, indexOIDs)
	if err != nil {
		return nil, fmt.Errorf("index statistics: %w", err)
	}
	for oid, s := range out {
		s.sizeBytes = float64(sizes[oid].Bytes)
	}
	return out, nil
}

// readStats reads the cheap statistics of the given indexes and tables.
func readStats(ctx context.Context, tx pgx.Tx, indexOIDs, tableOIDs []uint32) (*targetStats, error) {
	ts := &targetStats{vacuum: map[uint32]float64{}}
	var err error
	if ts.indexes, err = readIndexStats(ctx, tx, indexOIDs); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, buildProgressSQL, indexOIDs)
	if err != nil {
		return nil, fmt.Errorf("create index progress: %w", err)
	}
	for rows.Next() {
		var oid uint32
		var p float64
		if err := rows.Scan(&oid, &p); err != nil {
			rows.Close()
			return nil, fmt.Errorf("create index progress: %w", err)
		}
		if s, ok := ts.indexes[oid]; ok {
			s.buildProgress = &p
		}
	}
	rows.Close()

	rows, err = tx.Query(ctx, vacuumProgressSQL, tableOIDs)
	if err != nil {
		return nil, fmt.Errorf("vacuum progress: %w", err)
	}
	for rows.Next() {
		var oid uint32
		var p float64
		if err := rows.Scan(&oid, &p); err != nil {
			rows.Close()
			return nil, fmt.Errorf("vacuum progress: %w", err)
		}
		ts.vacuum[oid] = p
	}
	rows.Close()

	if err := tx.QueryRow(ctx, `SELECT current_database()`).Scan(&ts.datname); err != nil {
		return nil, fmt.Errorf("current database: %w", err)
	}
	st, has, err := readStatements(ctx, tx)
	if err != nil {
		return nil, err
	}
	if has {
		ts.queryCalls, ts.queryExecSeconds = &st.calls, &st.seconds
	}
	return ts, nil
}

// statementTotals are the cumulative calls, execution time (s) and sum of squared execution
// times (s²) of the application's vector statements (statementsSQL).
type statementTotals struct {
	calls, seconds, squares float64
}

// readStatements reads the totals of the database's statements that use a vector distance
// operator, vectorheal's probes left out; has is false when pg_stat_statements is not
// installed in the database. A role without pg_read_all_stats sees other roles' queries as
// "<insufficient privilege>": the figures then cover its own statements only.
func readStatements(ctx context.Context, q catalog.Querier) (st statementTotals, has bool, err error) {
	if err := q.QueryRow(ctx, `SELECT to_regclass('pg_stat_statements') IS NOT NULL`).Scan(&has); err != nil {
		return st, false, fmt.Errorf("find pg_stat_statements: %w", err)
	}
	if !has {
		return st, false, nil
	}
	if err := q.QueryRow(ctx, statementsSQL).Scan(&st.calls, &st.seconds, &st.squares); err != nil {
		return st, false, fmt.Errorf("pg_stat_statements: %w", err)
	}
	return st, true, nil
}

// readHorizon reads the oldest holder of the xmin horizon of the target's database: one
// series per database, named by kind and holder, so an alert can say which session, prepared
// transaction or slot keeps VACUUM from removing dead rows. Sessions and prepared transactions
// younger than minAge are not named (see horizon.Oldest).
func (ts *targetStats) readHorizon(ctx context.Context, tx pgx.Tx, minAge time.Duration) error {
	h, err := horizon.Oldest(ctx, tx, minAge)
	if err != nil {
		return err
	}
	ts.horizon = h
	return nil
}

// emitHorizon sends the oldest holder of the xmin horizon, when one holds.
func (ts *targetStats) emitHorizon(m emitter, targetName string) {
	h := ts.horizon
	if h == nil {
		return
	}
	m.gauge("pgvector_xmin_horizon_age_xids", h.AgeXIDs, targetName, ts.datname, h.Kind, h.Name)
	if h.Age != nil {
		m.gauge("pgvector_xmin_horizon_age_seconds", h.Age.Seconds(), targetName, ts.datname, h.Kind, h.Name)
	}
}
