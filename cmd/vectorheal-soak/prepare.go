package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/workload"
)

// prepare loads the data into the tended twin, builds its indexes, copies it to the untended
// twin, tunes the search settings on the fresh indexes and throttles autovacuum in both.
func (s *soak) prepare(ctx context.Context) error {
	o := s.o
	s.docsGen = workload.NewGenerator(workload.Dataset{Table: docsTable, Dim: o.dims, Clusters: 16, Rows: o.rows, Seed: o.seed})
	s.eventsGen = workload.NewGenerator(workload.Dataset{Table: eventsTable, Dim: o.dims, Clusters: o.eventsCenters, Rows: o.rows / 5, Spread: o.eventsSpread, Seed: o.seed + 1})
	s.probeGen = s.docsGen.Fork(o.seed + 100)
	start := time.Now()
	if err := s.both(func(tw *twin) error { return createTables(ctx, tw.pool, o.dims) }); err != nil {
		return err
	}
	const batch = 1000
	for done := 0; done < o.rows; done += batch {
		var rows []docRow
		for id := int64(done + 1); id <= int64(min(done+batch, o.rows)); id++ {
			v, k := s.docsGen.Point()
			rows = append(rows, docRow{id: id, doc: docOfInitial(id), category: categoryOf(id), cluster: int32(k), vec: v})
		}
		if err := s.both(func(tw *twin) error { return insertDocs(ctx, tw.pool, rows) }); err != nil {
			return err
		}
	}
	for done := 0; done < o.rows/5; done += batch {
		var rows []eventRow
		for id := int64(done + 1); id <= int64(min(done+batch, o.rows/5)); id++ {
			v, k := s.eventsGen.Point()
			rows = append(rows, eventRow{id: id, cluster: int32(k), vec: v})
		}
		if err := s.both(func(tw *twin) error { return insertEvents(ctx, tw.pool, rows) }); err != nil {
			return err
		}
	}
	s.printf("loaded %d docs and %d events rows of %d dimensions into the tended twin (%.0fs)\n", o.rows, o.rows/5, o.dims, time.Since(start).Seconds())
	start = time.Now()
	lists := ivfLists(o.rows / 5)
	if err := s.both(func(tw *twin) error { return buildIndexes(ctx, tw.pool, lists) }); err != nil {
		return err
	}
	if err := s.cloneTwin(ctx); err != nil {
		return err
	}
	s.printf("built %s (hnsw, cosine, m 16, ef_construction 64) and %s (ivfflat, L2, lists %d) and copied them to the untended twin (%.0fs)\n",
		docsIndex, eventsIndex, lists, time.Since(start).Seconds())
	for _, spec := range soakIndexes() {
		if err := s.tune(ctx, spec, lists); err != nil {
			return err
		}
	}
	if err := s.both(func(tw *twin) error { return throttleAutovacuum(ctx, tw.pool, o.avCostDelay, o.avCostLimit) }); err != nil {
		return err
	}
	s.printf("autovacuum of both tables in both twins: cost_delay %dms, cost_limit %d\n", o.avCostDelay, o.avCostLimit)
	return nil
}

// tune sets spec's search setting in both twins to the smallest candidate that reaches
// -recall-at-build on the tended twin's fresh index, as an operator tunes a new index; the
// untended twin gets the same value so the twins differ only in who tends them. Without it
// IVFFlat at ivfflat.probes = 1 starts below vectorheal's recall target and the quiet period
// would not be quiet.
func (s *soak) tune(ctx context.Context, spec indexSpec, lists int) error {
	var candidates []int
	if spec.method == "hnsw" {
		candidates = []int{40, 60, 80, 100, 150, 200}
	} else {
		// From 1, not from pgvector's starting point sqrt(lists): the smallest probes that
		// reach the target on the data the index was built on is what an operator keeps, and
		// what new data that does not look like it then undoes.
		for p := 1; p <= lists; p++ {
			candidates = append(candidates, p)
		}
	}
	queries := s.probeQueries(spec, 50)
	chosen := candidates[len(candidates)-1]
	var recall float64
	for _, c := range candidates {
		r, err := probeRecall(ctx, s.twins[0].dsn+"&options="+optionsParam(spec.setting, c), spec, queries)
		if err != nil {
			return err
		}
		recall = r.recall
		if r.recall >= s.o.recallAtBuild {
			chosen = c
			break
		}
	}
	for _, tw := range s.twins {
		q := fmt.Sprintf("ALTER DATABASE %s SET %s = %d", pgx.Identifier{tw.name}.Sanitize(), spec.setting, chosen)
		if _, err := tw.pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("set %s: %w", spec.setting, err)
		}
	}
	s.printf("%s: %s = %d in both twins (recall@10 %.3f on the fresh tended index)\n", spec.index, spec.setting, chosen, recall)
	return nil
}

// optionsParam is a libpq options parameter setting one GUC for a session.
func optionsParam(setting string, v int) string {
	return "-c%20" + setting + "%3D" + strconv.Itoa(v)
}

// probeQueries draws n query vectors for spec: near the original clusters, and for events
// half of them near the drifting centre at the churn's current progress.
func (s *soak) probeQueries(spec indexSpec, n int) [][]float32 {
	var qs [][]float32
	for i := range n {
		if spec.table == eventsTable {
			if i%2 == 1 {
				qs = append(qs, s.probeGen.Near(driftCentre(s.eventsGen.Centers(), s.prog.get())))
				continue
			}
			qs = append(qs, s.probeGen.Near(s.eventsGen.Centers()[i/2%len(s.eventsGen.Centers())]))
			continue
		}
		v, _ := s.probeGen.Point()
		qs = append(qs, v)
	}
	return qs
}
