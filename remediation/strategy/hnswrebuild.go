package strategy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/measure"
)

// HNSWRebuild builds an HNSW index again with larger build parameters (m, ef_construction),
// for a graph whose recall no search setting can lift: elements its build left unreachable
// are never found, whatever ef_search. A REINDEX would only rebuild the same graph.
//
// The sequence: sample probe queries and their exact neighbours; CREATE INDEX CONCURRENTLY
// <name>_vhnew with the same key, operator class, predicate and tablespace and the new m and
// ef_construction; check it is valid; then one short transaction on a new session (so it
// has the search settings a new client gets) drops the old index, searches the probe
// queries through the new one, and either renames the new index to the old name and commits
// (recall at least target_recall, mean probe latency within latency_budget) or rolls back,
// which keeps the old index as it was. The old index has to be out of the planner's sight to
// measure the new one: pgvector's cost estimate grows with m, so with both present every
// query would still use the old graph. A failure anywhere drops <name>_vhnew; nothing
// INVALID stays behind.
type HNSWRebuild struct{ opts Options }

// pgvector's limits of the HNSW build parameters and its defaults.
const (
	hnswMinM, hnswMaxM   = 2, 100
	hnswMinEf, hnswMaxEf = 4, 1000
	hnswDefaultEf        = 64
)

// HNSWRebuildConfig are the parameters of an hnsw_rebuild step.
type HNSWRebuildConfig struct {
	M, EfConstruction       int // 0: derived from the index (see newParams)
	MaxM, MaxEfConstruction int
	TargetRecall            float64
	LatencyBudget           time.Duration // 0: no bound
	Queries, K              int
	LockTimeout             time.Duration
	MaxMaintenanceWorkMem   int64 // bytes
	Figures                 []string
}

// Spec implements Strategy.
func (*HNSWRebuild) Spec() Spec {
	return Spec{
		Name: "hnsw_rebuild",
		Description: "Build the HNSW index again concurrently with larger m and ef_construction, check recall and probe latency " +
			"of the new graph at today's search settings, then swap it in and drop the old one; a miss keeps the old index.",
		Methods:      []string{"hnsw"},
		Capabilities: []Capability{CopiesVisibleRows},
		Params: []Param{
			{Name: "m", Type: TypeInt, Min: strconv.Itoa(hnswMinM), Max: strconv.Itoa(hnswMaxM),
				Doc: "m of the new index; default twice today's, at least pgvector's default 16, at most max_m."},
			{Name: "ef_construction", Type: TypeInt, Min: strconv.Itoa(hnswMinEf), Max: strconv.Itoa(hnswMaxEf),
				Doc: "ef_construction of the new index; default twice today's, at least 4 × m and 64, at most max_ef_construction."},
			{Name: "max_m", Type: TypeInt, Default: "48", Min: strconv.Itoa(hnswMinM), Max: strconv.Itoa(hnswMaxM),
				Doc: "Cap of the derived m (the index grows about linearly with m)."},
			{Name: "max_ef_construction", Type: TypeInt, Default: "400", Min: strconv.Itoa(hnswMinEf), Max: strconv.Itoa(hnswMaxEf),
				Doc: "Cap of the derived ef_construction (build time grows about linearly with it)."},
			{Name: "target_recall", Type: TypeNumber, Default: "0.95", Min: "0.01", Max: "1",
				Doc: "Recall the new index must reach at today's search settings before it replaces the old one."},
			{Name: "latency_budget", Type: TypeDuration, Default: "0s", Min: "0s", Max: "1h",
				Doc: "Highest mean probe latency of the new index; 0 = no bound."},
			{Name: "queries", Type: TypeInt, Default: "50", Min: "5", Max: "1000", Doc: "Probe queries of the recall check, sampled from the table."},
			{Name: "k", Type: TypeInt, Default: "10", Min: "1", Max: "1000", Doc: "Neighbours per probe query (recall@k)."},
			{Name: "lock_timeout", Type: TypeDuration, Default: "2s", Min: "10ms", Max: "1m",
				Doc: "Longest wait for the table lock of the check-and-swap transaction; the wait blocks other queries on the table."},
			maxMaintenanceWorkMemParam,
			figuresParam,
		},
		Figures: map[string][]string{"": {"pgvector_index_size_bytes", recallFigure},
			"hnsw": {"pgvector_hnsw_unreachable_elements", "pgvector_hnsw_connectivity_ratio"}},
	}
}

