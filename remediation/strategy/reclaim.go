package strategy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/measure"
)

// Reclaim removes the entries of deleted rows from an index by whichever repair that heals
// costs the least on this index: VACUUM, or a rebuild followed by VACUUM (REINDEX INDEX
// CONCURRENTLY for HNSW, a retrain for IVFFlat). It decides per index at plan time, from the
// index's size, its measured dead share, how long earlier reclaims of it took, the pgvector
// installed (HNSW VACUUM is refused below 0.8.4) and the disk guard (ChooseRepair, cost.go).
//
// Why a strategy of its own rather than vacuum then reindex as runbook steps: the order that
// is cheap on a lightly churned graph is the expensive one on a heavily churned graph (VACUUM
// of 200k × 128-d with 20 % deleted took 15× a rebuild), and a step that fails over to the next
// has already paid for the first.
type Reclaim struct {
	opts Options
}

// ReclaimConfig are the parameters of a reclaim step.
type ReclaimConfig struct {
	Need                  Need
	Analyze               bool
	MaxMaintenanceWorkMem int64 // bytes
	Figures               []string
}

// CostRecord is the estimate a reclaim step chose its path by, as its impact records it.
// Later reclaims of the index read it back from history to scale the model.
type CostRecord struct {
	Need            Need       `json:"need"`
	Path            Path       `json:"path"`
	IndexBytes      int64      `json:"index_bytes"`
	Elements        int64      `json:"elements"`
	DeadShare       float64    `json:"dead_share"`
	DeadShareSource string     `json:"dead_share_source"` // the figures or statistics it comes from
	PgvectorVersion string     `json:"pgvector_version"`  // "" when it could not be read
	Estimates       []Estimate `json:"estimates"`
	Reason          string     `json:"reason"`
}

// Spec implements Strategy.
func (*Reclaim) Spec() Spec {
	return Spec{
		Name: "reclaim",
		Description: "Remove deleted rows from the index by the cheaper repair that heals on this index — VACUUM, or REINDEX INDEX CONCURRENTLY " +
			"(an IVFFlat retrain) then VACUUM — chosen from its size, dead share, history and the pgvector version; the impact shows the estimate.",
		Capabilities: []Capability{RecordsReadingAfter, RemovesDeadRows},
		Params: []Param{
			{Name: "need", Type: TypeEnum, Enum: []string{string(NeedDeadEntries), string(NeedSpace)}, Default: string(NeedDeadEntries),
				Doc: "What must be achieved: dead_entries (VACUUM or a rebuild heal) or space (VACUUM keeps the space for reuse, so only a rebuild heals)."},
			{Name: "analyze", Type: TypeBool, Default: "true", Doc: "Also ANALYZE in the VACUUM."},
			maxMaintenanceWorkMemParam,
			figuresParam,
		},
		Figures: withIndexFigures("pgvector_table_dead_tuples"),
	}
}

// Decode implements Strategy.
func (*Reclaim) Decode(v Values) (ReclaimConfig, error) {
	return ReclaimConfig{Need: Need(v.String("need")), Analyze: v.Bool("analyze"),
		MaxMaintenanceWorkMem: v.Size(maxMaintenanceWorkMemParam.Name), Figures: v.Figures()}, nil
}

// estimate implements estimator: the choice on an index described rather than measured.
func (*Reclaim) estimate(c ReclaimConfig, in CostInput) (Choice, error) {
	in.Need = c.Need
	return ChooseRepair(in)
}

// reclaimPlan is the chosen path with what it runs.
type reclaimPlan struct {
	cost   CostRecord
	choice Choice
	build  buildPlan // of the rebuild, when that path is chosen
	lists  int       // IVFFlat retrain: lists of the new index
	vacuum string
	stmts  []string
	notes  string
}

