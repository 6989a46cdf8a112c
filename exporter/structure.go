package exporter

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/exporter/hnsw"
	"github.com/vectorheal/vectorheal/exporter/ivfflat"
	"github.com/vectorheal/vectorheal/exporter/pagescan"
	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
)

// structure is the result of one page scan: exactly one of the reports is set.
type structure struct {
	hnsw *hnsw.Report
	ivf  *ivfflat.Report
	// rows is the table's row estimate at the scan (catalog.RowEstimate, as the ivfflat_retrain
	// strategy estimates it), for the recommended IVFFlat lists: the metric, the Measurer and the
	// report all read it from here, and it is the count a retrain would size lists for.
	rows float64
}

// qualitySample bounds the entries the IVFFlat centroid quality is computed on.
const qualitySample = 1000

// scanStructure reads the pages of ix with fn (a page reading function chosen by
// detectPageReader), cfg.PageBatch per query and, with the heap pages an HNSW scan checks, at
// most cfg.Structure.MaxPagesPerSecond, in one read-only transaction bounded by
// cfg.Structure.Timeout, and analyses them. It returns nil without error for a partitioned
// table's parent index: it has no pages, and each partition's index is scanned on its own.
func scanStructure(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, fn string, cfg config.Exporter) (*structure, error) {
	if ix.Partitioned {
		return nil, nil
	}
	if fn == "" {
		return nil, fmt.Errorf("%s: index pages cannot be read on this target", ix)
	}
	var out structure
	batch := cfg.PageBatch
	err := readOnly(ctx, pool, cfg.Structure.Timeout, func(tx pgx.Tx) error {
		// One budget for the index pages and the heap pages the HNSW heap check reads.
		pacer := pagescan.NewPacer(cfg.Structure.MaxPagesPerSecond)
		r := pagescan.Paced(pagescan.NewSQLReader(tx, ix.OID, batch, fn), pacer)
		var err error
		if out.rows, _, err = catalog.RowEstimate(ctx, tx, ix.TableOID); err != nil {
			return fmt.Errorf("table rows: %w", err)
		}
		switch ix.Method {
		case "hnsw":
			rep, err := hnsw.Analyze(ctx, r, hnsw.Options{Heap: hnsw.PacedHeap(hnsw.SQLHeap(tx, ix), pacer), Batch: batch})
			if err != nil {
				return err
			}
			out.hnsw = rep
		case "ivfflat":
			kind, err := distanceKind(ix)
			if err != nil {
				return err
			}
			rep, err := ivfflat.Analyze(ctx, r, ivfflat.Options{Distance: kind, QualitySample: qualitySample, Batch: batch})
			if err != nil {
				return err
			}
			out.ivf = rep
		default:
			return fmt.Errorf("unknown access method %q", ix.Method)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: structure scan: %w", ix, err)
	}
	return &out, nil
}

// faultKindsOf returns the structural fault kinds a scan found at least once.
func faultKindsOf(s *structure) []string {
	var out []string
	for _, faults := range []map[string]int64{hnswFaults(s), ivfFaults(s)} {
		for k, n := range faults {
			if n > 0 {
				out = append(out, k)
			}
		}
	}
	return out
}

func hnswFaults(s *structure) map[string]int64 {
	if s == nil || s.hnsw == nil {
		return nil
	}
	return s.hnsw.Faults
}

func ivfFaults(s *structure) map[string]int64 {
	if s == nil || s.ivf == nil {
		return nil
	}
	return s.ivf.Faults
}