// Decode implements Strategy.
func (*HNSWRebuild) Decode(v Values) (HNSWRebuildConfig, error) {
	c := HNSWRebuildConfig{M: v.Int("m"), EfConstruction: v.Int("ef_construction"), MaxM: v.Int("max_m"),
		MaxEfConstruction: v.Int("max_ef_construction"), TargetRecall: v.Float("target_recall"),
		LatencyBudget: v.Duration("latency_budget"), Queries: v.Int("queries"), K: v.Int("k"),
		LockTimeout: v.Duration("lock_timeout"), MaxMaintenanceWorkMem: v.Size(maxMaintenanceWorkMemParam.Name), Figures: v.Figures()}
	if c.M > c.MaxM {
		return c, fmt.Errorf("parameter %q: %d is above max_m %d", "m", c.M, c.MaxM)
	}
	if c.EfConstruction > c.MaxEfConstruction {
		return c, fmt.Errorf("parameter %q: %d is above max_ef_construction %d", "ef_construction", c.EfConstruction, c.MaxEfConstruction)
	}
	if c.M > 0 && c.EfConstruction > 0 && c.EfConstruction < 2*c.M {
		return c, fmt.Errorf("parameter %q: %d is below 2 × m (%d), which pgvector requires", "ef_construction", c.EfConstruction, 2*c.M)
	}
	if c.EfConstruction == 0 && c.MaxEfConstruction < 2*max(c.M, hnswMinM) {
		return c, fmt.Errorf("parameter %q: %d leaves no ef_construction of at least 2 × m", "max_ef_construction", c.MaxEfConstruction)
	}
	return c, nil
}

// newParams returns the build parameters of the new index: the configured ones, else today's
// doubled, at least pgvector's defaults (an index built below them is raised to them), at
// most the caps; ef_construction at least 4 × m as pgvector's defaults have it, and never
// below the 2 × m pgvector requires.
func (c HNSWRebuildConfig) newParams(ix catalog.Index) (m, ef int) {
	m = c.M
	if m == 0 {
		m = min(max(2*ix.M, defaultHNSWM), c.MaxM)
	}
	ef = c.EfConstruction
	if ef == 0 {
		ef = min(max(2*ix.EfConstruction, 4*m, hnswDefaultEf), c.MaxEfConstruction)
		ef = max(ef, 2*m)
	}
	return m, ef
}

// rebuildPlan is what a run of hnsw_rebuild would do to one index.
type rebuildPlan struct {
	m, ef   int
	rows    float64
	memory  int64 // maintenance_work_mem to set, 0 to leave it
	bytes   int64 // estimated size of the new index
	seconds float64
	create  string
	notes   []string
}

func (h *HNSWRebuild) plan(ctx context.Context, env Env, ix catalog.Index, c HNSWRebuildConfig) (rebuildPlan, error) {
	if ix.Method != "hnsw" {
		return rebuildPlan{}, fmt.Errorf("%s is a %s index: hnsw_rebuild applies to hnsw only", ix, ix.Method)
	}
	if err := replaceable(ix, "hnsw_rebuild"); err != nil {
		return rebuildPlan{}, err
	}
	if ix.Column == "" {
		return rebuildPlan{}, fmt.Errorf("%s indexes an expression: hnsw_rebuild cannot measure the recall of a new index on it before the swap", ix)
	}
	var pl rebuildPlan
	pl.m, pl.ef = c.newParams(ix)
	if pl.m == ix.M && pl.ef == ix.EfConstruction {
		return rebuildPlan{}, fmt.Errorf("%s already has m = %d, ef_construction = %d (the caps max_m / max_ef_construction, or the values asked for): "+
			"a rebuild would make the same graph", ix, ix.M, ix.EfConstruction)
	}
	var err error
	if pl.rows, err = tableRows(ctx, env.Pool, ix); err != nil {
		return rebuildPlan{}, err
	}
	def, err := indexDefinition(ctx, env.Pool, ix)
	if err != nil {
		return rebuildPlan{}, err
	}
	pl.create = def.createHNSW(ix, tempIndexName(ix.Name, "_vhnew"), pl.m, pl.ef)
	pl.bytes = estimateHNSWBytes(ix, pl.m)
	// Build time grows with the bytes written and with the candidates searched per insert.
	pl.seconds = DefaultRates().HNSWBuild * float64(pl.bytes) * float64(pl.ef) / hnswDefaultEf
	grown := ix
	grown.M = pl.m
	need := hnswBuildMemory(grown, pl.rows)
	current, err := settingBytes(ctx, env.Pool, "maintenance_work_mem")
	if err != nil {
		return rebuildPlan{}, err
	}
	switch {
	case need <= current:
	case need <= c.MaxMaintenanceWorkMem:
		pl.memory = need
		pl.notes = append(pl.notes, fmt.Sprintf("maintenance_work_mem raised to %d MB for the build", need>>20))
	default:
		pl.memory = max(c.MaxMaintenanceWorkMem, current)
		pl.notes = append(pl.notes, fmt.Sprintf("the graph needs ~%d MB but max_maintenance_work_mem is %d MB: the build will spill and be slower",
			need>>20, c.MaxMaintenanceWorkMem>>20))
	}
	if strings.HasSuffix(ix.Opclass, "_ip_ops") {
		pl.notes = append(pl.notes, "inner product over vectors of unequal norms leaves many elements unreachable whatever m is; "+
			"normalised vectors with the cosine operator class (vector_cosine_ops) usually help more than larger build parameters")
	}
	return pl, nil
}

