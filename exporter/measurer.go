package exporter

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
)

// Measurer re-measures one figure of one index directly in its database, for the repair
// engine's before/after validation (it implements remediation/strategy.Measurer). Each call
// measures afresh; nothing is cached, so a figure read right after a repair sees the repair.
type Measurer struct {
	cfg config.Exporter
}

// NewMeasurer returns a Measurer that uses cfg's page batch, recall sample (queries, k) and
// check timeouts.
func NewMeasurer(cfg config.Exporter) *Measurer { return &Measurer{cfg: cfg} }

// measured describes how one figure is obtained.
type measured struct {
	source string // "hnsw", "ivfflat", "probe" or "stats"
	get    func(s *structure, r *recallResult, st *indexStats, ix catalog.Index) float64
}

func hnswFigure(f func(*structure) float64) measured {
	return measured{source: "hnsw", get: func(s *structure, _ *recallResult, _ *indexStats, _ catalog.Index) float64 { return f(s) }}
}

// exactHeap returns n, or NaN when the heap could not be read (no superuser): NaN meets no
// validation bound, so a repair is not judged on an upper bound.
func exactHeap(s *structure, n int64) float64 {
	if !s.hnsw.HeapTIDsExact {
		return math.NaN()
	}
	return float64(n)
}

func ivfFigure(f func(*structure) float64) measured {
	return measured{source: "ivfflat", get: func(s *structure, _ *recallResult, _ *indexStats, _ catalog.Index) float64 { return f(s) }}
}

func statFigure(f func(*indexStats, catalog.Index) float64) measured {
	return measured{source: "stats", get: func(_ *structure, _ *recallResult, st *indexStats, ix catalog.Index) float64 { return f(st, ix) }}
}

// figures maps each figure name to how it is measured.
func figures() map[string]measured {
	return map[string]measured{
		"pgvector_hnsw_elements:live":             hnswFigure(func(s *structure) float64 { return float64(s.hnsw.ElementsLive) }),
		"pgvector_hnsw_elements:being_deleted":    hnswFigure(func(s *structure) float64 { return float64(s.hnsw.ElementsBeingDeleted) }),
		"pgvector_hnsw_elements:deleted":          hnswFigure(func(s *structure) float64 { return float64(s.hnsw.ElementsDeleted) }),
		"pgvector_hnsw_heap_tids:live":            hnswFigure(func(s *structure) float64 { return exactHeap(s, s.hnsw.HeapTIDsLive) }),
		"pgvector_hnsw_heap_tids:dead":            hnswFigure(func(s *structure) float64 { return exactHeap(s, s.hnsw.HeapTIDsDead) }),
		"pgvector_hnsw_unreachable_elements":      hnswFigure(func(s *structure) float64 { return float64(s.hnsw.Unreachable) }),
		"pgvector_hnsw_connectivity_ratio":        hnswFigure(func(s *structure) float64 { return s.hnsw.ConnectivityRatio }),
		"pgvector_hnsw_orphan_elements":           hnswFigure(func(s *structure) float64 { return float64(s.hnsw.Orphans) }),
		"pgvector_hnsw_entry_point_quality_ratio": hnswFigure(func(s *structure) float64 { return s.hnsw.EntryPointQuality }),
		"pgvector_index_fragmentation_ratio":      hnswFigure(func(s *structure) float64 { return s.hnsw.FragmentationRatio }),
		"pgvector_ivfflat_lists":                  ivfFigure(func(s *structure) float64 { return float64(s.ivf.Lists) }),
		"pgvector_ivfflat_list_size_cv":           ivfFigure(func(s *structure) float64 { return s.ivf.ListSizeCV }),
		"pgvector_ivfflat_empty_lists":            ivfFigure(func(s *structure) float64 { return float64(s.ivf.EmptyLists) }),
		"pgvector_ivfflat_centroid_quality_ratio": ivfFigure(func(s *structure) float64 { return s.ivf.CentroidQuality }),
		"pgvector_ivfflat_recommended_lists":      ivfFigure(func(s *structure) float64 { return recommendedLists(s.rows) }),
		"pgvector_index_structural_faults": {source: "structure", get: func(s *structure, _ *recallResult, _ *indexStats, _ catalog.Index) float64 {
			var n int64
			if s.hnsw != nil {
				for _, c := range s.hnsw.Faults {
					n += c
				}
			}
			if s.ivf != nil {
				for _, c := range s.ivf.Faults {
					n += c
				}
			}
			return float64(n)
		}},
		"pgvector_recall_ratio":      {source: "probe", get: func(_ *structure, r *recallResult, _ *indexStats, _ catalog.Index) float64 { return r.ratio }},
		"pgvector_probe_index_used":  {source: "probe", get: func(_ *structure, r *recallResult, _ *indexStats, _ catalog.Index) float64 { return b2f(r.indexUsed) }},
		"pgvector_table_dead_tuples": statFigure(func(st *indexStats, _ catalog.Index) float64 { return st.deadTup }),
		"pgvector_table_live_tuples": statFigure(func(st *indexStats, _ catalog.Index) float64 { return st.liveTup }),
		"pgvector_index_size_bytes":  statFigure(func(st *indexStats, _ catalog.Index) float64 { return st.sizeBytes }),
		"pgvector_index_valid":       statFigure(func(_ *indexStats, ix catalog.Index) float64 { return b2f(ix.Valid) }),
	}
}

