package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/measure"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// clusterConf sizes the private cluster for an index of a million elements: shared_buffers
// holds the whole index and table, as a production server sized for its vector workload
// would, so that queries and the analysis read from memory and the comparison is of CPU work,
// not of the disk.
const clusterConf = `shared_buffers = 1GB
maintenance_work_mem = 256MB
max_parallel_maintenance_workers = 0`

// benchDB is the database of the data set in the private cluster.
const benchDB = "bench"

// bench holds what one run uses.
type bench struct {
	o    options
	out  io.Writer
	pg   *testenv.Postgres
	pool *pgxpool.Pool
	ix   catalog.Index
	dsn  string // of the data set's database, for the analysing child process

	standby    *testenv.Postgres // the streaming replica of -standby
	standbyDSN string            // of the data set's database on it
	pinned     string            // with -pin, the CPUs of the analysing process (taskset list)
}

func (b *bench) printf(format string, args ...any) { fmt.Fprintf(b.out, format, args...) }

func (b *bench) close() {
	if b.pool != nil {
		b.pool.Close()
	}
	if b.standby != nil {
		b.standby.Destroy() // made anew by each run, from the primary as it is then
	}
	if b.pg != nil {
		b.pg.Stop() // keeps the data directory for the next run
	}
}

func (b *bench) run(ctx context.Context) error {
	dsn, err := b.database(ctx)
	if err != nil {
		return err
	}
	b.dsn = dsn
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	cfg.MaxConns = int32(b.o.clients + 4)
	if b.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if b.o.analyzeLoop {
		ix, err := catalog.Resolve(ctx, b.pool, "public", "items_v_idx")
		if err != nil {
			return err
		}
		b.ix = ix
		return b.analyzeLoop(ctx)
	}
	if err := b.dataset(ctx); err != nil {
		return err
	}
	if !b.o.skipAnalysis {
		if err := b.analysisVsFetch(ctx); err != nil {
			return err
		}
	}
	if !b.o.skipLoad {
		if b.o.standby {
			if err := b.startStandby(ctx); err != nil {
				return err
			}
		}
		if b.o.pin {
			if err := b.pinCPUs(); err != nil {
				return err
			}
		}
		if err := b.queryLoad(ctx); err != nil {
			return err
		}
	}
	return nil
}

// database returns the DSN of the data set's database, starting the private cluster in
// o.dir (and creating it on the first run) unless -dsn names a database.
func (b *bench) database(ctx context.Context) (string, error) {
	if b.o.dsn != "" {
		return b.o.dsn, nil
	}
	pg, created, err := testenv.OpenPostgres(ctx, b.o.dir, clusterConf)
	if err != nil {
		return "", fmt.Errorf("start PostgreSQL in %s (run scripts/install-deps.sh): %w", b.o.dir, err)
	}
	b.pg = pg
	if created {
		conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
		if err != nil {
			return "", err
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+benchDB); err != nil {
			return "", fmt.Errorf("create database: %w", err)
		}
	}
	b.printf("PostgreSQL cluster in %s, port %d\n", b.o.dir, pg.Port)
	return pg.DSN(benchDB), nil
}

// dataset creates the table items of random vectors and its HNSW index unless they exist
// with the requested size, and resolves the index.
func (b *bench) dataset(ctx context.Context) error {
	var rows int64
	var dim int
	err := b.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM items), (SELECT atttypmod FROM pg_attribute
		WHERE attrelid = 'items'::regclass AND attname = 'v')`).Scan(&rows, &dim)
	switch {
	case err == nil && rows == int64(b.o.rows) && dim == b.o.dim && b.indexExists(ctx):
		b.printf("data set: %d rows of vector(%d) and their HNSW index, kept from an earlier run\n", rows, dim)
	case err == nil:
		return fmt.Errorf("table items holds %d rows of vector(%d), not %d of vector(%d): use another -dir or drop it",
			rows, dim, b.o.rows, b.o.dim)
	default:
		if err := b.build(ctx); err != nil {
			return err
		}
	}
	ix, err := catalog.Resolve(ctx, b.pool, "public", "items_v_idx")
	if err != nil {
		return err
	}
	b.ix = ix
	size, err := measure.SizeOf(ctx, b.pool, ix.OID)
	if err != nil {
		return err
	}
	b.printf("index %s: %d pages (%.0f MiB)\n\n", ix, size.Blocks, float64(size.Bytes)/(1<<20))
	return nil
}

func (b *bench) indexExists(ctx context.Context) bool {
	var ok bool
	_ = b.pool.QueryRow(ctx, `SELECT to_regclass('public.items_v_idx') IS NOT NULL`).Scan(&ok)
	return ok
}

// build loads the data set with pgvector's default build (m = 16, ef_construction = 64):
// maintenance_work_mem holds the whole graph, so the build never falls back to inserting
// element by element, with o.workers parallel workers (none by default: pgvector 0.6.0-0.8.1
// have a bug in parallel HNSW builds).
func (b *bench) build(ctx context.Context) error {
	conn, err := b.pool.Acquire(ctx) // one session, so that the SETs hold for the build
	if err != nil {
		return err
	}
	defer conn.Release()
	d := strconv.Itoa(b.o.dim)
	for _, s := range []string{
		`CREATE EXTENSION IF NOT EXISTS vector`,
		`CREATE EXTENSION IF NOT EXISTS pageinspect`,
		`SET maintenance_work_mem = '3GB'`,
		`SET max_parallel_maintenance_workers = ` + strconv.Itoa(b.o.workers),
		`DROP TABLE IF EXISTS items`,
		`CREATE TABLE items (id int PRIMARY KEY, v vector(` + d + `))`,
		`SELECT setseed(0.5)`,
		`INSERT INTO items SELECT i, (SELECT array_agg(random()) FROM generate_series(1, ` + d + `) WHERE i > 0)::vector
		 FROM generate_series(1, ` + strconv.Itoa(b.o.rows) + `) AS i`,
		`CREATE INDEX items_v_idx ON items USING hnsw (v vector_l2_ops)`,
		`VACUUM ANALYZE items`,
	} {
		start := time.Now()
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("build data set: %s: %w", s, err)
		}
		if d := time.Since(start); d > time.Second {
			b.printf("  %s: %.1f s\n", firstLine(s), d.Seconds())
		}
	}
	return nil
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i] + " ..."
		}
	}
	return s
}