// plan chooses the path from a reading of the index that holds the dead share's figures
// (deadShareFigures), taken by the caller so that Run's record of the figures before shares it.
func (r *Reclaim) plan(ctx context.Context, env Env, ix catalog.Index, c ReclaimConfig, reading measure.Reading) (reclaimPlan, error) {
	pl := reclaimPlan{vacuum: vacuumStatement(ix, VacuumConfig{Analyze: c.Analyze})}
	in := CostInput{Method: ix.Method, SizeBytes: ix.SizeBytes, M: ix.M, Need: c.Need}
	var err error
	in.Elements, in.DeadShare, pl.cost.DeadShareSource, err = deadShare(ctx, env, ix, reading)
	if err != nil {
		return reclaimPlan{}, err
	}
	in.History = reclaimHistory(ctx, env)
	if n, err := reading.Get(duplicates); err == nil {
		in.DuplicateNeighbors = int64(n)
	}

	// The rebuild's settings and disk guard come first: a rebuild that does not fit is a
	// closed path for the choice, not an error, while VACUUM may still heal.
	what := reindexWhat(ix)
	if ix.Method == "ivfflat" {
		rows, err := tableRows(ctx, env.Pool, ix)
		if err != nil {
			return reclaimPlan{}, err
		}
		pl.lists = measure.RecommendedLists(rows)
		what = fmt.Sprintf("retrain of %s (lists = %d)", ix.QuotedIndex(), pl.lists)
	}
	memory, err := buildMemory(ctx, env, ix, max(pl.lists, ix.Lists))
	if err != nil {
		return reclaimPlan{}, err
	}
	pl.build, err = planBuild(ctx, env, ix, what, memory, c.MaxMaintenanceWorkMem, ix.SizeBytes)
	if se := (*SpaceError)(nil); errors.As(err, &se) {
		in.RebuildRefused, err = se.Error(), nil
	}
	if err != nil {
		return reclaimPlan{}, err
	}
	in.PgvectorVersion = pl.build.version

	pl.choice, err = ChooseRepair(in)
	pl.cost = CostRecord{Need: c.Need, Path: pl.choice.Path, IndexBytes: ix.SizeBytes, Elements: in.Elements, DeadShare: in.DeadShare,
		DeadShareSource: pl.cost.DeadShareSource, PgvectorVersion: in.PgvectorVersion, Estimates: pl.choice.Estimates, Reason: pl.choice.Reason}
	if err != nil {
		return pl, fmt.Errorf("reclaim %s: %w", ix.QuotedIndex(), err)
	}
	switch pl.choice.Path {
	case PathVacuum:
		pl.stmts = []string{pl.vacuum}
		pl.notes = "chose vacuum: " + pl.choice.Reason + "; reads and writes continue"
	default:
		if ix.Method == "ivfflat" {
			pl.stmts = append(pl.build.set(), fmt.Sprintf("-- retrain %s with lists = %d (ivfflat_retrain's build, validation and swap)", ix.QuotedIndex(), pl.lists))
		} else {
			pl.stmts = append(pl.build.set(), what)
		}
		pl.stmts = append(pl.stmts, pl.vacuum)
		pl.notes = fmt.Sprintf("chose %s: %s; build: %s", pl.choice.Path, pl.choice.Reason, pl.build.note())
	}
	return pl, nil
}

// readFigures measures figures of ix before the step acts, in one reading per source, taking
// those env.Before holds from it.
func readFigures(ctx context.Context, env Env, ix catalog.Index, figures []string) measure.Reading {
	if env.Measure == nil || len(figures) == 0 {
		return nil
	}
	return WithReading(env.Measure, env.Before).Read(ctx, env.Pool, ix, figures...)
}

const (
	deadTIDs   = "pgvector_hnsw_heap_tids:dead"
	liveTIDs   = "pgvector_hnsw_heap_tids:live"
	duplicates = "pgvector_hnsw_duplicate_neighbor_elements"
)

// deadShareFigures are the figures the dead share of an index of method is measured from.
func deadShareFigures(method string) []string {
	if method == "hnsw" {
		return []string{deadTIDs, liveTIDs, duplicates}
	}
	return nil
}

// deadShare is the share of the index's entries whose rows were deleted: for HNSW from its
// heap TIDs in reading, read from the pages (the figures validation uses); otherwise, or when
// the pages cannot be read, from the table's statistics, and the source says so.
func deadShare(ctx context.Context, env Env, ix catalog.Index, reading measure.Reading) (elements int64, share float64, source string, err error) {
	if ix.Method == "hnsw" && env.Measure != nil {
		dead, derr := reading.Get(deadTIDs)
		live, lerr := reading.Get(liveTIDs)
		if derr == nil && lerr == nil && dead+live > 0 {
			return int64(dead + live), dead / (dead + live), "pgvector_hnsw_heap_tids (measured)", nil
		}
		if err := errors.Join(derr, lerr); err != nil {
			logger(env).Warn("dead share not measured, using table statistics", slog.String("index", ix.String()), slog.Any("err", err))
		}
	}
	var live, dead int64
	err = env.Pool.QueryRow(ctx, `SELECT coalesce(n_live_tup, 0), coalesce(n_dead_tup, 0) FROM pg_stat_user_tables WHERE relid = $1`,
		ix.TableOID).Scan(&live, &dead)
	if err != nil {
		return 0, 0, "", fmt.Errorf("dead rows of %s: %w", ix.QuotedTable(), err)
	}
	if live+dead == 0 {
		return 0, 0, "pg_stat_user_tables (estimated)", nil
	}
	return live + dead, float64(dead) / float64(live+dead), "pg_stat_user_tables (estimated)", nil
}

