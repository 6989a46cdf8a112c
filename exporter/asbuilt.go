package exporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

// An as-built baseline is what an index's current build looked like when vectorheal first
// measured it. pgvector's own builds are not perfect graphs (elements unreachable from the
// entry point, orphans; far more with inner product over vectors of unequal norms or a small
// m), so structure is judged against the index's own baseline, not an absolute threshold.
const (
	// basisBuild: measured with no deleted element and no dead heap TID since the build, so
	// the figures are the build's own.
	basisBuild = "build"
	// basisFirstSeen: first measured after churn. Decay is judged from that point on until a
	// rebuild gives the index a baseline of its own.
	basisFirstSeen = "first_seen"
)

// Keys of as-built figures. Structural ones are shares, so thresholds on them hold from 10k
// to 100M elements.
const (
	asBuiltConnectivity = "pgvector_hnsw_connectivity_ratio"
	asBuiltOrphanRatio  = "pgvector_hnsw_orphan_ratio"
	asBuiltOrphans      = "pgvector_hnsw_orphan_elements"
	asBuiltUnreachable  = "pgvector_hnsw_unreachable_elements"
	asBuiltLive         = "pgvector_hnsw_elements:live"
	asBuiltEntryQuality = "pgvector_hnsw_entry_point_quality_ratio"
	asBuiltFill0        = "pgvector_hnsw_neighbor_fill_ratio:0"
	asBuiltListCV       = "pgvector_ivfflat_list_size_cv"
	asBuiltEmptyLists   = "pgvector_ivfflat_empty_lists"
	asBuiltLayers       = "pgvector_hnsw_layers"
	asBuiltRecall       = "pgvector_recall_ratio"
	asBuiltRecallK      = "recall_k"
)

// asBuilt is the baseline of one build.
type asBuilt struct {
	Basis   string
	At      time.Time
	Figures map[string]float64
}

// hasStructure reports whether the baseline holds the structural figures.
func (a *asBuilt) hasStructure() bool {
	if a == nil {
		return false
	}
	_, hnsw := a.Figures[asBuiltConnectivity]
	_, ivf := a.Figures[asBuiltListCV]
	return hnsw || ivf
}

// hasRecall reports whether the baseline holds a recall figure.
func (a *asBuilt) hasRecall() bool {
	if a == nil {
		return false
	}
	_, ok := a.Figures[asBuiltRecall]
	return ok
}

// hnswBaseline returns the as-built figures of an HNSW structure report and their basis.
// The basis is "build" only when the pages show no trace of churn: no deleted or
// being-deleted element and, read exactly from the heap, no dead heap TID.
func hnswBaseline(s *structure) (map[string]float64, string) {
	r := s.hnsw
	f := map[string]float64{
		asBuiltConnectivity: r.ConnectivityRatio,
		asBuiltOrphans:      float64(r.Orphans),
		asBuiltUnreachable:  float64(r.Unreachable),
		asBuiltLive:         float64(r.ElementsLive),
		asBuiltEntryQuality: r.EntryPointQuality,
		asBuiltLayers:       float64(len(r.LayerElements)),
		asBuiltOrphanRatio:  0,
	}
	if r.ElementsLive > 0 {
		f[asBuiltOrphanRatio] = float64(r.Orphans) / float64(r.ElementsLive)
	}
	if len(r.NeighborFill) > 0 {
		f[asBuiltFill0] = r.NeighborFill[0]
	}
	basis := basisFirstSeen
	if r.ElementsDeleted == 0 && r.ElementsBeingDeleted == 0 && r.HeapTIDsExact && r.HeapTIDsDead == 0 {
		basis = basisBuild
	}
	return f, basis
}

// ivfBaseline returns the as-built figures of an IVFFlat structure report: the balance of its
// lists as k-means left them, which later inserts can only skew. The basis is "build" when
// the lists hold as many entries as the table is estimated to have rows (within 0.1 %, the
// estimate being the catalog's density times the table's blocks): no dead entry and nothing
// inserted since; else "first_seen".
func ivfBaseline(s *structure) (map[string]float64, string) {
	r := s.ivf
	f := map[string]float64{asBuiltListCV: r.ListSizeCV, asBuiltEmptyLists: float64(r.EmptyLists)}
	basis := basisFirstSeen
	if s.rows > 0 && math.Abs(float64(r.Entries)-s.rows) <= 1+s.rows/1000 {
		basis = basisBuild
	}
	return f, basis
}