// estimateHNSWBytes scales today's size of ix by the bytes per element at the new m: the
// element tuple (header, heap TIDs, vector) stays, the neighbour tuple (2m TIDs on layer 0, m
// per upper layer) grows.
func estimateHNSWBytes(ix catalog.Index, m int) int64 {
	perElement := func(m int) float64 {
		return 8 + 60 + 8 + 4*float64(max(ix.Dimensions, 1)) + 8 + 6*(2*float64(m)+float64(m)/math.Log(float64(max(m, 2))))
	}
	if ix.M <= 0 || ix.SizeBytes <= 0 {
		return ix.SizeBytes
	}
	return int64(float64(ix.SizeBytes) * perElement(m) / perElement(ix.M))
}

func (d indexDef) createHNSW(ix catalog.Index, name string, m, ef int) string {
	s := "CREATE INDEX CONCURRENTLY " + pgx.Identifier{name}.Sanitize() + " ON " + ix.QuotedTable() +
		" USING hnsw (" + d.key + " " + d.opclass + ") WITH (m = " + strconv.Itoa(m) + ", ef_construction = " + strconv.Itoa(ef) + ")"
	if d.tablespace != "" {
		s += " TABLESPACE " + d.tablespace
	}
	if d.predicate != "" {
		s += " WHERE " + d.predicate
	}
	return s
}

// Plan implements Strategy: the new definition, its estimated size and build time.
func (h *HNSWRebuild) Plan(ctx context.Context, env Env, ix catalog.Index, c HNSWRebuildConfig) (Impact, error) {
	pl, err := h.plan(ctx, env, ix, c)
	if err != nil {
		return Impact{}, err
	}
	var stmts []string
	if pl.memory > 0 {
		stmts = append(stmts, "SET maintenance_work_mem = '"+strconv.FormatInt(pl.memory/1024, 10)+"kB'")
	}
	newName := tempIndexName(ix.Name, "_vhnew")
	stmts = append(stmts, pl.create,
		"BEGIN; SET LOCAL lock_timeout = '"+c.LockTimeout.String()+"'",
		"DROP INDEX "+ix.QuotedIndex()+" -- then probe the new index; ROLLBACK when it misses",
		"ALTER INDEX "+pgx.Identifier{ix.Schema, newName}.Sanitize()+" RENAME TO "+pgx.Identifier{ix.Name}.Sanitize()+"; COMMIT")
	notes := fmt.Sprintf("m %d -> %d, ef_construction %d -> %d for ~%.0f rows; new index ~%d MB (now %d MB), build ~%s (estimate); "+
		"kept only if recall@%d >= %g at today's search settings", ix.M, pl.m, ix.EfConstruction, pl.ef, pl.rows,
		pl.bytes>>20, ix.SizeBytes>>20, seconds(pl.seconds).Round(time.Second), c.K, c.TargetRecall)
	if c.LatencyBudget > 0 {
		notes += fmt.Sprintf(" and mean probe latency <= %s", c.LatencyBudget)
	}
	for _, n := range pl.notes {
		notes += "; " + n
	}
	return Impact{
		LockLevel:         "SHARE UPDATE EXCLUSIVE while building; ACCESS EXCLUSIVE on the table for the check and swap (bounded by lock_timeout)",
		IndexBytes:        ix.SizeBytes,
		DiskBytesNeeded:   pl.bytes,
		EstimatedDuration: seconds(pl.seconds),
		Statements:        stmts,
		Notes:             notes,
	}, nil
}

