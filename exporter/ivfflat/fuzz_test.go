package ivfflat_test

import (
	"context"
	"flag"
	"math"
	"testing"

	"github.com/vectorheal/vectorheal/exporter/ivfflat"
	"github.com/vectorheal/vectorheal/exporter/pagescan"
	"github.com/vectorheal/vectorheal/exporter/pagescan/pagescantest"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the fuzz seed corpus from indexes of the test cluster")

// FuzzIVFFlatPages runs Analyze over arbitrary bytes cut into pages. The seeds are the pages
// of real indexes (testdata/fuzz/FuzzIVFFlatPages). Analyze must not panic, and whatever it
// reports must be consistent.
func FuzzIVFFlatPages(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r := pagescan.SplitPages(data)
		if len(r) == 0 {
			return
		}
		rep, err := ivfflat.Analyze(context.Background(), r, ivfflat.Options{QualitySample: 16, Batch: 2})
		if err != nil {
			t.Fatalf("analyze: %v", err)
		}
		var sum int64
		empty := 0
		for _, s := range rep.ListSizes {
			sum += s
			if s == 0 {
				empty++
			}
		}
		if sum != rep.Entries || empty != rep.EmptyLists {
			t.Fatalf("entries %d, sizes sum %d; empty %d, counted %d", rep.Entries, sum, rep.EmptyLists, empty)
		}
		if math.IsNaN(rep.ListSizeCV) || rep.ListSizeCV < 0 {
			t.Fatalf("CV %v", rep.ListSizeCV)
		}
	})
}

// TestFuzzCorpus analyses every seed of FuzzIVFFlatPages and checks it is the real index it
// was written from: 60 rows of 3 dimensions in 3 lists, a third deleted and vacuumed, and a
// halfvec index of 40 rows in 2 lists. With -update-corpus it first rewrites the seeds from
// small real indexes of the test cluster.
func TestFuzzCorpus(t *testing.T) {
	if *updateCorpus {
		writeCorpus(t)
	}
	want := map[string]struct{ dims, lists, entries int }{
		"fresh":    {3, 3, 60},
		"vacuumed": {3, 3, 40},
		"halfvec":  {4, 2, 40},
	}
	seeds := pagescantest.Seeds(t, "", "FuzzIVFFlatPages")
	if len(seeds) != len(want) {
		t.Fatalf("seeds %v, want %d", seeds, len(want))
	}
	for _, name := range seeds {
		w, ok := want[name]
		if !ok {
			t.Errorf("unexpected seed %s", name)
			continue
		}
		rep, err := ivfflat.Analyze(context.Background(), pagescan.SplitPages(pagescantest.ReadSeed(t, "", "FuzzIVFFlatPages", name)), ivfflat.Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rep.Dimensions != w.dims || rep.Lists != w.lists || rep.Entries != int64(w.entries) || rep.EmptyLists != 0 || len(rep.Faults) != 0 {
			t.Errorf("%s: %d dimensions, %d lists, %d entries, %d empty, faults %v; want %d, %d, %d, 0, none",
				name, rep.Dimensions, rep.Lists, rep.Entries, rep.EmptyLists, rep.Faults, w.dims, w.lists, w.entries)
		}
		if q := rep.CentroidQuality; math.IsNaN(q) || q <= 0 || q >= 1 {
			t.Errorf("%s: centroid quality %v, want in (0, 1)", name, q)
		}
	}
}

// writeCorpus writes the seed corpus of FuzzIVFFlatPages from small real indexes.
func writeCorpus(t *testing.T) {
	b := setup(t)
	ix := b.build(t, 60, 3, "vector_l2_ops", 3)
	pagescantest.WriteSeed(t, "FuzzIVFFlatPages", "fresh", pagescantest.Pages(b.ctx, t, b.pool, ix.OID))
	b.exec(t, `DELETE FROM items WHERE id % 3 = 0`)
	b.exec(t, `VACUUM items`)
	pagescantest.WriteSeed(t, "FuzzIVFFlatPages", "vacuumed", pagescantest.Pages(b.ctx, t, b.pool, ix.OID))
	b.exec(t, `DROP TABLE items`)
	// A short-header (1-byte varlena) halfvec index.
	b.exec(t, `CREATE TABLE items (id serial PRIMARY KEY, v halfvec(4))`)
	b.exec(t, `INSERT INTO items (v) SELECT ARRAY[random(), random(), random(), random()]::halfvec FROM generate_series(1, 40)`)
	b.exec(t, `CREATE INDEX items_v_idx ON items USING ivfflat (v halfvec_cosine_ops) WITH (lists = 2)`)
	var oid uint32
	if err := b.pool.QueryRow(b.ctx, `SELECT 'items_v_idx'::regclass::oid`).Scan(&oid); err != nil {
		t.Fatal(err)
	}
	pagescantest.WriteSeed(t, "FuzzIVFFlatPages", "halfvec", pagescantest.Pages(b.ctx, t, b.pool, oid))
}
