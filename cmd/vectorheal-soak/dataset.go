package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/workload"
)

// Names of the twins' objects. Both twins hold the same names, so a sample is keyed by twin
// and index name.
const (
	docsTable   = "docs"
	docsIndex   = "docs_hnsw"
	eventsTable = "events"
	eventsIndex = "events_ivfflat"
	// chunksPerDoc is how many rows make one document, the unit re-ingested at once.
	chunksPerDoc = 20
	// categories of docs rows; a filtered query keeps one of them (25 % of the rows).
	categories = 4
)

// indexSpec is one index of a twin with what its queries need.
type indexSpec struct {
	table, index, method string
	op                   string // distance operator of the index's opclass
	setting              string // the search setting of its method
}

func soakIndexes() []indexSpec {
	return []indexSpec{
		{table: docsTable, index: docsIndex, method: "hnsw", op: "<=>", setting: "hnsw.ef_search"},
		{table: eventsTable, index: eventsIndex, method: "ivfflat", op: "<->", setting: "ivfflat.probes"},
	}
}

// ivfLists is the IVFFlat lists of a table of n rows, pgvector's README advice (rows/1000).
func ivfLists(n int) int { return max(n/1000, 1) }

// createTables creates both tables of a twin, without indexes.
func createTables(ctx context.Context, pool *pgxpool.Pool, dims int) error {
	stmts := []string{
		fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, doc int NOT NULL, category int NOT NULL,
			cluster int NOT NULL, embedding vector(%d) NOT NULL)`, pgx.Identifier{docsTable}.Sanitize(), dims),
		fmt.Sprintf("CREATE INDEX ON %s (doc)", pgx.Identifier{docsTable}.Sanitize()),
		fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, cluster int NOT NULL, embedding vector(%d) NOT NULL)`,
			pgx.Identifier{eventsTable}.Sanitize(), dims),
	}
	for _, s := range stmts {
		if _, err := pool.Exec(ctx, s); err != nil {
			return fmt.Errorf("create tables: %w", err)
		}
	}
	return nil
}

// docRow is one row of docs.
type docRow struct {
	id       int64
	doc      int32
	category int32
	cluster  int32
	vec      []float32
}

// insertDocs inserts rows into docs in one statement.
func insertDocs(ctx context.Context, db execer, rows []docRow) error {
	if len(rows) == 0 {
		return nil
	}
	ids, docs, cats, cls, vecs := make([]int64, len(rows)), make([]int32, len(rows)), make([]int32, len(rows)), make([]int32, len(rows)), make([]string, len(rows))
	for i, r := range rows {
		ids[i], docs[i], cats[i], cls[i], vecs[i] = r.id, r.doc, r.category, r.cluster, workload.Literal(r.vec)
	}
	_, err := db.Exec(ctx, "INSERT INTO "+pgx.Identifier{docsTable}.Sanitize()+` (id, doc, category, cluster, embedding)
		SELECT i, d, c, k, e::vector FROM unnest($1::bigint[], $2::int[], $3::int[], $4::int[], $5::text[]) AS t(i, d, c, k, e)`,
		ids, docs, cats, cls, vecs)
	if err != nil {
		return fmt.Errorf("insert into %s: %w", docsTable, err)
	}
	return nil
}

// eventRow is one row of events.
type eventRow struct {
	id      int64
	cluster int32
	vec     []float32
}

// insertEvents inserts rows into events in one statement.
func insertEvents(ctx context.Context, db execer, rows []eventRow) error {
	if len(rows) == 0 {
		return nil
	}
	ids, cls, vecs := make([]int64, len(rows)), make([]int32, len(rows)), make([]string, len(rows))
	for i, r := range rows {
		ids[i], cls[i], vecs[i] = r.id, r.cluster, workload.Literal(r.vec)
	}
	_, err := db.Exec(ctx, "INSERT INTO "+pgx.Identifier{eventsTable}.Sanitize()+` (id, cluster, embedding)
		SELECT i, k, e::vector FROM unnest($1::bigint[], $2::int[], $3::text[]) AS t(i, k, e)`, ids, cls, vecs)
	if err != nil {
		return fmt.Errorf("insert into %s: %w", eventsTable, err)
	}
	return nil
}

// buildIndexes builds both indexes of a twin and analyzes the tables. lists is the IVFFlat's.
func buildIndexes(ctx context.Context, pool *pgxpool.Pool, lists int) error {
	stmts := []string{
		fmt.Sprintf("CREATE INDEX %s ON %s USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)",
			pgx.Identifier{docsIndex}.Sanitize(), pgx.Identifier{docsTable}.Sanitize()),
		fmt.Sprintf("CREATE INDEX %s ON %s USING ivfflat (embedding vector_l2_ops) WITH (lists = %d)",
			pgx.Identifier{eventsIndex}.Sanitize(), pgx.Identifier{eventsTable}.Sanitize(), lists),
		"VACUUM ANALYZE " + pgx.Identifier{docsTable}.Sanitize(),
		"VACUUM ANALYZE " + pgx.Identifier{eventsTable}.Sanitize(),
	}
	for _, s := range stmts {
		if _, err := pool.Exec(ctx, s); err != nil {
			return fmt.Errorf("build indexes: %w", err)
		}
	}
	return nil
}

// throttleAutovacuum sets per-table autovacuum cost parameters. Source: pgvector #450 (a
// 10 h VACUUM of a 31 GB HNSW index) and DESIGN's facts: HNSW VACUUM makes four passes and a
// graph search per element with a dead neighbour, throttled like any vacuum. A 50k-row
// index vacuums in seconds unthrottled; a high delay and a low limit make it take as long,
// relative to the churn, as a large index's vacuum does.
func throttleAutovacuum(ctx context.Context, pool *pgxpool.Pool, delayMS, limit int) error {
	for _, t := range []string{docsTable, eventsTable} {
		q := fmt.Sprintf("ALTER TABLE %s SET (autovacuum_vacuum_cost_delay = %d, autovacuum_vacuum_cost_limit = %d)",
			pgx.Identifier{t}.Sanitize(), delayMS, limit)
		if _, err := pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("throttle autovacuum of %s: %w", t, err)
		}
	}
	return nil
}

// execer is what inserts need: a pool, a connection or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}
