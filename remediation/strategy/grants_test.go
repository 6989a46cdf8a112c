package strategy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

func TestDocumentedGrantsAreEnough(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	var db string
	if err := b.pool.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	owner, repair := db+"_owner", db+"_repair"
	t.Cleanup(func() {
		for _, q := range []string{
			fmt.Sprintf("REASSIGN OWNED BY %s, %s TO CURRENT_USER", owner, repair),
			fmt.Sprintf("DROP OWNED BY %s, %s", owner, repair),
		} {
			_, _ = b.pool.Exec(context.Background(), q)
		}
		b.pool.Close()
		c, err := pgx.Connect(context.Background(), b.pg.DSN("postgres"))
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), fmt.Sprintf("DROP ROLE IF EXISTS %s, %s", repair, owner))
	})
	// The application: its own role owns the tables and the database.
	b.exec(t, "CREATE ROLE "+owner+" NOLOGIN",
		"ALTER DATABASE "+db+" OWNER TO "+owner,
		"GRANT CREATE ON SCHEMA public TO "+owner)
	b.loadVectors(t, "items", 32, 4000, 0.12)
	b.exec(t,
		"CREATE INDEX items_emb ON items USING hnsw (emb vector_l2_ops) WITH (m = 4, ef_construction = 8)",
		"CREATE TABLE docs (id int PRIMARY KEY, emb vector(8))",
		"INSERT INTO docs SELECT g, (SELECT array_agg(random()::real) FROM generate_series(1, 8) WHERE g > 0)::vector FROM generate_series(1, 2000) g",
		"CREATE INDEX docs_ivf ON docs USING ivfflat (emb vector_l2_ops) WITH (lists = 50)",
		"ANALYZE",
		"ALTER TABLE items OWNER TO "+owner,
		"ALTER TABLE docs OWNER TO "+owner,
		"ALTER DATABASE "+db+" SET hnsw.ef_search = 10",
	)
	// The documented grants, with this test's names.
	grants, err := testenv.DocSQL("../../docs/operations.md", "Database role and grants", 1,
		strings.NewReplacer("vectorheal_repair", repair, "app_owner", owner, "DATABASE app ", "DATABASE "+db+" "))
	if err != nil {
		t.Fatal(err)
	}
	b.exec(t, grants...)

	cfg, err := pgxpool.ParseConfig(b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.User = repair
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var super bool
	if err := pool.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || super {
		t.Fatalf("repair role is superuser=%v (%v)", super, err)
	}
	env := b.env
	env.Pool = pool
	hnswIx := b.resolve(t, "public", "items_emb")
	ivfIx := b.resolve(t, "public", "docs_ivf")
	for _, step := range []struct {
		name   string
		ix     string
		params strategy.Params
	}{
		{"vacuum", "items_emb", nil},
		{"analyze", "items_emb", nil},
		{"reindex", "items_emb", strategy.Params{"max_maintenance_work_mem": "256MB"}},
		{"ivfflat_retrain", "docs_ivf", strategy.Params{"min_lists": 2}},
		{"tune_search", "items_emb", strategy.Params{"target_recall": 0.8, "step": 30}},
		{"reclaim", "items_emb", strategy.Params{"need": "space"}},
	} {
		ix := hnswIx
		if step.ix == "docs_ivf" {
			ix = ivfIx
		}
		out, err := b.strategy(t, step.name).Run(ctx, env, ix, step.params)
		if err != nil {
			t.Errorf("%s as %s: %v", step.name, repair, err)
			continue
		}
		t.Logf("%s as %s: %q", step.name, repair, out.Statements)
		if step.name == "tune_search" {
			if err := b.strategy(t, step.name).Rollback(ctx, env, ix, step.params, out.Undo); err != nil {
				t.Errorf("tune_search rollback as %s: %v", repair, err)
			}
			if got := b.dbSetting(t, "", "hnsw.ef_search"); got != "10" {
				t.Errorf("ef_search after rollback = %q", got)
			}
		}
	}
	if n := b.count(t, "SELECT count(*) FROM pg_index WHERE NOT indisvalid"); n != 0 {
		t.Errorf("%d invalid indexes left", n)
	}

	// pg_read_all_stats lets the role see another session's build on the table.
	release := b.blockWriters(t)
	other := make(chan error, 1)
	go func() {
		_, err := b.pool.Exec(ctx, "CREATE INDEX CONCURRENTLY other ON items (id)")
		other <- err
	}()
	b.waitFor(t, "the other build", func() bool {
		return b.count(t, "SELECT count(*) FROM pg_stat_progress_create_index WHERE relid = 'items'::regclass") > 0
	})
	if _, err := b.strategy(t, "reindex").Run(ctx, env, b.resolve(t, "public", "items_emb"), nil); !errors.Is(err, strategy.ErrBusy) {
		t.Errorf("reindex as %s during another build: err = %v, want ErrBusy", repair, err)
	}
	release()
	if err := <-other; err != nil {
		t.Errorf("other build: %v", err)
	}
	if got := b.resolve(t, "public", "docs_ivf"); got.Lists != 2 {
		t.Errorf("docs_ivf lists = %d after retrain as %s, want 2", got.Lists, repair)
	}
}
