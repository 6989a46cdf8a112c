package engine_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vectorheal/vectorheal/remediation/engine"
)

// TestBusyTableDefersNotFails: with another index build running on the table, the reindex
// step says "retry later": the repair goes back to the queue (reason retry_later), the
// circuit counts nothing, and once the other build is done the same repair runs and succeeds.
func TestBusyTableDefersNotFails(t *testing.T) {
	b := setup(t)
	b.cfg.CircuitBreakerFailures = 1 // one failure would open the circuit
	rb := b.parseRunbook(t, `
entries:
  - name: rebuild
    matchers: ['alertname="VecTest"']
    cooldown: 0s
    steps:
      - strategy: reindex
`)
	reg := prometheus.NewRegistry()
	e := b.engine(t, rb, func(o *engine.Options) { o.Registerer = reg })

	// Another session's CREATE INDEX CONCURRENTLY, held in its wait for writers by an open
	// transaction that wrote to the table.
	ctx := context.Background()
	holder, err := pgx.Connect(ctx, b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE public.t SET id = id WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	var release sync.Once
	done := func() { release.Do(func() { _ = tx.Rollback(ctx) }) }
	t.Cleanup(done)
	build := make(chan error, 1)
	go func() {
		c, err := pgx.Connect(ctx, b.dsn)
		if err != nil {
			build <- err
			return
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, `CREATE INDEX CONCURRENTLY t_other ON public.t (id)`)
		build <- err
	}()
	waitUntil(t, "the other build to show in pg_stat_progress_create_index", func() bool {
		var n int
		_ = b.target.QueryRow(ctx, `SELECT count(*) FROM pg_stat_progress_create_index WHERE relid = 'public.t'::regclass`).Scan(&n)
		return n > 0
	})

	b.notify(t, e, alert("VecTest", "firing", time.Now(), map[string]string{"datname": b.datname(t)}))
	waitUntil(t, "the repair to be deferred", func() bool {
		var deferrals int
		var state, reason string
		_ = b.state.QueryRow(ctx, `SELECT state, reason, deferrals FROM repairs`).Scan(&state, &reason, &deferrals)
		return deferrals >= 1 && state == "queued" && reason == "retry_later"
	})
	r, err := e.Repair(b.ctx, b.repairs(t)[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 1 || r.Steps[0].State != "deferred" || !strings.Contains(r.Steps[0].Error, "another index build is running") {
		t.Fatalf("deferred step recorded as %+v", r.Steps)
	}
	cs, err := e.Circuits(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Failures != 0 || c.Open {
			t.Fatalf("a deferral counted toward the circuit breaker: %+v", c)
		}
	}

	done()
	if err := <-build; err != nil {
		t.Fatalf("other build: %v", err)
	}
	rs := b.waitRepairs(t, 1, "succeeded", "failed", "rolled_back")
	if rs[0].State != "succeeded" {
		t.Fatalf("repair after the other build finished: %+v", rs[0])
	}
	r, err = e.Repair(b.ctx, rs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Steps[0].State != "succeeded" || !strings.Contains(strings.Join(r.Steps[0].Statements, ";"), "REINDEX INDEX CONCURRENTLY") {
		t.Fatalf("step after retry %+v", r.Steps[0])
	}
	if got := testutil.ToFloat64(counterOf(t, reg, "vectorheal_repair_deferrals_total", "reindex")); got < 1 {
		t.Fatalf("vectorheal_repair_deferrals_total{strategy=reindex} = %g", got)
	}
	if cs, _ := e.Circuits(b.ctx); len(cs) != 1 || cs[0].Failures != 0 {
		t.Fatalf("circuits after success %+v", cs)
	}
}

// TestFutileRepairNotRepeated: a step whose validation fails with its figure unmoved is
// recorded as futile (step field, metric, status); the same entry is skipped on the index
// while the figure stays where it was, and runs again once it moves.
func TestFutileRepairNotRepeated(t *testing.T) {
	b := setup(t)
	b.cfg.CircuitBreakerFailures = 100
	b.setFigure(t, 5) // the ok strategy leaves a set figure as it is: it cannot help
	rb := b.parseRunbook(t, `
entries:
  - name: hopeless
    matchers: ['alertname="VecTest"']
    cooldown: 0s
    steps:
      - strategy: ok
        validate: {figure: fake_figure, op: "<", value: 1, wait: 0s, attempts: 1}
`)
	reg := prometheus.NewRegistry()
	e := b.engine(t, rb, func(o *engine.Options) { o.Registerer = reg })
	dat := b.datname(t)
	now := time.Now()
	b.notify(t, e, alert("VecTest", "firing", now.Add(-3*time.Minute), map[string]string{"datname": dat}))
	rs := b.waitRepairs(t, 1, "rolled_back", "failed")
	if rs[0].Reason != "futile" {
		t.Fatalf("first repair %+v, want reason futile", rs[0])
	}
	r, err := e.Repair(b.ctx, rs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 1 || !r.Steps[0].Futile || !strings.Contains(r.Steps[0].Error, "futile") {
		t.Fatalf("step %+v, want it marked futile", r.Steps)
	}
	if got := testutil.ToFloat64(counterOf(t, reg, "vectorheal_repair_futile_total", "ok")); got != 1 {
		t.Fatalf("vectorheal_repair_futile_total{strategy=ok} = %g", got)
	}
	st, err := e.Status(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Futile) != 1 || st.Futile[0].Entry != "hopeless" || st.Futile[0].Figure != "fake_figure" || st.Futile[0].Value != 5 ||
		st.Futile[0].Index != "t_v_idx" || st.Futile[0].RepairID != rs[0].ID {
		t.Fatalf("status futile %+v", st.Futile)
	}

	// The figure has not moved: the entry is not run again.
	b.notify(t, e, alert("VecTest", "firing", now.Add(-2*time.Minute), map[string]string{"datname": dat}))
	rs = b.waitRepairs(t, 2, "rolled_back", "failed", "skipped")
	if rs[1].State != "skipped" || rs[1].Reason != "futile" || !strings.Contains(rs[1].Error, "fake_figure stayed at 5") {
		t.Fatalf("second repair %+v, want skipped as futile", rs[1])
	}
	if n := b.fakes.okRuns.Load(); n != 1 {
		t.Fatalf("strategy ran %d times, want 1", n)
	}

	// The figure moved (to another value the step cannot fix either): the entry runs again.
	b.setFigure(t, 7)
	b.notify(t, e, alert("VecTest", "firing", now.Add(-time.Minute), map[string]string{"datname": dat}))
	rs = b.waitRepairs(t, 3, "rolled_back", "failed", "skipped")
	if rs[2].State == "skipped" {
		t.Fatalf("third repair %+v skipped although the figure moved", rs[2])
	}
	if n := b.fakes.okRuns.Load(); n != 2 {
		t.Fatalf("strategy ran %d times, want 2", n)
	}
	if st, _ := e.Status(b.ctx); len(st.Futile) != 1 || st.Futile[0].Value != 7 {
		t.Fatalf("futile mark after the rerun %+v", st.Futile)
	}
}

// TestQuotedNamesAreHealed: an index in a schema whose name has a space is repaired with the
// real vacuum strategy, its statement built from the catalog's names, quoted; a hostile label
// naming no catalog object is refused as index_not_found with the value in the record.
func TestQuotedNamesAreHealed(t *testing.T) {
	b := setup(t)
	for _, q := range []string{
		`CREATE SCHEMA "My Schema"`,
		`CREATE TABLE "My Schema"."Items Table" (id bigserial PRIMARY KEY, v vector(3))`,
		`INSERT INTO "My Schema"."Items Table" (v) SELECT ARRAY[random(), random(), random()]::vector FROM generate_series(1, 100)`,
		`CREATE INDEX "My Index" ON "My Schema"."Items Table" USING hnsw (v vector_l2_ops)`,
	} {
		if _, err := b.target.Exec(b.ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rb := b.parseRunbook(t, `
entries:
  - name: vacuum-it
    matchers: ['alertname="VecTest"']
    cooldown: 0s
    steps:
      - strategy: vacuum
`)
	e := b.engine(t, rb, nil)
	dat := b.datname(t)
	now := time.Now()
	b.notify(t, e,
		alert("VecTest", "firing", now, map[string]string{"datname": dat, "schemaname": "My Schema", "relname": "Items Table", "indexrelname": "My Index"}),
		alert("VecTest", "firing", now, map[string]string{"datname": dat, "schemaname": `My Schema"; DROP TABLE "My Schema"."Items Table"; --`,
			"indexrelname": "My Index"}))
	rs := b.waitRepairs(t, 2, "succeeded", "skipped", "failed", "rolled_back")
	var healed, refused *repairRow
	for i := range rs {
		switch rs[i].State {
		case "succeeded":
			healed = &rs[i]
		case "skipped":
			refused = &rs[i]
		}
	}
	if healed == nil || refused == nil {
		t.Fatalf("repairs %+v, want one succeeded and one skipped", rs)
	}
	r, err := e.Repair(b.ctx, healed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 1 || len(r.Steps[0].Statements) != 1 || r.Steps[0].Statements[0] != `VACUUM (INDEX_CLEANUP ON, ANALYZE) "My Schema"."Items Table"` {
		t.Fatalf("steps %+v", r.Steps)
	}
	if refused.Reason != "index_not_found" || !strings.Contains(refused.Error, `DROP TABLE`) {
		t.Fatalf("hostile label: %+v, want index_not_found naming the value", refused)
	}
	var exists bool
	if err := b.target.QueryRow(b.ctx, `SELECT to_regclass('"My Schema"."Items Table"') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		t.Fatalf("table is gone (%v)", err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