// structureBaseline returns the as-built figures of a page scan of either method and their
// basis; nil for a scan without a report.
func structureBaseline(s *structure) (map[string]float64, string) {
	switch {
	case s.hnsw != nil:
		return hnswBaseline(s)
	case s.ivf != nil:
		return ivfBaseline(s)
	}
	return nil, ""
}

// baselines records and reads as-built baselines.
type baselines interface {
	// record adds figures to the baseline of build relfilenode of k (creating it with basis
	// when there is none) without replacing a figure already recorded, and returns the
	// baseline as stored.
	record(ctx context.Context, k buildKey, ix catalog.Index, relfilenode uint32, basis string, figures map[string]float64) (*asBuilt, error)
}

// memoryBaselines keeps baselines for the process's lifetime, for an exporter without a
// state store.
type memoryBaselines struct {
	mu sync.Mutex
	m  map[buildKey]map[uint32]*asBuilt
}

func newMemoryBaselines() *memoryBaselines {
	return &memoryBaselines{m: map[buildKey]map[uint32]*asBuilt{}}
}

func (b *memoryBaselines) record(_ context.Context, k buildKey, _ catalog.Index, relfilenode uint32, basis string, figures map[string]float64) (*asBuilt, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	byBuild, ok := b.m[k]
	if !ok {
		byBuild = map[uint32]*asBuilt{}
		b.m[k] = byBuild
	}
	// Older builds of the index are no longer of use.
	for rfn := range byBuild {
		if rfn != relfilenode {
			delete(byBuild, rfn)
		}
	}
	cur, ok := byBuild[relfilenode]
	if !ok {
		cur = &asBuilt{Basis: basis, At: time.Now(), Figures: map[string]float64{}}
		byBuild[relfilenode] = cur
	}
	if _, structural := figures[asBuiltConnectivity]; structural && !cur.hasStructure() {
		cur.Basis = basis // the pages decide the basis, not an earlier recall-only record
	}
	for name, v := range figures {
		if _, had := cur.Figures[name]; !had {
			cur.Figures[name] = v
		}
	}
	out := *cur
	out.Figures = maps.Clone(cur.Figures)
	return &out, nil
}

// storeBaselines keeps baselines in the state store's index_as_built table, shared by
// replicas and kept across restarts.
type storeBaselines struct{ pool *pgxpool.Pool }

func (b *storeBaselines) record(ctx context.Context, k buildKey, ix catalog.Index, relfilenode uint32, basis string, figures map[string]float64) (*asBuilt, error) {
	js, err := json.Marshal(figures)
	if err != nil {
		return nil, fmt.Errorf("encode as-built figures: %w", err)
	}
	// new || old: jsonb concatenation keeps the right operand's value for a key both hold, so
	// a figure recorded first (by this or another replica) is never replaced.
	var got asBuilt
	var raw []byte
	err = b.pool.QueryRow(ctx, `INSERT INTO index_as_built
		(target, datname, index_oid, relfilenode, schemaname, indexrelname, basis, recorded_at, figures)
		VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8)
		ON CONFLICT (target, datname, index_oid, relfilenode) DO UPDATE
		  SET figures = EXCLUDED.figures || index_as_built.figures,
		      -- The pages decide the basis, not an earlier recall-only record.
		      basis = CASE WHEN EXCLUDED.figures ? $9 AND NOT index_as_built.figures ? $9
		                   THEN EXCLUDED.basis ELSE index_as_built.basis END,
		      schemaname = EXCLUDED.schemaname, indexrelname = EXCLUDED.indexrelname
		RETURNING basis, recorded_at, figures`,
		k.target, k.datname, k.oid, relfilenode, ix.Schema, ix.Name, basis, js, asBuiltConnectivity).Scan(&got.Basis, &got.At, &raw)
	if err != nil {
		return nil, fmt.Errorf("record as-built figures: %w", err)
	}
	if err := json.Unmarshal(raw, &got.Figures); err != nil {
		return nil, fmt.Errorf("decode as-built figures: %w", err)
	}
	// Baselines of builds that were replaced (a new relfilenode, or a new OID under the same
	// name after REINDEX CONCURRENTLY) are history no figure reads any more.
	if _, err := b.pool.Exec(ctx, `DELETE FROM index_as_built
		WHERE target = $1 AND datname = $2 AND (index_oid, relfilenode) <> ($3, $4)
		  AND (index_oid = $3 OR (schemaname = $5 AND indexrelname = $6))`,
		k.target, k.datname, k.oid, relfilenode, ix.Schema, ix.Name); err != nil {
		return nil, fmt.Errorf("forget replaced as-built figures: %w", err)
	}
	return &got, nil
}

