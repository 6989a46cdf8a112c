package testenv_test

import (
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestPostgresReadsVectorMetapages builds both pgvector index types on the private cluster
// and checks their metapages through get_raw_page.
func TestPostgresReadsVectorMetapages(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.CreateDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`CREATE TABLE items (id bigserial PRIMARY KEY, embedding vector(3))`,
		`INSERT INTO items (embedding) SELECT ARRAY[random(), random(), random()]::vector FROM generate_series(1, 500)`,
		`CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops) WITH (m = 8, ef_construction = 32)`,
		`CREATE INDEX items_ivf ON items USING ivfflat (embedding vector_l2_ops) WITH (lists = 7)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var hnsw, ivf []byte
	if err := conn.QueryRow(ctx, `SELECT get_raw_page('items_hnsw', 0)`).Scan(&hnsw); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT get_raw_page('items_ivf', 0)`).Scan(&ivf); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if got := le.Uint32(hnsw[24:]); got != 0xA953A953 {
		t.Errorf("hnsw magic = %#x", got)
	}
	if dim, m, efc := le.Uint32(hnsw[32:]), le.Uint16(hnsw[36:]), le.Uint16(hnsw[38:]); dim != 3 || m != 8 || efc != 32 {
		t.Errorf("hnsw metapage dim=%d m=%d ef_construction=%d, want 3 8 32", dim, m, efc)
	}
	if got := le.Uint32(ivf[24:]); got != 0x014FF1A7 {
		t.Errorf("ivfflat magic = %#x", got)
	}
	if dim, lists := le.Uint16(ivf[32:]), le.Uint16(ivf[34:]); dim != 3 || lists != 7 {
		t.Errorf("ivfflat metapage dim=%d lists=%d, want 3 7", dim, lists)
	}
	var preload string
	if err := conn.QueryRow(ctx, `SHOW shared_preload_libraries`).Scan(&preload); err != nil || preload != "pg_stat_statements" {
		t.Errorf("shared_preload_libraries = %q, %v", preload, err)
	}
}

func TestPrometheusAndAlertmanagerStart(t *testing.T) {
	am := testenv.StartAlertmanager(t, "route:\n  receiver: none\nreceivers:\n  - name: none\n")
	prom := testenv.StartPrometheus(t, "global:\n  scrape_interval: 1s\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:"+itoa(am.Port)+"']\n")
	for _, u := range []string{am.URL + "/api/v2/status", prom.URL + "/api/v1/status/config"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", u, resp.StatusCode, body)
		}
		if u == prom.URL+"/api/v1/status/config" && !strings.Contains(string(body), itoa(am.Port)) {
			t.Errorf("prometheus config does not name the alertmanager: %s", body)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestStandbyServesThePrimarysIndexPages: a standby made with StartStandby answers queries, and
// once it has replayed the primary's WAL its pgvector index pages hold what the primary's hold
// (header, line pointers and tuples; the free space between them is not WAL-logged), while the
// statistics views a standby does not maintain show none of the primary's deletes.
func TestStandbyServesThePrimarysIndexPages(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	ctx := context.Background()
	dsn := pg.CreateDatabase(t)
	primary, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close(ctx)
	for _, q := range []string{
		`CREATE TABLE items (id bigserial PRIMARY KEY, embedding vector(3))`,
		`INSERT INTO items (embedding) SELECT ARRAY[random(), random(), random()]::vector FROM generate_series(1, 2000)`,
		`CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops) WITH (m = 8, ef_construction = 32)`,
	} {
		if _, err := primary.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	sb, err := testenv.StartStandby(ctx, pg, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy()
	// Written after the copy: reaches the standby by streaming only.
	for _, q := range []string{
		`INSERT INTO items (embedding) SELECT ARRAY[random(), random(), random()]::vector FROM generate_series(1, 500)`,
		`DELETE FROM items WHERE id % 7 = 0`,
		`SELECT pg_stat_force_next_flush()`,
	} {
		if _, err := primary.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := testenv.WaitReplayed(ctx, dsn, sb.DSNFor(t, dsn)); err != nil {
		t.Fatal(err)
	}
	standby, err := pgx.Connect(ctx, sb.DSNFor(t, dsn))
	if err != nil {
		t.Fatal(err)
	}
	defer standby.Close(ctx)
	var inRecovery bool
	if err := standby.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil || !inRecovery {
		t.Fatalf("standby in recovery: %v (%v)", inRecovery, err)
	}
	var blocks int64
	if err := primary.QueryRow(ctx, `SELECT pg_relation_size('items_hnsw') / 8192`).Scan(&blocks); err != nil {
		t.Fatal(err)
	}
	var sbBlocks int64
	if err := standby.QueryRow(ctx, `SELECT pg_relation_size('items_hnsw') / 8192`).Scan(&sbBlocks); err != nil || sbBlocks != blocks {
		t.Fatalf("standby index has %d blocks (%v), primary %d", sbBlocks, err, blocks)
	}
	le := binary.LittleEndian
	for blk := range blocks {
		var p, s []byte
		if err := primary.QueryRow(ctx, `SELECT get_raw_page('items_hnsw', $1)`, blk).Scan(&p); err != nil {
			t.Fatal(err)
		}
		if err := standby.QueryRow(ctx, `SELECT get_raw_page('items_hnsw', $1)`, blk).Scan(&s); err != nil {
			t.Fatalf("get_raw_page on the standby: %v", err)
		}
		lower, upper := le.Uint16(p[12:]), le.Uint16(p[14:])
		if string(p[:lower]) != string(s[:lower]) || string(p[upper:]) != string(s[upper:]) {
			t.Fatalf("block %d differs between primary and standby", blk)
		}
	}
	var deadPrimary, deadStandby int64
	if err := primary.QueryRow(ctx, `SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'items'`).Scan(&deadPrimary); err != nil {
		t.Fatal(err)
	}
	if err := standby.QueryRow(ctx, `SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'items'`).Scan(&deadStandby); err != nil {
		t.Fatal(err)
	}
	if deadPrimary == 0 || deadStandby != 0 {
		t.Errorf("n_dead_tup: primary %d, standby %d; want the primary's deletes counted there only", deadPrimary, deadStandby)
	}
}
