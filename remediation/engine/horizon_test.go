package engine_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vectorheal/vectorheal/remediation/engine"
)

const vacuumDeadRunbook = `
entries:
  - name: vacuum-dead
    matchers: ['alertname="DeadTuples"']
    steps:
      - strategy: vacuum
        validate: {figure: pgvector_table_dead_tuples, op: "==", value: 0, wait: 500ms, attempts: 20}
`

// horizonBundle is a bundle with the xmin horizon guard on (1s), and the engine's registry.
func horizonBundle(t *testing.T) (*bundle, *prometheus.Registry) {
	b := setup(t)
	b.cfg.HorizonMinAge, b.cfg.HorizonMinXIDs = time.Second, 1_000_000
	if _, err := b.target.Exec(b.ctx, `ALTER TABLE public.t SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	return b, prometheus.NewRegistry()
}

// deadTuples is the table's n_dead_tup, once the statistics show it.
func (b *bundle) deadTuples(t *testing.T) float64 {
	t.Helper()
	v, err := b.measurer.Measure(b.ctx, b.target, mustIndex(t, b), "pgvector_table_dead_tuples")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func heldSteps(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range fams {
		if f.GetName() == "vectorheal_repair_steps_held_total" {
			for _, m := range f.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// TestVacuumWaitsForIdleInTransactionSession: a session idle in its transaction holds a
// snapshot older than the deleted rows, so VACUUM could remove none of them. The vacuum repair
// does not run while it holds: it is deferred, the record naming the session's pid, and the
// table is not vacuumed. Once the session ends, the repair runs and removes the rows.
func TestVacuumWaitsForIdleInTransactionSession(t *testing.T) {
	b, reg := horizonBundle(t)
	conn, err := pgx.Connect(b.ctx, b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var pid int
	if _, err := conn.Exec(b.ctx, `BEGIN ISOLATION LEVEL REPEATABLE READ`); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(b.ctx, `SELECT pg_backend_pid() FROM public.t LIMIT 1`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := b.target.Exec(b.ctx, `DELETE FROM public.t WHERE id % 2 = 0`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(b.cfg.HorizonMinAge + 100*time.Millisecond)

	e := b.engine(t, b.parseRunbook(t, vacuumDeadRunbook), func(o *engine.Options) { o.Registerer = reg })
	b.notify(t, e, alert("DeadTuples", "firing", time.Now(), map[string]string{"datname": b.datname(t)}))
	holder := "idle_in_transaction " + strconv.Itoa(pid)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var state, reason, msg string
		var deferrals int
		_ = b.state.QueryRow(b.ctx, `SELECT state, reason, error, deferrals FROM repairs`).Scan(&state, &reason, &msg, &deferrals)
		if deferrals >= 2 {
			if state != "queued" && state != "running" || !strings.Contains(msg, holder) {
				t.Fatalf("held repair: state %s, reason %s, error %q; want queued, naming %s", state, reason, msg, holder)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the repair was not deferred twice: state %s, reason %s, error %q, deferrals %d", state, reason, msg, deferrals)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var vacuums int64
	if err := b.target.QueryRow(b.ctx, `SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 't'`).Scan(&vacuums); err != nil {
		t.Fatal(err)
	}
	if vacuums != 0 || heldSteps(t, reg) < 2 {
		t.Fatalf("while the session holds: %d vacuums (want 0), %g steps held (want >= 2)", vacuums, heldSteps(t, reg))
	}
	if dead := b.deadTuples(t); dead != 100 {
		t.Fatalf("dead tuples while the session holds = %g, want 100", dead)
	}

	if _, err := conn.Exec(b.ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	rs := b.waitRepairs(t, 1, "succeeded", "failed", "rolled_back")
	if rs[0].State != "succeeded" {
		t.Fatalf("after the session ended: %+v", rs[0])
	}
	if dead := b.deadTuples(t); dead != 0 {
		t.Fatalf("dead tuples after the repair = %g, want 0", dead)
	}
}

// TestVacuumNotHeldOnBusyHealthyDatabase: short transactions of a concurrent writer hold no
// horizon for long: the vacuum repair runs at once, never held back.
func TestVacuumNotHeldOnBusyHealthyDatabase(t *testing.T) {
	b, reg := horizonBundle(t)
	if _, err := b.target.Exec(b.ctx, `CREATE TABLE public.busy (id int PRIMARY KEY, n int);
		INSERT INTO public.busy SELECT g, 0 FROM generate_series(1, 10) g`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			_, _ = b.target.Exec(ctx, `UPDATE public.busy SET n = n + 1 WHERE id = $1`, 1+i%10)
		}
	}()
	defer func() { cancel(); <-done }()
	if _, err := b.target.Exec(b.ctx, `DELETE FROM public.t WHERE id % 2 = 0`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(b.cfg.HorizonMinAge + 100*time.Millisecond)

	e := b.engine(t, b.parseRunbook(t, vacuumDeadRunbook), func(o *engine.Options) { o.Registerer = reg })
	b.notify(t, e, alert("DeadTuples", "firing", time.Now(), map[string]string{"datname": b.datname(t)}))
	rs := b.waitRepairs(t, 1, "succeeded", "failed", "rolled_back")
	var deferrals int
	if err := b.state.QueryRow(b.ctx, `SELECT deferrals FROM repairs WHERE id = $1`, rs[0].ID).Scan(&deferrals); err != nil {
		t.Fatal(err)
	}
	if rs[0].State != "succeeded" || deferrals != 0 || heldSteps(t, reg) != 0 {
		t.Fatalf("repair %+v, %d deferrals, %g steps held; want succeeded at once", rs[0], deferrals, heldSteps(t, reg))
	}
}
