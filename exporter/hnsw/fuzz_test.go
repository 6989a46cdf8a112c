package hnsw_test

import (
	"context"
	"flag"
	"math"
	"testing"

	"github.com/vectorheal/vectorheal/exporter/hnsw"
	"github.com/vectorheal/vectorheal/exporter/pagescan"
	"github.com/vectorheal/vectorheal/exporter/pagescan/pagescantest"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the fuzz seed corpus from indexes of the test cluster")

// FuzzHNSWPages runs Analyze over arbitrary bytes cut into pages. The seeds are the pages of
// real indexes (testdata/fuzz/FuzzHNSWPages). Analyze must not panic, and whatever it reports
// must be consistent.
func FuzzHNSWPages(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r := pagescan.SplitPages(data)
		if len(r) == 0 {
			return
		}
		rep, err := hnsw.Analyze(context.Background(), r, hnsw.Options{ListLimit: 4, Batch: 3})
		if err != nil {
			t.Fatalf("analyze: %v", err)
		}
		if rep.Unreachable < 0 || rep.Unreachable > rep.ElementsLive || rep.Orphans < 0 || rep.Orphans > rep.ElementsLive {
			t.Fatalf("unreachable %d, orphans %d of %d live", rep.Unreachable, rep.Orphans, rep.ElementsLive)
		}
		for name, v := range map[string]float64{"connectivity": rep.ConnectivityRatio, "entry point": rep.EntryPointQuality, "fragmentation": rep.FragmentationRatio} {
			if math.IsNaN(v) || v < 0 || v > 1 {
				t.Fatalf("%s ratio %v", name, v)
			}
		}
		if len(rep.LayerElements) > 0 && rep.LayerElements[0] != rep.ElementsLive {
			t.Fatalf("layer 0 %d, live %d", rep.LayerElements[0], rep.ElementsLive)
		}
	})
}

// TestFuzzCorpus analyses every seed of FuzzHNSWPages and checks it is the real index it was
// written from: 40 rows of 3 dimensions at m = 4, a quarter deleted, VACUUM, six inserts. With
// -update-corpus it first rewrites the seeds from small real indexes of the test cluster.
func TestFuzzCorpus(t *testing.T) {
	if *updateCorpus {
		writeCorpus(t)
	}
	want := map[string]struct{ live, deleted, layers int64 }{
		"fresh":    {40, 0, 4},
		"deleted":  {40, 0, 4}, // the rows are gone from the table, the graph is unchanged until VACUUM
		"vacuumed": {30, 10, 4},
		"reused":   {36, 10, 4},
	}
	seeds := pagescantest.Seeds(t, "", "FuzzHNSWPages")
	if len(seeds) != len(want) {
		t.Fatalf("seeds %v, want %d", seeds, len(want))
	}
	for _, name := range seeds {
		w, ok := want[name]
		if !ok {
			t.Errorf("unexpected seed %s", name)
			continue
		}
		rep, err := hnsw.Analyze(context.Background(), pagescan.SplitPages(pagescantest.ReadSeed(t, "", "FuzzHNSWPages", name)), hnsw.Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rep.Dimensions != 3 || rep.M != 4 || len(rep.Faults) != 0 || rep.Unreachable != 0 {
			t.Errorf("%s: %d dimensions, m %d, faults %v, %d unreachable; want 3, 4, none, 0", name, rep.Dimensions, rep.M, rep.Faults, rep.Unreachable)
		}
		if rep.ElementsLive != w.live || rep.ElementsDeleted != w.deleted || int64(len(rep.LayerElements)) != w.layers {
			t.Errorf("%s: %d live, %d deleted, %d layers; want %d, %d, %d", name, rep.ElementsLive, rep.ElementsDeleted, len(rep.LayerElements), w.live, w.deleted, w.layers)
		}
	}
}

// writeCorpus writes the seed corpus of FuzzHNSWPages from small real indexes: fresh, after
// deletes, after VACUUM, and with inserts after VACUUM.
func writeCorpus(t *testing.T) {
	b := setup(t)
	ix := b.build(t, 40, 3, `WITH (m = 4, ef_construction = 8)`)
	pagescantest.WriteSeed(t, "FuzzHNSWPages", "fresh", pagescantest.Pages(b.ctx, t, b.pool, ix.OID))
	b.exec(t, `DELETE FROM items WHERE id % 4 = 0`)
	pagescantest.WriteSeed(t, "FuzzHNSWPages", "deleted", pagescantest.Pages(b.ctx, t, b.pool, ix.OID))
	b.exec(t, `VACUUM items`)
	pagescantest.WriteSeed(t, "FuzzHNSWPages", "vacuumed", pagescantest.Pages(b.ctx, t, b.pool, ix.OID))
	b.exec(t, `INSERT INTO items (id, v) SELECT i, ARRAY[random(), random(), random()]::vector FROM generate_series(100, 105) AS i`)
	pagescantest.WriteSeed(t, "FuzzHNSWPages", "reused", pagescantest.Pages(b.ctx, t, b.pool, ix.OID))
}