// lookupAsBuilt returns the newest baseline recorded for the index called schema.name in
// datname (of target when it is not empty). Looking it up by name keeps the baseline of the
// build a concurrent rebuild replaces (it gets a new OID) until the new build is measured.
func lookupAsBuilt(ctx context.Context, pool *pgxpool.Pool, target, datname, schema, name string) (*asBuilt, error) {
	var got asBuilt
	var raw []byte
	err := pool.QueryRow(ctx, `SELECT basis, recorded_at, figures FROM index_as_built
		WHERE datname = $1 AND schemaname = $2 AND indexrelname = $3 AND ($4 = '' OR target = $4)
		ORDER BY recorded_at DESC LIMIT 1`, datname, schema, name, target).Scan(&got.Basis, &got.At, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read as-built figures: %w", err)
	}
	if err := json.Unmarshal(raw, &got.Figures); err != nil {
		return nil, fmt.Errorf("decode as-built figures: %w", err)
	}
	return &got, nil
}

// noteStructureBaseline records the as-built structure of st's current build from scan s
// when none is recorded yet, and returns the baseline to keep (nil when there is nothing new).
func (e *Exporter) noteStructureBaseline(ctx context.Context, t *target, ix catalog.Index, build buildInfo, have *asBuilt, s *structure) *asBuilt {
	if s == nil || build.relfilenode == 0 || have.hasStructure() {
		return nil
	}
	figures, basis := structureBaseline(s)
	if figures == nil {
		return nil
	}
	got, err := e.baselines.record(ctx, buildKey{t.Name, ix.Datname, ix.OID}, ix, build.relfilenode, basis, figures)
	if err != nil {
		t.logger.Warn("as-built baseline", "index", ix.String(), "err", err)
		return nil
	}
	if have == nil {
		t.logger.Info("as-built baseline recorded", "index", ix.String(), "basis", got.Basis, "figures", got.Figures)
	}
	return got
}

// noteRecallBaseline records the first recall measured on st's current build.
func (e *Exporter) noteRecallBaseline(ctx context.Context, t *target, ix catalog.Index, build buildInfo, have *asBuilt, r *recallResult) *asBuilt {
	if r == nil || build.relfilenode == 0 || have.hasRecall() {
		return nil
	}
	// Only the pages tell whether the build has seen churn; until a structure reading is
	// recorded (or where pages cannot be read) the baseline does not claim to be the build's.
	basis := basisFirstSeen
	if have != nil {
		basis = have.Basis
	}
	got, err := e.baselines.record(ctx, buildKey{t.Name, ix.Datname, ix.OID}, ix, build.relfilenode, basis,
		map[string]float64{asBuiltRecall: r.ratio, asBuiltRecallK: float64(r.k)})
	if err != nil {
		t.logger.Warn("as-built baseline", "index", ix.String(), "err", err)
		return nil
	}
	return got
}

// AsBuilt returns the as-built value of figure for the index named like ix: the value its
// build had when the exporter first measured it (see docs/metrics.md). ok is false when no
// baseline holds the figure, e.g. without a state store or before the first measurement.
func (m *Measurer) AsBuilt(ctx context.Context, _ *pgxpool.Pool, ix catalog.Index, figure string) (float64, bool, error) {
	if m.state == nil {
		return 0, false, nil
	}
	a, err := lookupAsBuilt(ctx, m.state, "", ix.Datname, ix.Schema, ix.Name)
	if err != nil || a == nil {
		return 0, false, err
	}
	v, ok := a.Figures[figure]
	return v, ok, nil
}
