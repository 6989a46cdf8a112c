package strategy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

// Iterative scans (pgvector 0.8): pgvector applies a query's filter after the index search, so
// with a selective filter hnsw.ef_search candidates (or ivfflat.probes lists) hold fewer than k
// matching rows. hnsw.iterative_scan / ivfflat.iterative_scan continue the search until k rows
// match or hnsw.max_scan_tuples tuples / ivfflat.max_probes lists have been visited. When the
// filter cannot be met, an unbounded scan visits the whole index: latency then grows tens of
// times, so tune_search sets them only within its bounds and keeps them only when the declared
// filtered queries are filled, their recall and the probe's recall hold, and the latency stays
// within latency_budget together.

const (
	filteredShortFigure   = "pgvector_filtered_short_ratio"
	filteredRecallFigure  = "pgvector_filtered_recall_ratio"
	filteredLatencyFigure = "pgvector_filtered_latency_seconds"
)

// iterativeModes are the values of the iterative_scan settings, in order of permissiveness;
// before/after record a mode as its position here.
var iterativeModes = []string{"off", "strict_order", "relaxed_order"}

// integerSettings and modeSettings are every setting tune_search may change; the undo names
// them and Rollback refuses any other.
var (
	integerSettings = []string{"hnsw.ef_search", "ivfflat.probes", "hnsw.max_scan_tuples", "ivfflat.max_probes"}
	modeSettings    = []string{"hnsw.iterative_scan", "ivfflat.iterative_scan"}
)

// iterativePlan is what an iterative-scan tuning tries on one index.
type iterativePlan struct {
	mode, limit string   // the settings: iterative_scan and its bound
	modes       []string // modes tried, in order
	limitMax    int      // the highest bound tried
}

// iterativeFor returns the plan of c's iterative scans for ix, or nil when c sets none.
func (c TuneConfig) iterativeFor(ix catalog.Index) (*iterativePlan, error) {
	if c.IterativeScan == "" {
		return nil, nil
	}
	switch ix.Method {
	case "hnsw":
		p := &iterativePlan{mode: "hnsw.iterative_scan", limit: "hnsw.max_scan_tuples", limitMax: c.MaxScanTuples,
			modes: []string{"strict_order"}}
		if c.IterativeScan == "relaxed_order" {
			p.modes = append(p.modes, "relaxed_order")
		}
		return p, nil
	case "ivfflat":
		if c.IterativeScan != "relaxed_order" {
			return nil, fmt.Errorf("parameter %q: %s is an ivfflat index, whose iterative scans are relaxed_order only", "iterative_scan", ix)
		}
		if c.MaxProbes == 0 {
			return nil, fmt.Errorf("parameter %q: required for iterative scans of the ivfflat index %s (unbounded, they probe every list)", "max_probes", ix)
		}
		return &iterativePlan{mode: "ivfflat.iterative_scan", limit: "ivfflat.max_probes", limitMax: c.MaxProbes,
			modes: []string{"relaxed_order"}}, nil
	}
	return nil, fmt.Errorf("%s: unknown method %q", ix, ix.Method)
}

// limits returns the bounds tried with each mode: from start, doubling, to the plan's highest
// (start alone when that is not above it).
func (p *iterativePlan) limits(start int) []int {
	top := p.limitMax
	if top == 0 {
		top = start // max_scan_tuples not given: keep pgvector's (or the database's) bound
	}
	start = max(min(start, top), 1)
	var out []int
	for n := start; n < top; n *= 2 {
		out = append(out, n)
	}
	return append(out, top)
}

// met reports whether figures meet the step's targets for filtered and unfiltered queries.
func (v tuneValues) iterativeMet(figures map[string]float64) bool {
	short, ok1 := figures[filteredShortFigure]
	recall, ok2 := figures[filteredRecallFigure]
	return ok1 && ok2 && short <= v.MaxShort && recall >= v.FilteredRecall && figures[recallFigure] >= v.Target
}

// overBudget returns why figures exceed the latency budget, or "".
func (v tuneValues) overBudget(figures map[string]float64) string {
	if v.Budget <= 0 {
		return ""
	}
	for _, f := range []string{filteredLatencyFigure, latencyFigure} {
		if l, ok := figures[f]; ok && l > v.Budget.Seconds() {
			return fmt.Sprintf("%s %.4fs exceeds latency_budget %s", f, l, v.Budget)
		}
	}
	return ""
}