// rebuildUndo is what Rollback needs: the parameters the index had, and whether the new index
// replaced it (only then is there anything to undo).
type rebuildUndo struct {
	PreviousM              int  `json:"previous_m"`
	PreviousEfConstruction int  `json:"previous_ef_construction"`
	Swapped                bool `json:"swapped"`
}

// Run implements Strategy.
func (h *HNSWRebuild) Run(ctx context.Context, env Env, ix catalog.Index, c HNSWRebuildConfig) (Outcome, error) {
	// The index the alert named may have been rebuilt since (new OID): work on today's.
	cur, err := catalog.Resolve(ctx, env.Pool, ix.Schema, ix.Name)
	if err != nil {
		return Outcome{}, err
	}
	pl, err := h.plan(ctx, env, cur, c)
	if err != nil {
		return Outcome{}, err
	}
	figures := chooseFigures(env, c.Figures, h.Spec().DefaultFigures(cur.Method))
	out := Outcome{Before: figuresBefore(ctx, env, cur, figures)}
	if out.Before == nil {
		out.Before = map[string]float64{}
	}
	out.Before["m"], out.Before["ef_construction"] = float64(cur.M), float64(cur.EfConstruction)
	undo := rebuildUndo{PreviousM: cur.M, PreviousEfConstruction: cur.EfConstruction}
	out.Undo, _ = json.Marshal(undo)

	g := &recallGate{target: c.TargetRecall, budget: c.LatencyBudget, lockTimeout: c.LockTimeout}
	if g.probe, err = sampleProbe(ctx, env.Pool, cur, c.Queries, c.K); err != nil {
		return out, err
	}
	stmts, res, err := h.rebuild(ctx, env, cur, pl, g)
	out.Statements = stmts
	if res.measured {
		out.After = map[string]float64{"new_index_" + recallFigure: res.recall, "new_index_" + latencyFigure: res.latency.Seconds()}
	}
	if err != nil {
		return out, err
	}
	undo.Swapped = true
	out.Undo, _ = json.Marshal(undo)
	after, err := catalog.Resolve(ctx, env.Pool, cur.Schema, cur.Name)
	if err != nil {
		return out, fmt.Errorf("look up rebuilt index: %w", err)
	}
	if out.After == nil {
		out.After = map[string]float64{}
	}
	for k, v := range measureFigures(ctx, env, env.Pool, after, figures) {
		out.After[k] = v
	}
	out.After["m"], out.After["ef_construction"] = float64(after.M), float64(after.EfConstruction)
	return out, nil
}

// Rollback implements Strategy. Before the swap Run has already dropped its new index and the
// old one serves untouched: nothing to undo. After the swap (the engine's own validation
// missed) the index is built again with its previous parameters, without a recall check.
func (h *HNSWRebuild) Rollback(ctx context.Context, env Env, ix catalog.Index, c HNSWRebuildConfig, undo json.RawMessage) error {
	if len(undo) == 0 {
		return nil
	}
	var u rebuildUndo
	if err := json.Unmarshal(undo, &u); err != nil {
		return fmt.Errorf("hnsw_rebuild rollback: decode undo: %w", err)
	}
	if !u.Swapped || u.PreviousM < hnswMinM || u.PreviousEfConstruction < hnswMinEf {
		return nil
	}
	cur, err := catalog.Resolve(ctx, env.Pool, ix.Schema, ix.Name)
	if err != nil {
		return fmt.Errorf("hnsw_rebuild rollback: %w", err)
	}
	if cur.M == u.PreviousM && cur.EfConstruction == u.PreviousEfConstruction && cur.Valid {
		return nil
	}
	back := c
	back.M, back.EfConstruction = u.PreviousM, u.PreviousEfConstruction
	back.MaxM, back.MaxEfConstruction = hnswMaxM, hnswMaxEf
	pl, err := h.plan(ctx, env, cur, back)
	if err != nil {
		return fmt.Errorf("hnsw_rebuild rollback: %w", err)
	}
	_, _, err = h.rebuild(ctx, env, cur, pl, &recallGate{lockTimeout: c.LockTimeout})
	if err != nil {
		return fmt.Errorf("hnsw_rebuild rollback: %w", err)
	}
	return nil
}

