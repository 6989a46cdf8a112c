package exporter

import (
	"context"
	"errors"
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

// errRewritten says that the index got a new file node while it was scanned (REINDEX,
// VACUUM FULL, TRUNCATE): the pages read belong to two relations.
var errRewritten = errors.New("index rewritten during the scan")

// scanStructure reads the pages of ix with reader (chosen by detectPageReader), cfg.PageBatch per query and, with the heap pages an HNSW scan checks, at
// most cfg.Structure.MaxPagesPerSecond (adapted to the application's latency with
// cfg.Structure.Adaptive, see budget.go), in one read-only transaction bounded by
// cfg.Structure.Timeout, and analyses them. It returns nil without error for a partitioned
// table's parent index: it has no pages, and each partition's index is scanned on its own.
//
// The scan is fenced (pagescan.Fence): a fault counts only when the pages that show it are
// one state of the index; the analysis reads the others again in the same transaction. An
// index rewritten while it was scanned is scanned once more.
func scanStructure(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, reader pageReader, cfg config.Exporter) (*structure, error) {
	return scanStructureBudgeted(ctx, pool, ix, reader, cfg, nil)
}

// scanStructureBudgeted is scanStructure reporting its page budget to budget (nil: nowhere).
// With exporter.structure.adaptive, the application's latency is measured first, before the
// scan's transaction begins (measureBaseline), so that the baseline holds no scan of this one.
func scanStructureBudgeted(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, reader pageReader, cfg config.Exporter, budget *scanBudget) (*structure, error) {
	if ix.Partitioned {
		return nil, nil
	}
	if reader.index == "" {
		return nil, fmt.Errorf("%s: index pages cannot be read on this target", ix)
	}
	var baseline float64
	if sc := cfg.Structure; sc.Adaptive && sc.MaxPagesPerSecond > 0 {
		var why string
		var err error
		if baseline, why, err = measureBaseline(ctx, pool, sc.AdjustInterval, cfg.StatisticsTimeout); err != nil {
			return nil, fmt.Errorf("%s: application latency before the scan: %w", ix, err)
		}
		budget.signal(why)
	}
	out, err := scanOnce(ctx, pool, ix, reader, cfg, baseline, budget)
	if errors.Is(err, errRewritten) {
		out, err = scanOnce(ctx, pool, ix, reader, cfg, baseline, budget)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: structure scan: %w", ix, err)
	}
	return out, nil
}

// scanOnce is one fenced scan of scanStructure.
func scanOnce(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, reader pageReader, cfg config.Exporter, baseline float64, budget *scanBudget) (*structure, error) {
	var out structure
	batch := cfg.PageBatch
	err := readOnly(ctx, pool, cfg.Structure.Timeout, func(tx pgx.Tx) error {
		fence, node, err := pagescan.ReadFence(ctx, tx, ix.OID)
		if err != nil {
			return err
		}
		// Every new fence also checks that the scan still reads the relation it began on.
		refence := func(ctx context.Context) (*pagescan.Fence, error) {
			f, n, err := pagescan.ReadFence(ctx, tx, ix.OID)
			if err == nil && n != node {
				err = errRewritten
			}
			return &f, err
		}
		// One budget for the index pages and the heap pages the HNSW heap check reads.
		pacer, err := newScanPacer(ctx, tx, ix, cfg.Structure, baseline, budget)
		if err != nil {
			return fmt.Errorf("page budget: %w", err)
		}
		r := pagescan.Paced(pagescan.NewSQLReader(tx, ix.OID, batch, reader.index), pacer)
		if out.rows, _, err = catalog.RowEstimate(ctx, tx, ix.TableOID); err != nil {
			return fmt.Errorf("table rows: %w", err)
		}
		src := pageSource{tx: tx, r: r, heapFn: reader.heap, pacer: pacer, batch: batch, fence: &fence, refence: refence}
		if err := analyzeStructure(ctx, src, ix, &out); err != nil {
			return err
		}
		_, err = refence(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// pageSource is what one fenced scan reads through: its transaction, the index's pages
// within the page budget, and the fences.
type pageSource struct {
	tx pgx.Tx
	r  pagescan.Reader
	// heapFn reads the heap pages HOT chains are followed on; "" when the role cannot.
	heapFn  string
	pacer   *pagescan.Pacer
	batch   int
	fence   *pagescan.Fence
	refence func(context.Context) (*pagescan.Fence, error)
}

// analyzeStructure runs the analysis of ix's method on the pages of src into out.
func analyzeStructure(ctx context.Context, src pageSource, ix catalog.Index, out *structure) error {
	switch ix.Method {
	case "hnsw":
		// Without a heap reader, get_raw_page's checker finds the role is not superuser and
		// reports an upper bound (hnsw.ErrHeapInexact) without reading a heap page.
		heapFn := src.heapFn
		if heapFn == "" {
			heapFn = pagescan.RawPageFunc
		}
		rep, err := hnsw.Analyze(ctx, src.r, hnsw.Options{Heap: hnsw.PacedHeap(hnsw.SQLHeapFunc(src.tx, ix, heapFn), src.pacer),
			Batch: src.batch, Fence: src.fence, Refence: src.refence})
		if err != nil {
			return err
		}
		out.hnsw = rep
	case "ivfflat":
		kind, err := distanceKind(ix)
		if err != nil {
			return err
		}
		rep, err := ivfflat.Analyze(ctx, src.r, ivfflat.Options{Distance: kind, QualitySample: qualitySample,
			Batch: src.batch, Fence: src.fence})
		if err != nil {
			return err
		}
		out.ivf = rep
	default:
		return fmt.Errorf("unknown access method %q", ix.Method)
	}
	return nil
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