// Figures lists the figure names Measure understands, sorted.
func (m *Measurer) Figures() []string {
	var out []string
	for f := range figures() {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// Measure returns the current value of figure for the index named like ix (looked up again in
// the catalog by schema and name, since a concurrent rebuild gives the index a new OID).
func (m *Measurer) Measure(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figure string) (float64, error) {
	f, ok := figures()[figure]
	if !ok {
		return 0, fmt.Errorf("unknown figure %q (known: %s)", figure, strings.Join(m.Figures(), ", "))
	}
	cur, err := catalog.Resolve(ctx, pool, ix.Schema, ix.Name)
	if err != nil {
		return 0, fmt.Errorf("measure %s: %w", figure, err)
	}
	switch f.source {
	case "hnsw", "ivfflat", "structure":
		if f.source != "structure" && cur.Method != f.source {
			return 0, fmt.Errorf("measure %s: %s is an %s index", figure, cur, cur.Method)
		}
		fn, why, err := detectPageReader(ctx, pool)
		if err != nil {
			return 0, fmt.Errorf("measure %s: %w", figure, err)
		}
		if fn == "" {
			return 0, fmt.Errorf("measure %s: index pages cannot be read: %s", figure, why)
		}
		s, err := scanStructure(ctx, pool, cur, fn, m.cfg.PageBatch, m.cfg.Structure.Timeout)
		if err != nil {
			return 0, fmt.Errorf("measure %s: %w", figure, err)
		}
		if s == nil {
			return 0, fmt.Errorf("measure %s: %s is a partitioned table's index, without pages of its own: measure its partitions' indexes", figure, cur)
		}
		return f.get(s, nil, nil, cur), nil
	case "probe":
		r, err := probe(ctx, pool, cur, m.cfg.Recall.Queries, m.cfg.Recall.K, m.cfg.Recall.Timeout)
		if err != nil {
			return 0, fmt.Errorf("measure %s: %w", figure, err)
		}
		if r == nil {
			return 0, fmt.Errorf("measure %s: table %s has no vector to probe with", figure, cur.QuotedTable())
		}
		if figure == "pgvector_recall_ratio" && !r.indexUsed {
			return 0, fmt.Errorf("measure %s: the planner does not use %s for the probe's search, so no recall is its own", figure, cur)
		}
		return f.get(nil, r, nil, cur), nil
	}
	st, err := statsOf(ctx, pool, cur, m.cfg.StatisticsTimeout)
	if err != nil {
		return 0, fmt.Errorf("measure %s: %w", figure, err)
	}
	return f.get(nil, nil, st, cur), nil
}

// statsOf reads the cheap statistics of one index.
func statsOf(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, timeout time.Duration) (*indexStats, error) {
	var ts *targetStats
	err := readOnly(ctx, pool, timeout, func(tx pgx.Tx) error {
		var err error
		ts, err = readStats(ctx, tx, []uint32{ix.OID}, []uint32{ix.TableOID})
		return err
	})
	if err != nil {
		return nil, err
	}
	st, ok := ts.indexes[ix.OID]
	if !ok {
		return nil, fmt.Errorf("%s: no statistics", ix)
	}
	return st, nil
}