// rebuild builds the new index of pl next to ix and swaps it in through g; see HNSWRebuild.
func (h *HNSWRebuild) rebuild(ctx context.Context, env Env, ix catalog.Index, pl rebuildPlan, g *recallGate) ([]string, gateResult, error) {
	log := logger(env).With(slog.String("strategy", "hnsw_rebuild"), slog.String("index", ix.String()))
	newName := tempIndexName(ix.Name, "_vhnew")
	newIx := relIndex{Schema: ix.Schema, Name: newName}
	// Leftovers and drops work as for the IVFFlat retrain, which uses the same names.
	conn, err := buildSession(ctx, env, ix)
	if err != nil {
		return nil, gateResult{}, err
	}
	defer closeSession(conn)
	left, err := leftovers(ctx, conn, ix, newName, tempIndexName(ix.Name, "_vhold"))
	if err != nil {
		return nil, gateResult{}, err
	}
	stmts, err := dropIndexes(ctx, conn, env, left)
	if err != nil {
		return stmts, gateResult{}, err
	}
	if pl.memory > 0 {
		if _, err := setMaintenanceWorkMem(ctx, conn, pl.memory); err != nil {
			return stmts, gateResult{}, err
		}
		stmts = append(stmts, "SET maintenance_work_mem = '"+strconv.FormatInt(pl.memory/1024, 10)+"kB'")
	}
	dropNew := func(cause error) ([]string, gateResult, error) {
		cctx, cancel := cleanupContext(ctx, h.opts.cleanupTimeout())
		defer cancel()
		drop, cerr := dropOnFreshSession(cctx, env, []relIndex{newIx})
		return append(stmts, drop...), gateResult{}, errors.Join(cause, cerr)
	}

	log.Info("building index with new parameters", slog.Int("m_before", ix.M), slog.Int("m", pl.m),
		slog.Int("ef_construction_before", ix.EfConstruction), slog.Int("ef_construction", pl.ef))
	stop := watchProgress(ctx, env, h.opts, ix, createIndexProgressSQL, conn.PgConn().PID())
	_, err = conn.Exec(ctx, pl.create)
	stop()
	stmts = append(stmts, pl.create)
	if err == nil {
		err = checkValid(ctx, conn, ix, newName)
	}
	if err != nil {
		return dropNew(fmt.Errorf("build %s: %w", newIx.quoted(), err))
	}

	swap, res, err := g.checkAndSwap(ctx, env, ix, newName)
	stmts = append(stmts, swap...)
	if err != nil {
		s, _, err := dropNew(err)
		return s, res, err
	}
	log.Info("index rebuilt with new parameters and swapped in", slog.Float64("recall", res.recall),
		slog.Duration("probe_latency", res.latency))
	return stmts, res, nil
}

// recallGate decides, in the transaction that swaps the new index in, whether it may.
type recallGate struct {
	probe       probeSet
	target      float64       // 0: no recall check (a rollback to the previous parameters)
	budget      time.Duration // 0: no latency bound
	lockTimeout time.Duration
}

type gateResult struct {
	measured bool
	recall   float64
	latency  time.Duration
}

// lockTries is how often the check-and-swap transaction asks for its table lock before the
// step gives up (each wait bounded by lock_timeout).
const lockTries = 3

