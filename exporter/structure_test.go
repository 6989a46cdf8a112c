package exporter

import (
	"context"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestStructureScanKeepsPageBudget scans a real HNSW index with
// exporter.structure.max_pages_per_second set: the scan reads every page (the report is the
// unpaced one) and cannot end before the pages after the first batch have had their time.
func TestStructureScanKeepsPageBudget(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	clustered(t, dsn, 3000, 8, 10)
	testenv.Exec(t, dsn, `CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)`)
	ctx := context.Background()
	pool := superPool(t, dsn)
	ix := resolve(t, pool, "items_hnsw")
	cfg := config.Exporter{PageBatch: 4, Structure: config.StructureCheck{Check: config.Check{Timeout: time.Minute}}}
	free, err := scanStructure(ctx, pool, ix, rawPages(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	pages := free.hnsw.Pages
	if pages < 20 {
		t.Fatalf("index of %d pages, too few to see a budget", pages)
	}
	cfg.Structure.MaxPagesPerSecond = 100
	start := time.Now()
	paced, err := scanStructure(ctx, pool, ix, rawPages(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	// Block 0 and the first batch come at once; each later page waits for its hundredth of a second.
	if least := time.Duration(pages-1-4) * 10 * time.Millisecond; took < least {
		t.Errorf("%d pages at 100 pages/s took %v, less than %v", pages, took, least)
	}
	if paced.hnsw.ElementsLive != free.hnsw.ElementsLive || paced.hnsw.Pages != pages || paced.hnsw.Unreachable != free.hnsw.Unreachable {
		t.Errorf("paced scan: %d live elements in %d pages, %d unreachable; unpaced %d in %d, %d",
			paced.hnsw.ElementsLive, paced.hnsw.Pages, paced.hnsw.Unreachable, free.hnsw.ElementsLive, pages, free.hnsw.Unreachable)
	}
}
