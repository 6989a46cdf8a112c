package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/e2e"
)

// scenarioRebuildAfterApproval: an index whose graph cannot reach the recall target at any
// search setting within tune_search's bounds (islands of tight clusters built with m = 4,
// ef_construction = 8) gets tune_search first, which fails and is undone; then a rebuild with
// raised m and ef_construction waits for a human. Approved through the API, it builds the new
// index, which the validation judges by measured recall.
func (b *bundle) scenarioRebuildAfterApproval(t *testing.T) {
	ctx := context.Background()
	// An earlier scenario may have tuned the database's ef_search for another index; the new
	// index is judged at the settings a new session gets, and at a high ef_search the planner
	// prefers a sequential scan of so small a table to any HNSW index (then the rebuild refuses
	// to swap, rightly). Start from pgvector's defaults.
	if _, err := b.main.Exec(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET hnsw.ef_search', current_database()); END $$`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE islands (id bigserial PRIMARY KEY, emb vector(32))`,
		`SELECT setseed(0.29)`,
		`CREATE TEMP TABLE island_centers AS SELECT c, array_agg(random()::real) AS v FROM generate_series(1, 100) c,
			generate_series(1, 32) d GROUP BY c`,
		`INSERT INTO islands (emb) SELECT (SELECT array_agg(v[d] + (random() - 0.5) * 0.02) FROM generate_series(1, 32) d)::vector
			FROM island_centers, generate_series(1, 100) i`,
		`ANALYZE islands`,
		`CREATE INDEX islands_hnsw ON islands USING hnsw (emb vector_l2_ops) WITH (m = 4, ef_construction = 8)`,
	} {
		if _, err := b.main.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	injected := time.Now()
	const alert = "PgvectorRecallBelowTarget"
	firing := b.waitFiring(t, "islands_hnsw", alert, injected, detectTimeout)

	// tune_search runs and fails; the rebuild step waits for approval with its impact.
	var waiting e2e.Repair
	deadline := time.Now().Add(2 * repairTimeout)
	for waiting.ID == 0 {
		rs, err := e2e.Repairs(ctx, b.state, "vectorheal")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Index == "islands_hnsw" && r.State == "awaiting_approval" && hasStep(r, "hnsw_rebuild", "planned") {
				waiting = r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rebuild awaiting approval within %s; repairs: %+v\ntimeline:\n%s", 2*repairTimeout, repairsOf(rs, "islands_hnsw"), b.timeline("islands_hnsw"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if hasStep(waiting, "tune_search", "succeeded") || !hasStep(waiting, "tune_search", "") {
		t.Fatalf("repair %d: tune_search should have run and failed first: %+v", waiting.ID, waiting.Steps)
	}
	var m int
	if err := b.main.QueryRow(ctx, `SELECT coalesce((SELECT split_part(o, '=', 2)::int FROM unnest(c.reloptions) o WHERE o LIKE 'm=%'), 16)
		FROM pg_class c WHERE relname = 'islands_hnsw'`).Scan(&m); err != nil || m != 4 {
		t.Fatalf("before approval the index has m = %d (%v), want the old build's 4", m, err)
	}

	// Both tiers of the recall alert may have queued a repair; Alertmanager's inhibition skips
	// the lower one when it resumes. An approved repair may also end without running: skipped
	// as inhibited, or cancelled when its alert resolved before the approval (the recall of
	// this graph hovers around the critical tier's bound, so that alert may flap), and the
	// alert then queues a new repair that waits for its own approval. A person approves the
	// new one as well, and so does the test, until an approved repair has run.
	approvedIDs := map[int64]bool{}
	approved := time.Now()
	r := b.approveUntilRun(t, "islands_hnsw", 3*repairTimeout, approvedIDs)
	// The new graph is a random build: now and then one of its islands is linked so poorly that
	// its recall misses the gate. Then the old index must stay, untouched and alone, and the
	// history must say the new one was measured and found short (the engine's rebuild test holds
	// the successful path on the same data).
	if r.State == "rolled_back" && strings.Contains(r.Error, "below target_recall") {
		var newRecall, oldRecall float64
		for _, s := range r.Steps {
			if s.Strategy == "hnsw_rebuild" {
				newRecall, oldRecall = s.After["new_index_pgvector_recall_ratio"], s.Before["pgvector_recall_ratio"]
			}
		}
		if err := b.main.QueryRow(ctx, `SELECT coalesce((SELECT split_part(o, '=', 2)::int FROM unnest(c.reloptions) o WHERE o LIKE 'm=%'), 16)
			FROM pg_class c WHERE relname = 'islands_hnsw'`).Scan(&m); err != nil || m != 4 {
			t.Errorf("after a rolled-back rebuild the index has m = %d (%v), want the old build's 4", m, err)
		}
		if left := invalidIndexes(t, b.main, "islands"); len(left) != 0 {
			t.Errorf("indexes left behind on islands: %v", left)
		}
		if newRecall <= 0 {
			t.Errorf("repair %d rolled back without the new index's measured recall: %+v", r.ID, r.Steps)
		}
		t.Logf("repair %d: the new graph measured recall %.3f (old %.3f), below the gate; old index kept", r.ID, newRecall, oldRecall)
		return
	}
	if r.State != "succeeded" || !hasStep(r, "hnsw_rebuild", "succeeded") {
		t.Fatalf("repair %d after approval: state %s reason %q error %q steps %+v", r.ID, r.State, r.Reason, r.Error, r.Steps)
	}
	var before, after float64
	for _, s := range r.Steps {
		if s.Strategy == "hnsw_rebuild" {
			before, after = s.Before["pgvector_recall_ratio"], s.After["pgvector_recall_ratio"]
		}
	}
	if after < 0.9 || after <= before {
		t.Errorf("recall before the rebuild %v, after %v; want at least the validation's 0.9", before, after)
	}
	if err := b.main.QueryRow(ctx, `SELECT coalesce((SELECT split_part(o, '=', 2)::int FROM unnest(c.reloptions) o WHERE o LIKE 'm=%'), 16)
		FROM pg_class c WHERE relname = 'islands_hnsw'`).Scan(&m); err != nil || m <= 4 {
		t.Errorf("after the rebuild the index has m = %d (%v), want more than 4", m, err)
	}
	if left := invalidIndexes(t, b.main, "islands"); len(left) != 0 {
		t.Errorf("indexes left behind on islands: %v", left)
	}
	t.Logf("repair %d: recall %.3f -> %.3f, m 4 -> %d, %s after approval (alert fired %s after the build)", r.ID, before, after, m,
		r.FinishedAt.Sub(approved).Round(time.Millisecond), firing.At.Sub(injected).Round(time.Millisecond))
	if _, err := b.main.Exec(ctx, `DROP TABLE islands`); err != nil {
		t.Fatal(err)
	}
}

// scenarioQuotedNames: an index in a schema and table whose names need quoting is measured,
// alerted on and healed like any other; names are only ever looked up in the catalog.
func (b *bundle) scenarioQuotedNames(t *testing.T) {
	ctx := context.Background()
	if _, err := b.main.Exec(ctx, `CREATE SCHEMA "My Schema"`); err != nil {
		t.Fatal(err)
	}
	loadSQL(t, b.main, `"My Schema"."Items Table"`, 4000, 16, "1")
	const index = "Items idx"
	if _, err := b.main.Exec(ctx, `CREATE INDEX "Items idx" ON "My Schema"."Items Table" USING hnsw (emb vector_l2_ops)`); err != nil {
		t.Fatal(err)
	}
	// Measured (its baseline recorded) before the fault, like any index.
	b.asBuiltOf(t, index, time.Time{}, 2*time.Minute)
	injected := time.Now()
	if _, err := b.main.Exec(ctx, `DELETE FROM "My Schema"."Items Table" WHERE id % 3 = 0`); err != nil {
		t.Fatal(err)
	}
	const alert = "PgvectorHNSWDeadTuplesPending"
	firing := b.waitFiring(t, index, alert, injected, detectTimeout)
	r := b.waitRepair(t, index, repairTimeout, func(r e2e.Repair) bool { return r.Alertname == alert && r.StartedAt != nil })
	if r.State != "succeeded" || strings.Contains(r.Reason, "invalid") {
		t.Fatalf("repair %d of %q: state %s reason %q error %q steps %+v", r.ID, index, r.State, r.Reason, r.Error, r.Steps)
	}
	var dead float64 = -1
	for _, s := range r.Steps {
		if v, ok := s.After["pgvector_hnsw_heap_tids:dead"]; ok {
			dead = v
		}
	}
	if dead != 0 {
		t.Errorf("dead heap TIDs after the repair of %q: %v, want 0", index, dead)
	}
	resolved := b.waitResolved(t, index, alert, resolveTimeout)
	b.record(result{scenario: `10 "My Schema"."Items idx" churn → healed`, injected: injected, firing: firing.At,
		notified: b.notifiedAt(index, injected), repaired: *r.FinishedAt, resolved: resolved, repairDur: r.FinishedAt.Sub(*r.StartedAt)})
}

// approveUntilRun approves every repair of index that waits for approval, as they come,
// until one it approved has finished other than skipped or cancelled, and returns that one.
func (b *bundle) approveUntilRun(t *testing.T, index string, timeout time.Duration, approvedIDs map[int64]bool) e2e.Repair {
	t.Helper()
	return b.pollRepairs(t, index, timeout, "approved repair that ran", func(w e2e.Repair) bool {
		if w.State == "awaiting_approval" && !approvedIDs[w.ID] {
			resp := b.api(t, http.MethodPost, fmt.Sprintf("%s/api/v1/repairs/%d/approve", b.stack.Vectorheals[0].URL, w.ID))
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				t.Fatalf("approve repair %d: HTTP %d", w.ID, resp.StatusCode)
			}
			approvedIDs[w.ID] = true
			return false
		}
		return approvedIDs[w.ID] && w.Finished() && w.State != "skipped" && w.State != "cancelled"
	})
}