// checkAndSwap drops ix, measures the new index in its place and renames it to ix's name, in
// one transaction on a new session; a miss rolls the transaction back, so ix stays.
func (g *recallGate) checkAndSwap(ctx context.Context, env Env, ix catalog.Index, newName string) ([]string, gateResult, error) {
	fresh, err := freshPool(ctx, env.Pool, nil)
	if err != nil {
		return nil, gateResult{}, err
	}
	defer fresh.Close()
	stmts := []string{
		"SET LOCAL lock_timeout = '" + strconv.FormatInt(max(g.lockTimeout.Milliseconds(), 1), 10) + "ms'",
		"DROP INDEX " + ix.QuotedIndex(),
		"ALTER INDEX " + pgx.Identifier{ix.Schema, newName}.Sanitize() + " RENAME TO " + pgx.Identifier{ix.Name}.Sanitize(),
	}
	var res gateResult
	for try := 1; ; try++ {
		err = pgx.BeginFunc(ctx, fresh, func(tx pgx.Tx) error {
			for _, s := range stmts[:2] {
				if _, err := tx.Exec(ctx, s); err != nil {
					return fmt.Errorf("%s: %w", s, err)
				}
			}
			if g.target > 0 || g.budget > 0 {
				var err error
				if res, err = g.probe.run(ctx, tx, ix, newName); err != nil {
					return err
				}
				if res.recall < g.target {
					return fmt.Errorf("new index: recall@%d %.4f below target_recall %g at today's search settings; old index kept",
						g.probe.k, res.recall, g.target)
				}
				if g.budget > 0 && res.latency > g.budget {
					return fmt.Errorf("new index: mean probe latency %s exceeds latency_budget %s (recall@%d %.4f); old index kept",
						res.latency, g.budget, g.probe.k, res.recall)
				}
			}
			_, err := tx.Exec(ctx, stmts[2])
			return err
		})
		if err == nil || !RetryLater(err) || try == lockTries || ctx.Err() != nil {
			break
		}
		logger(env).Info("table busy, check-and-swap waits", slog.String("index", ix.String()), slog.Int("try", try), slog.Any("err", err))
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(try) * time.Second):
		}
	}
	return stmts, res, err
}

// probeSet is a sample of query vectors with the exact neighbours of each.
type probeSet struct {
	k       int
	op      string
	queries []string
	exact   [][]measure.Row // each query's k nearest rows, or every row when fewer
}

// sampleProbe samples up to n query vectors of ix's column and computes their exact
// neighbours (index scans off). It runs before the build, so the exact search does not hold
// the swap's lock; rows written in between can only lower the measured recall.
func sampleProbe(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, n, k int) (probeSet, error) {
	op, err := ix.OrderOperator()
	if err != nil {
		return probeSet{}, err
	}
	p := probeSet{k: k, op: op}
	col, tbl := ix.QuotedColumn(), ix.QuotedTable()
	err = pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT "+col+"::text FROM "+tbl+" WHERE "+col+" IS NOT NULL ORDER BY random() LIMIT $1", n)
		if err != nil {
			return err
		}
		if p.queries, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off"); err != nil {
			return err
		}
		for _, q := range p.queries {
			d, err := p.search(ctx, tx, ix, q)
			if err != nil {
				return err
			}
			if len(d) == 0 {
				return fmt.Errorf("no neighbours found")
			}
			p.exact = append(p.exact, d)
		}
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("%s: sample probe queries: %w", ix, err)
	}
	if len(p.queries) == 0 {
		return p, fmt.Errorf("%s: table has no vector to probe with", ix)
	}
	return p, nil
}

// searchSQL is the top-k search of the probe, with the query vector as $1.
func (p probeSet) searchSQL(ix catalog.Index) string {
	col := ix.QuotedColumn()
	return "SELECT ctid::text, (" + col + " " + p.op + " $1)::float8 FROM " + ix.QuotedTable() +
		" ORDER BY " + col + " " + p.op + " $1 LIMIT " + strconv.Itoa(p.k)
}

func (p probeSet) search(ctx context.Context, tx pgx.Tx, ix catalog.Index, q string) ([]measure.Row, error) {
	rows, err := tx.Query(ctx, p.searchSQL(ix), q)
	if err != nil {
		return nil, fmt.Errorf("probe search: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[measure.Row])
}

// run searches every query through the index called name (checking the planner uses it)
// and returns recall@k as measure.Hits counts it (ties at the k-th exact distance are hits),
// and the mean search time.
func (p probeSet) run(ctx context.Context, tx pgx.Tx, ix catalog.Index, name string) (gateResult, error) {
	if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_custom_plan"); err != nil {
		return gateResult{}, err
	}
	used, err := measure.UsesIndex(ctx, tx, name, p.searchSQL(ix), p.queries[0])
	if err != nil {
		return gateResult{}, fmt.Errorf("probe search: %w", err)
	}
	if !used {
		return gateResult{}, fmt.Errorf("new index: the planner does not use %s for the probe search, so its recall cannot be measured", name)
	}
	var hits, want int
	var total time.Duration
	for i, q := range p.queries {
		start := time.Now()
		got, err := p.search(ctx, tx, ix, q)
		total += time.Since(start)
		if err != nil {
			return gateResult{}, err
		}
		h, w := measure.Hits(got, p.exact[i])
		hits += h
		want += w
	}
	return gateResult{measured: true, recall: float64(hits) / float64(want), latency: total / time.Duration(len(p.queries))}, nil
}