// iterate tries p's modes and bounds, on top of the search setting u.Setting = value, until the
// filtered queries meet the targets. Exceeding the latency budget, an error or running out of
// bounds restores every setting of the undo and fails, saying why.
func (t *TuneSearch) iterate(ctx context.Context, env Env, ix catalog.Index, c TuneConfig, v tuneValues, p *iterativePlan,
	u tuneUndo, value int, figures []string, out *Outcome) error {
	log := logger(env).With(slog.String("strategy", "tune_search"), slog.String("index", ix.String()))
	fail := func(err error) error { return errors.Join(err, t.Rollback(ctx, env, ix, c, out.Undo)) }
	start, err := t.limitStart(ctx, env, ix, p, value)
	if err != nil {
		return fail(err)
	}
	set := map[string]string{u.Setting: strconv.Itoa(value)}
	for _, mode := range p.modes {
		for _, limit := range p.limits(start) {
			for _, kv := range [][2]string{{p.mode, mode}, {p.limit, strconv.Itoa(limit)}} {
				if set[kv[0]] == kv[1] {
					continue
				}
				stmt, err := u.setValue(kv[0], kv[1])
				if err != nil {
					return fail(err)
				}
				if err := alterSetting(ctx, env, stmt); err != nil {
					return fail(err)
				}
				out.Statements = append(out.Statements, stmt)
				set[kv[0]] = kv[1]
			}
			out.After = t.measure(ctx, env, ix, u, set, figures)
			out.After[v.setting] = float64(value)
			out.After[p.mode] = float64(slices.Index(iterativeModes, mode))
			out.After[p.limit] = float64(limit)
			log.Info("iterative scan tried", slog.String(p.mode, mode), slog.Int(p.limit, limit),
				slog.Float64("short", out.After[filteredShortFigure]), slog.Float64("filtered_recall", out.After[filteredRecallFigure]),
				slog.Float64("filtered_latency_seconds", out.After[filteredLatencyFigure]))
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
			if why := v.overBudget(out.After); why != "" {
				return fail(fmt.Errorf("%s = %s, %s = %d: %s; previous settings restored", p.mode, mode, p.limit, limit, why))
			}
			if _, ok := out.After[filteredShortFigure]; !ok {
				return fail(fmt.Errorf("%s of %s cannot be measured (see the log); previous settings restored", filteredShortFigure, ix))
			}
			if v.iterativeMet(out.After) {
				return nil
			}
		}
	}
	return fail(fmt.Errorf("%s up to %s with %s up to %d: short share %.3f (at most %g wanted), filtered recall %.3f (target %g), recall %.3f (target %g); previous settings restored",
		p.mode, p.modes[len(p.modes)-1], p.limit, p.limits(start)[len(p.limits(start))-1],
		out.After[filteredShortFigure], v.MaxShort, out.After[filteredRecallFigure], v.FilteredRecall, out.After[recallFigure], v.Target))
}

// limitStart is the first bound tried: the database's hnsw.max_scan_tuples (pgvector's default
// 20000 unless set), or twice the ivfflat.probes in use, since max_probes below probes does
// nothing.
func (t *TuneSearch) limitStart(ctx context.Context, env Env, ix catalog.Index, p *iterativePlan, value int) (int, error) {
	cur, err := newSessionSetting(ctx, env, p.mode)
	if err != nil {
		return 0, err
	}
	if cur == nil {
		return 0, fmt.Errorf("%s: pgvector in this database has no %s (iterative scans need pgvector 0.8.0 or later)", ix, p.mode)
	}
	if ix.Method == "ivfflat" {
		return max(2*value, 2), nil
	}
	lim, err := newSessionSetting(ctx, env, p.limit)
	if err != nil || lim == nil {
		return 0, fmt.Errorf("read %s: %w", p.limit, err)
	}
	n, err := strconv.Atoi(*lim)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not an integer", p.limit, *lim)
	}
	return n, nil
}

// newSessionSetting returns the value of setting on a new session with pgvector loaded, nil
// when the installed pgvector does not define it.
func newSessionSetting(ctx context.Context, env Env, setting string) (*string, error) {
	fresh, err := freshPool(ctx, env.Pool, nil)
	if err != nil {
		return nil, err
	}
	defer fresh.Close()
	var s *string
	if err := fresh.QueryRow(ctx, "SELECT current_setting($1, true) FROM (SELECT '[1]'::vector) AS loaded", setting).Scan(&s); err != nil {
		return nil, fmt.Errorf("read %s: %w", setting, err)
	}
	return s, nil
}

func limitText(n int) string {
	if n == 0 {
		return "the current value"
	}
	return strconv.Itoa(n)
}
