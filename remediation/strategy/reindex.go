package strategy

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

// Reindex rebuilds an index with REINDEX INDEX CONCURRENTLY.
//
// Why REINDEX CONCURRENTLY rather than a hand-made build-new/validate/swap: the server does the
// same three steps itself (build <name>_ccnew, validate it against the table, swap the two in
// the catalog and drop the old one) but keeps the index's name, OID-dependent objects
// (constraints, comments, statistics targets, replica identity) and dependent rows in one
// catalog swap that a client cannot do as atomically. Its only weakness, an INVALID _ccnew left
// behind when it fails, is handled here: the leftover is dropped and the original, untouched
// until the swap, keeps serving.
type Reindex struct{ opts Options }

// ReindexConfig are the parameters of a reindex step.
type ReindexConfig struct {
	MaxMaintenanceWorkMem int64 // bytes
	Figures               []string
}

// maxMaintenanceWorkMemParam caps the memory a rebuild raises maintenance_work_mem to.
var maxMaintenanceWorkMemParam = Param{Name: "max_maintenance_work_mem", Type: TypeSize, Default: "1GB", Min: "1MB", Max: "1TB",
	Doc: "Cap of the memory raised for the build; the session's maintenance_work_mem is raised up to it so the HNSW graph fits."}

// Spec implements Strategy.
func (*Reindex) Spec() Spec {
	return Spec{
		Name:         "reindex",
		Description:  "Rebuild the index with REINDEX INDEX CONCURRENTLY, reads and writes continue; a failed build's INVALID leftover is dropped.",
		Capabilities: []Capability{RecordsReadingAfter, CopiesVisibleRows},
		Params:       []Param{maxMaintenanceWorkMemParam, figuresParam},
		Figures:      withIndexFigures(),
	}
}

// Decode implements Strategy.
func (*Reindex) Decode(v Values) (ReindexConfig, error) {
	return ReindexConfig{MaxMaintenanceWorkMem: v.Size(maxMaintenanceWorkMemParam.Name), Figures: v.Figures()}, nil
}

type reindexPlan struct {
	statements []string
	build      buildPlan
	notes      string
	// leftoverOf is set when ix itself is the INVALID _ccnew/_ccold leftover of a failed
	// REINDEX CONCURRENTLY of that (valid) index: rebuilding it would make a duplicate of the
	// index, so it is dropped instead.
	leftoverOf string
}

// reindexWhat names a rebuild of ix in guard messages.
func reindexWhat(ix catalog.Index) string { return "REINDEX INDEX CONCURRENTLY " + ix.QuotedIndex() }

func (r *Reindex) plan(ctx context.Context, env Env, ix catalog.Index, c ReindexConfig) (reindexPlan, error) {
	var pl reindexPlan
	var err error
	if pl.leftoverOf, err = leftoverOf(ctx, env.Pool, ix); err != nil {
		return reindexPlan{}, err
	}
	if pl.leftoverOf != "" {
		pl.statements = []string{"DROP INDEX CONCURRENTLY IF EXISTS " + ix.QuotedIndex()}
		pl.notes = "INVALID leftover of a failed REINDEX CONCURRENTLY of " + pl.leftoverOf + ": dropped, not rebuilt"
		return pl, nil
	}
	memory, err := buildMemory(ctx, env, ix, ix.Lists)
	if err != nil {
		return reindexPlan{}, err
	}
	// The new copy exists next to the old one until the swap.
	pl.build, err = planBuild(ctx, env, ix, reindexWhat(ix), memory, c.MaxMaintenanceWorkMem, ix.SizeBytes)
	if err != nil {
		return reindexPlan{}, err
	}
	pl.notes = pl.build.note()
	pl.statements = append(pl.build.set(), reindexWhat(ix))
	return pl, nil
}

