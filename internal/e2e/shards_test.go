package e2e_test

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"

	"github.com/vectorheal/vectorheal/internal/e2e"
	"github.com/vectorheal/vectorheal/internal/shard"
	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/internal/workload"
	"github.com/vectorheal/vectorheal/remediation/engine"
)

// TestTwoShardsHealOnce runs the loop with the measuring split in two, as docs/operations.md
// sets it up: two `vectorheal serve --exporter.total-shards 2` replicas (shards 0 and 1) on
// one state store, both scraped by Prometheus, each behind an Alertmanager of its own that
// Prometheus sends every alert to, so both receive every notification. Each shard owns two of
// four HNSW indexes. Every index is exported by exactly one replica — the one its (target,
// database, index) hashes to — and no pgvector series ever comes from both. A third of one
// index's rows deleted raises the dead-entry alert on that index only; it is healed by
// exactly one repair, although both replicas received it, and the index's figures come from
// its own shard alone before, during and after the fault. Then shard 1's replica is killed:
// its indexes go unmeasured, the other shard does not take them over, VectorhealExporterDown
// fires; restarted, it exports them again.
func TestTwoShardsHealOnce(t *testing.T) {
	const total = 2
	pg := testenv.SharedPostgres(t)
	dsn, stateDSN := pg.CreateDatabase(t), pg.CreateDatabase(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db := openPool(t, dsn)
	var datname string
	if err := db.QueryRow(ctx, `SELECT current_database()`).Scan(&datname); err != nil {
		t.Fatal(err)
	}
	// The database's name is new each run and is part of the shard key: the indexes are named
	// so that each shard owns two, whatever the name.
	owners := map[string]int{} // index -> shard
	perShard := make([][]string, total)
	for i := 0; len(perShard[0]) < 2 || len(perShard[1]) < 2; i++ {
		name := fmt.Sprintf("shard_hnsw_%d", i)
		for s := range total {
			if (shard.Shard{Index: s, Total: total}).Owns("main", datname, "public", name) && len(perShard[s]) < 2 {
				perShard[s] = append(perShard[s], name)
				owners[name] = s
			}
		}
	}
	// The fault goes to shard 1's index: not the replica that measures alone in the
	// unsharded stack.
	faulty := perShard[1][0]
	gens := map[string]*workload.Generator{}
	for i, name := range slices.Sorted(maps.Keys(owners)) {
		rows := 1500
		if name == faulty {
			rows = 4000 // 35 % deleted: over the alert's 1000 dead entries
		}
		g := newTable(t, db, strings.Replace(name, "hnsw", "items", 1), rows, 16, uint64(40+i))
		if err := g.CreateHNSW(ctx, db, name, 8, 32); err != nil {
			t.Fatal(err)
		}
		gens[name] = g
	}
	t.Logf("database %s: shard 0 owns %v, shard 1 owns %v; the fault goes to %s", datname, perShard[0], perShard[1], faulty)

	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	started := time.Now()
	s, err := e2e.Start(sctx, e2e.Config{
		Root: root, Dir: t.TempDir(), Vectorheal: vectorhealBin,
		Targets:  []e2e.Target{{Name: "main", DSN: dsn}},
		StateDSN: stateDSN,
		Shards:   total,
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	b := &bundle{stack: s, pg: pg, state: openPool(t, stateDSN), timing: s.Config.Timing}
	b.watchUntilCleanup(t)
	if len(s.Vectorheals) != total {
		t.Fatalf("%d replicas, want one per shard", len(s.Vectorheals))
	}

	// Each replica says which shard it is and exports exactly the indexes of its shard.
	exported := b.waitShardsExport(t, owners)
	for i, v := range s.Vectorheals {
		t.Logf("%s (shard %d of %d) exports %v", v.Name, i, total, exported[i])
	}
	// Prometheus scrapes both and sees each index once.
	b.waitIndexesOnce(t, owners)

	before := b.notificationsPerReplica(t)
	injected := time.Now()
	deleted, err := gens[faulty].DeleteFraction(ctx, db, 0.35)
	if err != nil || deleted < 1000 {
		t.Fatalf("deleted %d rows of %s's table: %v", deleted, faulty, err)
	}
	const alert = "PgvectorHNSWDeadTuplesPending"
	firing := b.waitFiring(t, faulty, alert, injected, detectTimeout)
	r := b.waitRepair(t, faulty, repairTimeout, func(r e2e.Repair) bool { return r.Alertname == alert && r.StartedAt != nil })
	if r.State != "succeeded" || !hasStep(r, "reclaim", "") || !hasStep(r, "reclaim", "succeeded") && !hasStep(r, "reindex", "succeeded") {
		t.Fatalf("repair %d: state %s reason %q error %q steps %+v, want succeeded by reclaim or its escalation to reindex", r.ID, r.State, r.Reason, r.Error, r.Steps)
	}
	resolved := b.waitResolved(t, faulty, alert, resolveTimeout)
	b.waitResolvedRecorded(t, faulty, alert)
	waitQuery(t, s.Prometheus.URL, fmt.Sprintf(`pgvector_hnsw_heap_tids{indexrelname=%q,state="dead"}`, faulty), 0)

	// Both replicas received the alert; the state store made one repair of it, and none of
	// any other index.
	after := b.notificationsPerReplica(t)
	for i := range after {
		if after[i] <= before[i] {
			t.Errorf("%s received no notification (%v → %v)", s.Vectorheals[i].Name, before[i], after[i])
		}
	}
	b.oneRepairPerAlert(t, faulty, alert)
	rs, err := e2e.Repairs(ctx, b.state, "vectorheal")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range rs {
		if x.ID != r.ID {
			t.Errorf("repair %d of %s (%s, %s, runner %s) besides repair %d: want exactly one repair", x.ID, x.Index, x.Alertname, x.State, x.Runner, r.ID)
		}
	}
	var received, deliveries int
	if err := b.state.QueryRow(ctx, `SELECT count(*), coalesce(sum(times_received), 0) FROM vectorheal.alerts
		WHERE labels->>'indexrelname' = $1 AND alertname = $2 AND status = 'firing'`, faulty, alert).Scan(&received, &deliveries); err != nil {
		t.Fatal(err)
	}

	b.shardDiesAndReturns(t, owners)

	// Throughout — before, during and after the fault, and while a shard was down — every
	// pgvector series came from one replica, and the faulty index's figures from its own shard.
	window := time.Since(started).Round(time.Second) + 10*time.Second
	b.noSeriesFromTwoReplicas(t, window)
	owner := strings.TrimPrefix(s.Vectorheals[owners[faulty]].URL, "http://")
	instances := b.query(t, fmt.Sprintf(`count by (instance) (count_over_time(pgvector_hnsw_heap_tids{indexrelname=%q}[%ds]))`, faulty, int(window.Seconds())))
	if len(instances) != 1 || instances[0].Labels["instance"] != owner {
		t.Errorf("%s's heap TIDs came from %v over the test, want only its shard's replica %s", faulty, instances, owner)
	}
	peak := b.query(t, fmt.Sprintf(`max_over_time(pgvector_hnsw_heap_tids{indexrelname=%q,state="dead"}[%ds])`, faulty, int(window.Seconds())))
	if len(peak) != 1 || peak[0].Value < 1000 {
		t.Errorf("peak of %s's dead heap TIDs in Prometheus: %v, want one series of at least 1000", faulty, peak)
	}
	runner := r.Runner
	for _, v := range s.Vectorheals {
		if strings.HasSuffix(r.Runner, fmt.Sprintf("-%d", v.Pid())) {
			runner += " = " + v.Name
		}
	}
	t.Logf("%d rows deleted; alert rows %d delivered %d times; one repair #%d (%s, runner %s); peak dead heap TIDs %v from %s",
		deleted, received, deliveries, r.ID, r.Entry, runner, peak, owner)
	t.Logf("fault → firing %.1f s, fault → webhook %.1f s, repair took %.1f s, fault → repaired %.1f s, fault → resolved %.1f s",
		firing.At.Sub(injected).Seconds(), b.notifiedAt(faulty, injected).Sub(injected).Seconds(),
		r.FinishedAt.Sub(*r.StartedAt).Seconds(), r.FinishedAt.Sub(injected).Seconds(), resolved.Sub(injected).Seconds())
}

// shardDiesAndReturns kills the last shard's replica and checks what docs/operations.md says of
// a shard that is down: Prometheus sees its scrape fail (VectorhealExporterDown fires for it),
// its indexes' series are gone, and the other shard does not take them over; once it is back
// every index is exported once again.
func (b *bundle) shardDiesAndReturns(t *testing.T, owners map[string]int) {
	t.Helper()
	ctx := context.Background()
	prom := b.stack.Prometheus.URL
	vs := b.stack.Vectorheals
	dead, alive := vs[len(vs)-1], vs[0]
	if err := dead.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	deadAddr, aliveAddr := strings.TrimPrefix(dead.URL, "http://"), strings.TrimPrefix(alive.URL, "http://")
	waitQuery(t, prom, fmt.Sprintf(`up{job="vectorheal",instance=%q}`, deadAddr), 0)
	var survivors []string
	for ix, s := range owners {
		if s != dead.Shard.Index {
			survivors = append(survivors, ix)
		}
	}
	sort.Strings(survivors)
	waitQuery(t, prom, `count(group by (indexrelname) (pgvector_hnsw_heap_tids))`, float64(len(survivors)))
	gone := time.Since(killed)
	down := b.waitFiring(t, "", "VectorhealExporterDown", killed, detectTimeout)
	// Several check and discovery intervals later, still nobody measures the dead shard's
	// indexes: no takeover.
	time.Sleep(3 * b.timing.CheckInterval)
	got := map[string]string{}
	for _, smp := range b.query(t, `group by (indexrelname, instance) (pgvector_hnsw_heap_tids)`) {
		got[smp.Labels["indexrelname"]] = smp.Labels["instance"]
	}
	want := map[string]string{}
	for _, ix := range survivors {
		want[ix] = aliveAddr
	}
	if !maps.Equal(got, want) {
		t.Errorf("with %s down, Prometheus has indexes from %v, want only shard %d's %v", dead.Name, got, alive.Shard.Index, want)
	}
	if firing := b.query(t, fmt.Sprintf(`ALERTS{alertname="VectorhealExporterDown",alertstate="firing",instance=%q}`, deadAddr)); len(firing) != 1 {
		t.Errorf("VectorhealExporterDown firing for %s: %v, want one alert", deadAddr, firing)
	}
	restarted := time.Now()
	if err := dead.Start(ctx); err != nil {
		t.Fatal(err)
	}
	b.waitShardsExport(t, owners)
	b.waitIndexesOnce(t, owners)
	t.Logf("%s killed: its indexes' series gone after %.1f s, VectorhealExporterDown firing after %.1f s, the other shard kept only its own %v; restarted: every index exported once again after %.1f s",
		dead.Name, gone.Seconds(), down.At.Sub(killed).Seconds(), survivors, time.Since(restarted).Seconds())
}

// waitShardsExport waits until every replica of the stack says which shard it is
// (vectorheal_shard_info) and every index of owners has figures on /metrics, then checks that
// each index is on its own shard's replica and on no other. It returns each replica's indexes.
func (b *bundle) waitShardsExport(t *testing.T, owners map[string]int) [][]string {
	t.Helper()
	deadline := time.Now().Add(detectTimeout)
	for {
		exported, problem := b.shardExports(t, owners)
		if problem == "" {
			return exported
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", detectTimeout, problem)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// shardExports reads every replica's /metrics once and says what is not as owners wants it.
func (b *bundle) shardExports(t *testing.T, owners map[string]int) ([][]string, string) {
	t.Helper()
	vs := b.stack.Vectorheals
	exported := make([][]string, len(vs))
	var problems []string
	for i, v := range vs {
		fams, err := e2e.Scrape(context.Background(), v.URL+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		info := fams["vectorheal_shard_info"].GetMetric()
		want := map[string]string{"shard": fmt.Sprint(i), "total_shards": fmt.Sprint(len(vs)), "by": "index"}
		if len(info) != 1 || !labelsAre(info[0].GetLabel(), want) {
			problems = append(problems, fmt.Sprintf("%s: vectorheal_shard_info %v, want one series %v", v.Name, info, want))
		}
		seen := map[string]bool{}
		for name, f := range fams {
			if !strings.HasPrefix(name, "pgvector_") {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "indexrelname" {
						seen[l.GetValue()] = true
					}
				}
			}
		}
		for ix := range seen {
			exported[i] = append(exported[i], ix)
			if s, ok := owners[ix]; !ok || s != i {
				problems = append(problems, fmt.Sprintf("%s (shard %d) exports %s, owned by shard %d", v.Name, i, ix, s))
			}
		}
		sort.Strings(exported[i])
		for ix, s := range owners {
			if s == i && !seen[ix] {
				problems = append(problems, fmt.Sprintf("%s (shard %d) does not export its index %s", v.Name, i, ix))
			}
		}
	}
	return exported, strings.Join(problems, "; ")
}

func labelsAre(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, l := range got {
		if want[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}

// waitIndexesOnce waits until Prometheus has each index of owners from exactly one instance.
func (b *bundle) waitIndexesOnce(t *testing.T, owners map[string]int) {
	t.Helper()
	deadline := time.Now().Add(detectTimeout)
	for {
		got := map[string]float64{}
		samples, err := e2e.Query(context.Background(), b.stack.Prometheus.URL, `count by (indexrelname) (group by (indexrelname, instance) (pgvector_hnsw_heap_tids))`)
		for _, s := range samples {
			got[s.Labels["indexrelname"]] = s.Value
		}
		ok := err == nil && len(got) == len(owners)
		for ix := range owners {
			ok = ok && got[ix] == 1
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances per index in Prometheus: %v (%v), want 1 for each of %v", got, err, slices.Sorted(maps.Keys(owners)))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// noSeriesFromTwoReplicas checks in Prometheus that over the last window no pgvector series
// (name and labels but the instance) was scraped from two replicas.
func (b *bundle) noSeriesFromTwoReplicas(t *testing.T, window time.Duration) {
	t.Helper()
	// Aggregation drops the metric name; a copy in a label keeps series of different names
	// apart. The subquery looks at every evaluation step, not only the last.
	q := fmt.Sprintf(`count without (instance) (count_over_time(label_replace({__name__=~"pgvector_.+"}, "name", "$1", "__name__", "(.+)")[%ds:1s])) > 1`,
		int(window.Seconds()))
	if dup := b.query(t, q); len(dup) > 0 {
		t.Errorf("%d pgvector series came from two replicas, e.g. %v", len(dup), dup[0].Labels)
	}
	all := b.query(t, fmt.Sprintf(`count(count without (instance) (count_over_time(label_replace({__name__=~"pgvector_.+"}, "name", "$1", "__name__", "(.+)")[%ds:1s])))`,
		int(window.Seconds())))
	if len(all) != 1 || all[0].Value == 0 {
		t.Errorf("no pgvector series in Prometheus over %s: %v", window, all)
		return
	}
	t.Logf("%v pgvector series over %s, each from one replica", all[0].Value, window)
}

func (b *bundle) query(t *testing.T, q string) []e2e.Sample {
	t.Helper()
	samples, err := e2e.Query(context.Background(), b.stack.Prometheus.URL, q)
	if err != nil {
		t.Fatal(err)
	}
	return samples
}

// TestShardsByTargetRepairAnywhere: two shards by target (`--exporter.shard-by target`), each
// owning one of two databases, both scraped and both receiving every alert. Each replica
// publishes the series of its own target only. The shard that owns the faulty target has its
// repair workers off (remediation.disabled), so the dead-entry alert on its index is repaired,
// once, by the other replica — one that neither measures that target nor has connected to it
// for measuring: repairs go through the state store and every replica's engine keeps every
// target.
func TestShardsByTargetRepairAnywhere(t *testing.T) {
	const total = 2
	pg := testenv.SharedPostgres(t)
	stateDSN := pg.CreateDatabase(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Target names chosen so that each shard owns one.
	names := make([]string, total)
	for i := 0; names[0] == "" || names[1] == ""; i++ {
		name := fmt.Sprintf("tenant_%d", i)
		for s := range total {
			if (shard.Shard{Index: s, Total: total, By: shard.ByTarget}).OwnsTarget(name) && names[s] == "" {
				names[s] = name
			}
		}
	}
	var targets []e2e.Target
	faulty := names[1] + "_hnsw" // index names are unique over the targets, as the repairs' record needs
	var gen *workload.Generator
	var faultyDB *pgxpool.Pool
	for s, name := range names {
		dsn := pg.CreateDatabase(t)
		targets = append(targets, e2e.Target{Name: name, DSN: dsn})
		db := openPool(t, dsn)
		rows := 1500
		if s == 1 {
			rows = 4000 // 35 % deleted: over the alert's 1000 dead entries
		}
		g := newTable(t, db, "tenant_items", rows, 16, uint64(60+s))
		if err := g.CreateHNSW(ctx, db, name+"_hnsw", 8, 32); err != nil {
			t.Fatal(err)
		}
		if s == 1 {
			gen, faultyDB = g, db
		}
	}
	t.Logf("shard 0 owns %s, shard 1 owns %s; the fault goes to %s, whose shard does not repair", names[0], names[1], faulty)

	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	s, err := e2e.Start(sctx, e2e.Config{
		Root: root, Dir: t.TempDir(), Vectorheal: vectorhealBin,
		Targets:  targets,
		StateDSN: stateDSN,
		Shards:   total, ShardBy: shard.ByTarget,
		NoRepairs: []int{1},
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	b := &bundle{stack: s, pg: pg, state: openPool(t, stateDSN), timing: s.Config.Timing}
	b.watchUntilCleanup(t)

	// Each replica publishes its own target's series and none of the other's.
	deadline := time.Now().Add(detectTimeout)
	for {
		problem := b.targetsExported(t, names)
		if problem == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", detectTimeout, problem)
		}
		time.Sleep(500 * time.Millisecond)
	}

	injected := time.Now()
	deleted, err := gen.DeleteFraction(ctx, faultyDB, 0.35)
	if err != nil || deleted < 1000 {
		t.Fatalf("deleted %d rows of %s's table: %v", deleted, names[1], err)
	}
	const alert = "PgvectorHNSWDeadTuplesPending"
	b.waitFiring(t, faulty, alert, injected, detectTimeout)
	r := b.waitRepair(t, faulty, repairTimeout, func(r e2e.Repair) bool { return r.Alertname == alert && r.StartedAt != nil })
	if r.State != "succeeded" {
		t.Fatalf("repair %d: state %s reason %q error %q steps %+v, want succeeded", r.ID, r.State, r.Reason, r.Error, r.Steps)
	}
	if repairer := s.Vectorheals[0]; !strings.HasSuffix(r.Runner, fmt.Sprintf("-%d", repairer.Pid())) {
		t.Errorf("repair %d ran on %s, want %s (pid %d), the replica that does not measure %s", r.ID, r.Runner, repairer.Name, repairer.Pid(), names[1])
	}
	b.oneRepairPerAlert(t, faulty, alert)
	b.waitResolved(t, faulty, alert, resolveTimeout)
	// Throughout, the target's series came from its own shard only.
	if problem := b.targetsExported(t, names); problem != "" {
		t.Error(problem)
	}
	t.Logf("repair #%d (%s) of %s ran on %s, which measures only %s", r.ID, r.Entry, faulty, s.Vectorheals[0].Name, names[0])
}

// targetsExported reads every replica's /metrics once and says what is not as names wants it:
// replica i's exporter publishes vectorheal_up and index series of names[i] and no series of
// another target. The engine's per-index series (engine.Metrics: held repairs, budgets,
// circuits) are left out: every replica reads them from the shared state store, sharded or
// not.
func (b *bundle) targetsExported(t *testing.T, names []string) string {
	t.Helper()
	fromEngine := map[string]bool{}
	for _, m := range engine.Metrics() {
		fromEngine[m.Name] = true
	}
	var problems []string
	for i, v := range b.stack.Vectorheals {
		fams, err := e2e.Scrape(context.Background(), v.URL+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for name, f := range fams {
			if fromEngine[name] {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "target" {
						seen[l.GetValue()] = true
					}
				}
			}
		}
		if len(fams["pgvector_index_info"].GetMetric()) == 0 || len(fams["vectorheal_up"].GetMetric()) != 1 {
			problems = append(problems, fmt.Sprintf("%s: %d index infos and %d vectorheal_up, want its target's", v.Name,
				len(fams["pgvector_index_info"].GetMetric()), len(fams["vectorheal_up"].GetMetric())))
		}
		for tg := range seen {
			if tg != names[i] {
				problems = append(problems, fmt.Sprintf("%s (shard %d) publishes series of %s, owned by another shard", v.Name, i, tg))
			}
		}
	}
	return strings.Join(problems, "; ")
}