// union is a followed by the names of b it lacks.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, n := range b {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// reclaimHistory reads the earlier reclaims of the index from history: how long each path
// took at what size and dead share. Steps without a cost record tell the model nothing.
func reclaimHistory(ctx context.Context, env Env) CostHistory {
	var h CostHistory
	if env.History == nil {
		return h
	}
	steps, err := env.History.Steps(ctx, "reclaim", 20)
	if err != nil {
		logger(env).Warn("reclaim history not read: estimating from the default rates", slog.Any("err", err))
		return h
	}
	for _, s := range steps {
		c := s.Impact.Cost
		if c == nil || s.Duration <= 0 {
			continue
		}
		run := PastRun{Seconds: s.Duration.Seconds(), SizeBytes: c.IndexBytes, Elements: c.Elements, DeadShare: c.DeadShare}
		if c.Path == PathVacuum {
			h.Vacuum = append(h.Vacuum, run)
		} else {
			h.Rebuild = append(h.Rebuild, run)
		}
	}
	return h
}

// figures are the figures a run records before and after.
func (r *Reclaim) figures(env Env, ix catalog.Index, c ReclaimConfig) []string {
	return chooseFigures(env, c.Figures, r.Spec().DefaultFigures(ix.Method))
}

// beforeFigures are the figures of the run's reading before it acts: those it records and
// those of the dead share it chooses on.
func (r *Reclaim) beforeFigures(env Env, ix catalog.Index, c ReclaimConfig) []string {
	return union(r.figures(env, ix, c), deadShareFigures(ix.Method))
}

// Plan implements Strategy.
func (r *Reclaim) Plan(ctx context.Context, env Env, ix catalog.Index, c ReclaimConfig) (Impact, error) {
	// The plan takes the reading the run takes before it acts (the figures it records and
	// the dead share), so that a run right after it reads nothing again.
	reading := readFigures(ctx, env, ix, r.beforeFigures(env, ix, c))
	pl, err := r.plan(ctx, env, ix, c, reading)
	im := Impact{LockLevel: "SHARE UPDATE EXCLUSIVE", IndexBytes: ix.SizeBytes, Statements: pl.stmts, Notes: pl.notes, Reading: reading}
	if pl.cost.Estimates != nil {
		im.Cost = &pl.cost
		im.EstimatedDuration = pl.choice.Chosen().Duration
	}
	if err != nil {
		return im, err
	}
	if pl.choice.Path != PathVacuum {
		im.DiskBytesNeeded = ix.SizeBytes
	}
	return im, nil
}

// Run implements Strategy: it chooses again on today's figures, then runs the chosen path.
func (r *Reclaim) Run(ctx context.Context, env Env, named catalog.Index, c ReclaimConfig) (Outcome, error) {
	// The index the alert named may have been rebuilt since (new OID): work on today's.
	ix, err := catalog.Resolve(ctx, env.Pool, named.Schema, named.Name)
	if err != nil {
		return Outcome{}, err
	}
	// One reading before: the figures recorded and the dead share the choice is made on.
	figures := r.figures(env, ix, c)
	before := readFigures(ctx, env, ix, r.beforeFigures(env, ix, c))
	out := Outcome{Before: recorded(env, ix, figures, before)}
	pl, err := r.plan(ctx, env, ix, c, before)
	if err != nil {
		return out, err
	}
	log := logger(env).With(slog.String("strategy", "reclaim"), slog.String("index", ix.String()))
	log.Info("reclaim path chosen", slog.String("path", string(pl.choice.Path)), slog.String("reason", pl.choice.Reason))
	cur := ix
	switch pl.choice.Path {
	case PathReindexVacuum:
		stmts, after, err := reindexConcurrently(ctx, r.opts, env, ix, pl.build)
		out.Statements = append(out.Statements, stmts...)
		if err != nil {
			return out, err
		}
		cur = after
	case PathRetrainVacuum:
		stmts, after, err := buildAndSwap(ctx, r.opts, env, ix, pl.lists, pl.build)
		out.Statements = append(out.Statements, stmts...)
		if err != nil {
			return out, err
		}
		cur = after
	}
	started := time.Now()
	if err := runMaintenance(ctx, env, r.opts, cur, pl.vacuum, vacuumProgressSQL); err != nil {
		return out, err
	}
	out.Statements = append(out.Statements, pl.vacuum)
	log.Info("reclaimed", slog.String("path", string(pl.choice.Path)), slog.Duration("vacuum", time.Since(started)))
	out.After = measureFigures(ctx, env, env.Pool, cur, figures)
	return out, nil
}

// Rollback implements Strategy. VACUUM and REINDEX have nothing to undo, and a retrain's new
// lists are the ones recommended for today's rows: the old centers are not worth a rebuild
// back. A failed build is cleaned up by Run.
func (*Reclaim) Rollback(context.Context, Env, catalog.Index, ReclaimConfig, json.RawMessage) error {
	return nil
}