// buildMemory is the memory a build of ix wants: for HNSW the whole graph (hnswBuildMemory),
// for IVFFlat the k-means sample of lists lists (pgvector samples 50 rows per list).
func buildMemory(ctx context.Context, env Env, ix catalog.Index, lists int) (int64, error) {
	if ix.Method != "hnsw" {
		return int64(max(lists, 1)) * 50 * int64(4*max(ix.Dimensions, 1)+16), nil
	}
	rows, err := tableRows(ctx, env.Pool, ix)
	if err != nil {
		return 0, err
	}
	return hnswBuildMemory(ix, rows), nil
}

// Plan implements Strategy.
func (r *Reindex) Plan(ctx context.Context, env Env, ix catalog.Index, c ReindexConfig) (Impact, error) {
	pl, err := r.plan(ctx, env, ix, c)
	if err != nil {
		return Impact{}, err
	}
	disk := ix.SizeBytes // the new copy exists next to the old one until the swap
	if pl.leftoverOf != "" {
		disk = 0
	}
	return Impact{
		LockLevel:       "SHARE UPDATE EXCLUSIVE",
		IndexBytes:      ix.SizeBytes,
		DiskBytesNeeded: disk,
		Statements:      pl.statements,
		Notes:           pl.notes,
	}, nil
}

// Run implements Strategy.
func (r *Reindex) Run(ctx context.Context, env Env, ix catalog.Index, c ReindexConfig) (Outcome, error) {
	pl, err := r.plan(ctx, env, ix, c)
	if err != nil {
		return Outcome{}, err
	}
	if pl.leftoverOf != "" {
		return r.dropLeftover(ctx, env, ix, pl)
	}
	figures := chooseFigures(env, c.Figures, r.Spec().DefaultFigures(ix.Method))
	out := Outcome{Before: figuresBefore(ctx, env, ix, figures)}
	stmts, after, err := reindexConcurrently(ctx, r.opts, env, ix, pl.build)
	out.Statements = stmts
	if err != nil {
		return out, err
	}
	out.After = measureFigures(ctx, env, env.Pool, after, figures)
	return out, nil
}

// dropLeftover drops ix, an INVALID leftover of a failed REINDEX CONCURRENTLY.
func (r *Reindex) dropLeftover(ctx context.Context, env Env, ix catalog.Index, pl reindexPlan) (Outcome, error) {
	conn, err := openSession(ctx, env.Pool)
	if err != nil {
		return Outcome{}, err
	}
	defer closeSession(conn)
	// While a REINDEX CONCURRENTLY runs, its _ccnew index is INVALID too: that one is not a
	// leftover yet, and dropping it would wait on, then break, a healthy rebuild.
	if err := checkNoBuild(ctx, conn, ix); err != nil {
		return Outcome{}, err
	}
	logger(env).Info("dropping leftover instead of rebuilding it", slog.String("index", ix.String()), slog.String("leftover_of", pl.leftoverOf))
	stmts, err := dropIndexes(ctx, conn, env, []relIndex{{OID: ix.OID, Schema: ix.Schema, Name: ix.Name}})
	return Outcome{Statements: stmts}, err
}

// Rollback implements Strategy. A rebuild has nothing to undo: the index has the same
// definition, and a failed one is cleaned up by Run.
func (*Reindex) Rollback(context.Context, Env, catalog.Index, ReindexConfig, json.RawMessage) error {
	return nil
}

// withIndexFigures returns, by method, the structural figures a rebuild or vacuum should move,
// after the figures common given.
func withIndexFigures(common ...string) map[string][]string {
	return map[string][]string{
		"":        append(common, "pgvector_index_size_bytes", "pgvector_recall_ratio"),
		"hnsw":    {"pgvector_hnsw_heap_tids:dead", "pgvector_hnsw_orphan_elements", "pgvector_hnsw_unreachable_elements"},
		"ivfflat": {"pgvector_ivfflat_list_size_cv", "pgvector_ivfflat_empty_lists"},
	}
}
