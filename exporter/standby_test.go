package exporter

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/targets"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestStandbyScansEqualThePrimarys: once a hot standby has replayed the primary's WAL, a page
// scan of an HNSW and an IVFFlat index there gives the same report as on the primary, after
// deletes, updates and a VACUUM that reached the standby by streaming only. The standby's fence
// is its replay position.
func TestStandbyScansEqualThePrimarys(t *testing.T) {
	dsn, sb := indexesWithStandby(t, 3000)
	ctx := context.Background()
	testenv.Exec(t, dsn,
		`DELETE FROM items WHERE id % 5 = 0`,
		`UPDATE items SET embedding = embedding + embedding WHERE id % 11 = 0`,
		`VACUUM items`,
		`DELETE FROM items WHERE id % 13 = 0`)
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := testenv.WaitReplayed(wait, dsn, sb.DSNFor(t, dsn)); err != nil {
		t.Fatal(err)
	}
	primary, standby := superPool(t, dsn), superPool(t, sb.DSNFor(t, dsn))
	cfg := testConfig()
	cfg.Structure.Timeout = time.Minute
	for _, name := range []string{"items_hnsw", "items_ivf"} {
		ix, sbIx := resolve(t, primary, name), resolve(t, standby, name)
		if ix.OID != sbIx.OID || ix.SizeBytes != sbIx.SizeBytes {
			t.Fatalf("%s: primary oid %d size %d, standby oid %d size %d", name, ix.OID, ix.SizeBytes, sbIx.OID, sbIx.SizeBytes)
		}
		p, err := scanStructure(ctx, primary, ix, rawPages(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		s, err := scanStructure(ctx, standby, sbIx, rawPages(), cfg)
		if err != nil {
			t.Fatalf("scan on the standby: %v", err)
		}
		var pr, sr any = p.hnsw, s.hnsw
		if p.hnsw == nil {
			pr, sr = p.ivf, s.ivf
		}
		if !reflect.DeepEqual(pr, sr) || p.rows != s.rows {
			t.Errorf("%s: the standby's report differs from the primary's:\nprimary %s\nstandby %s", name, dump(pr), dump(sr))
		}
		if p.hnsw != nil && (p.hnsw.HeapTIDsDead == 0 || p.hnsw.HeapTIDsLive == 0) {
			t.Errorf("%s: %d live and %d dead heap TIDs on the primary; the test needs both", name, p.hnsw.HeapTIDsLive, p.hnsw.HeapTIDsDead)
		}
		if faults := faultKindsOf(s); len(faults) > 0 {
			t.Errorf("%s on the standby: faults %v", name, faults)
		}
	}
}

func dump(v any) string { return fmt.Sprintf("%+v", v) }

// indexesWithStandby makes a database with rows clustered vectors in table items, an HNSW
// (items_hnsw) and an IVFFlat (items_ivf) index on them, and a hot standby of its server.
func indexesWithStandby(t *testing.T, rows int) (dsn string, sb *testenv.Postgres) {
	t.Helper()
	pg := testenv.SharedPostgres(t)
	dsn = pg.CreateDatabase(t)
	clustered(t, dsn, rows, 16, 10)
	// Autovacuum off: the tests compare the index as their own statements left it, and an
	// autovacuum after their deletes would remove the dead rows they need (and change pages
	// while a scan reads them).
	testenv.Exec(t, dsn,
		`ALTER TABLE items SET (autovacuum_enabled = off)`,
		`CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops) WITH (m = 8, ef_construction = 32)`,
		`CREATE INDEX items_ivf ON items USING ivfflat (embedding vector_l2_ops) WITH (lists = 10)`)
	sb, err := testenv.StartStandby(context.Background(), pg, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Destroy)
	return dsn, sb
}

// TestReportReadsOnTheStandby: vectorheal check's report with a standby reads the index
// figures there, equal to the primary's once replayed, and says so; a standby whose replay is
// paused behind the primary, or a server that is not a standby, is passed over for the
// primary with the reason in the report.
func TestReportReadsOnTheStandby(t *testing.T) {
	dsn, sb := indexesWithStandby(t, 2000)
	ctx := context.Background()
	testenv.Exec(t, dsn, `DELETE FROM items WHERE id % 7 = 0`, `VACUUM items`)
	primary, standby := superPool(t, dsn), superPool(t, sb.DSNFor(t, dsn))
	cfg := testConfig()
	cfg.Structure.Timeout = time.Minute

	atPrimary, err := Report(ctx, primary, cfg)
	if err != nil {
		t.Fatal(err)
	}
	onReplica, err := Report(ctx, primary, cfg, ReadIndexesOnStandby(standby, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if atPrimary.IndexReadsOn != onPrimary || onReplica.IndexReadsOn != onStandby || onReplica.IndexReadsReason != "" {
		t.Fatalf("index reads on %q and %q (%s); want primary, then standby", atPrimary.IndexReadsOn, onReplica.IndexReadsOn, onReplica.IndexReadsReason)
	}
	compared := 0
	for i, ir := range atPrimary.Indexes {
		for _, f := range ir.Figures {
			if !strings.HasPrefix(f.Key, "hnsw_") && !strings.HasPrefix(f.Key, "ivfflat_") {
				continue // probes sample at random, statistics are the primary's in both
			}
			g, ok := onReplica.Indexes[i].Figure(f.Key)
			if !ok || !reflect.DeepEqual(f, g) {
				t.Errorf("%s %s: primary %s, standby %s (found %v)", ir.Indexrelname, f.Key, dump(f), dump(g), ok)
			}
			compared++
		}
	}
	if compared < 10 {
		t.Fatalf("compared %d page figures; the test shows nothing", compared)
	}
	var b strings.Builder
	if err := onReplica.WriteText(&b); err != nil || !strings.Contains(b.String(), "read on the standby") {
		t.Errorf("text report does not say the standby was read (%v):\n%s", err, b.String())
	}

	testenv.Exec(t, sb.DSNFor(t, dsn), `SELECT pg_wal_replay_pause()`)
	t.Cleanup(func() { testenv.Exec(t, sb.DSNFor(t, dsn), `SELECT pg_wal_replay_resume()`) })
	testenv.Exec(t, dsn, `DELETE FROM items WHERE id % 11 = 0`)
	behind, err := Report(ctx, primary, cfg, ReadIndexesOnStandby(standby, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if behind.IndexReadsOn != onPrimary || !strings.Contains(behind.IndexReadsReason, "has not replayed") {
		t.Errorf("paused standby: index reads on %q, reason %q; want the primary and the standby's lag", behind.IndexReadsOn, behind.IndexReadsReason)
	}
	notStandby, err := Report(ctx, primary, cfg, ReadIndexesOnStandby(primary, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if notStandby.IndexReadsOn != onPrimary || !strings.Contains(notStandby.IndexReadsReason, "not in recovery") {
		t.Errorf("a primary given as standby: index reads on %q, reason %q", notStandby.IndexReadsOn, notStandby.IndexReadsReason)
	}
}

// TestChecksReadOnTheStandby: with a standby configured, the checks that read the index read
// there and publish the primary's figures once replayed; with replay paused they read on the
// primary, saying so, and go back to the standby when it resumes.
func TestChecksReadOnTheStandby(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	const rows = 1000
	clustered(t, dsn, rows, 8, 8)
	testenv.Exec(t, dsn, `CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops) WITH (m = 8, ef_construction = 32)`)
	ctx := context.Background()
	sb, err := testenv.StartStandby(ctx, pg, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Destroy)
	var keep logLines
	s := startTargets(t, &keep, testConfig(), []config.Target{{Name: "main", DSN: config.Secret{Value: dsn}, MaxConnections: 4, MaxConcurrentChecks: 2,
		Standby: &config.Standby{DSN: config.Secret{Value: sb.DSNFor(t, dsn)}, MaxLag: time.Minute, ReplayWait: 10 * time.Second, MaxConnections: 2}}})
	tgt := map[string]string{"target": "main"}
	h := map[string]string{"target": "main", "indexrelname": "items_hnsw"}
	s.waitSample(t, "vectorheal_index_reads_server", withLabel(tgt, "server", "standby"), "1", eq(1))
	s.waitSample(t, "pgvector_hnsw_heap_tids", withLabel(h, "state", "live"), "= rows", eq(rows))
	testenv.Exec(t, dsn, `DELETE FROM items WHERE id <= 100`)
	s.waitSample(t, "pgvector_hnsw_heap_tids", withLabel(h, "state", "dead"), "100 deleted, replayed", eq(100))
	s.waitSample(t, "vectorheal_standby_replay_lag_bytes", tgt, "present", exists)

	testenv.Exec(t, sb.DSNFor(t, dsn), `SELECT pg_wal_replay_pause()`)
	s.waitSample(t, "vectorheal_standby_replay_paused", tgt, "1", eq(1))
	s.waitSample(t, "vectorheal_index_reads_server", withLabel(tgt, "server", "primary"), "1 while replay is paused", eq(1))
	testenv.Exec(t, dsn, `DELETE FROM items WHERE id > 100 AND id <= 150`)
	s.waitSample(t, "pgvector_hnsw_heap_tids", withLabel(h, "state", "dead"), "150, read on the primary", eq(150))
	if keep.count("read on the primary", "standby replay is paused") == 0 {
		t.Error("no log line says the checks read on the primary because replay is paused")
	}
	testenv.Exec(t, sb.DSNFor(t, dsn), `SELECT pg_wal_replay_resume()`)
	s.waitSample(t, "vectorheal_index_reads_server", withLabel(tgt, "server", "standby"), "1 after resume", eq(1))
	s.waitSample(t, "pgvector_hnsw_heap_tids", withLabel(h, "state", "dead"), "150 on the standby", eq(150))
}

// TestMeasurerValidatesOnTheStandby: the Measurer the engine validates with reads the index's
// pages on the target's standby once it has replayed the primary's position (the standby's
// own statement statistics show the page reads there), and on the primary, saying why, when
// the standby's replay is paused past standby.replay_wait.
func TestMeasurerValidatesOnTheStandby(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	clustered(t, dsn, 1000, 8, 8)
	testenv.Exec(t, dsn, `CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops) WITH (m = 8, ef_construction = 32)`)
	ctx := context.Background()
	sb, err := testenv.StartStandby(ctx, pg, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Destroy)
	// replay_wait 10 s: a loaded machine may take more than a second to replay a delete, and
	// the test's paused replay then waits that long before the primary is read.
	ts, err := targets.Open(ctx, []config.Target{{Name: "main", DSN: config.Secret{Value: dsn}, MaxConnections: 4,
		Standby: &config.Standby{DSN: config.Secret{Value: sb.DSNFor(t, dsn)}, MaxLag: time.Minute, ReplayWait: 10 * time.Second, MaxConnections: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ts.Close)
	var keep logLines
	m := NewMeasurer(testConfig(), MeasureOnTargets(ts, slog.New(slog.NewTextHandler(tlogWriter{t, &keep}, nil))))
	tgt, _ := ts.Get("main")
	ix := resolve(t, tgt.Pool, "items_hnsw")
	pageReads := func() int64 {
		var n int64
		err := tgt.Standby.QueryRow(ctx, `SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE query LIKE '%get_raw_page%'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	testenv.Exec(t, dsn, `DELETE FROM items WHERE id <= 100`)
	before := pageReads()
	r := m.Read(ctx, tgt.Pool, ix, "pgvector_hnsw_heap_tids:dead", "pgvector_table_dead_tuples")
	if got, err := r.Get("pgvector_hnsw_heap_tids:dead"); err != nil || got != 100 {
		t.Fatalf("dead heap TIDs after the delete: %v (%v), want 100 as replayed on the standby", got, err)
	}
	// The reading says where each figure was read: pages on the standby, statistics on the
	// primary (they are the primary's own).
	if v := r["pgvector_hnsw_heap_tids:dead"]; v.Server != "standby" || v.Source != "structure" {
		t.Errorf("dead heap TIDs read from %s on %s, want structure on standby", v.Source, v.Server)
	}
	if v := r["pgvector_table_dead_tuples"]; v.Server != "primary" || v.Source != "stats" {
		t.Errorf("dead tuples read from %s on %s, want stats on primary", v.Source, v.Server)
	}
	if after := pageReads(); after <= before {
		t.Errorf("page reads on the standby %d -> %d: the measurement did not read there", before, after)
	}

	testenv.Exec(t, sb.DSNFor(t, dsn), `SELECT pg_wal_replay_pause()`)
	testenv.Exec(t, dsn, `DELETE FROM items WHERE id > 100 AND id <= 150`)
	r = m.Read(ctx, tgt.Pool, ix, "pgvector_hnsw_heap_tids:dead")
	if got, err := r.Get("pgvector_hnsw_heap_tids:dead"); err != nil || got != 150 || r["pgvector_hnsw_heap_tids:dead"].Server != "primary" {
		t.Fatalf("dead heap TIDs with replay paused: %v (%v) on %s, want 150 read on the primary", got, err, r["pgvector_hnsw_heap_tids:dead"].Server)
	}
	if keep.count("measuring on the primary", "has not replayed") == 0 {
		t.Error("no log line says the measurement fell back to the primary and why")
	}
	testenv.Exec(t, sb.DSNFor(t, dsn), `SELECT pg_wal_replay_resume()`)
}

// TestStandbyScansOfABusyIndex: while a writer on the primary updates, deletes, inserts and
// VACUUMs, page scans of a healthy HNSW and IVFFlat index on a hot standby report no
// structural fault: the standby's fence is its replay position, and pages replayed during a
// scan are read again before a fault involving them counts, as on a primary.
func TestStandbyScansOfABusyIndex(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	const rows = 4000
	clustered(t, dsn, rows, 16, 20)
	testenv.Exec(t, dsn,
		`CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops) WITH (m = 8, ef_construction = 32)`,
		`CREATE INDEX items_ivf ON items USING ivfflat (embedding vector_l2_ops) WITH (lists = 20)`)
	ctx := context.Background()
	sb, err := testenv.StartStandby(ctx, pg, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Destroy)
	standby := superPool(t, sb.DSNFor(t, dsn))
	cfg := testConfig()
	cfg.Structure.Timeout = time.Minute
	cfg.Structure.MaxPagesPerSecond = 2000 // spread each scan over more of the writer's changes
	w := startChurn(t, dsn, rows, 20)
	var changed, unconfirmed int64
	const scans = 30
	for i := range scans {
		for _, name := range []string{"items_hnsw", "items_ivf"} {
			ix := resolve(t, standby, name)
			s, err := scanStructure(ctx, standby, ix, rawPages(), cfg)
			if err != nil {
				t.Fatalf("scan %d of %s on the standby: %v", i, name, err)
			}
			if kinds := faultKindsOf(s); len(kinds) > 0 {
				t.Errorf("scan %d of healthy busy %s on the standby: faults %v", i, name, kinds)
			}
			if s.hnsw != nil {
				changed, unconfirmed = changed+s.hnsw.PagesChanged, unconfirmed+s.hnsw.Unconfirmed
			} else {
				changed, unconfirmed = changed+s.ivf.PagesChanged, unconfirmed+s.ivf.Unconfirmed
			}
		}
	}
	n := w.changes.Load()
	t.Logf("%d scans of each index on the standby under %d row changes on the primary (%d statement errors); pages replayed during the scans: %d; unconfirmed: %d",
		scans, n, w.errs.Load(), changed, unconfirmed)
	if n == 0 || changed == 0 {
		t.Fatalf("the writer changed %d rows and %d pages were replayed during scans: the scans were not raced", n, changed)
	}
}
