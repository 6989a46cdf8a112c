package strategy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/measure"
)

// TuneSearch raises the search-time parameter of an index — hnsw.ef_search for HNSW,
// ivfflat.probes for IVFFlat — step by step, at database scope (ALTER DATABASE ... SET) or role
// scope (ALTER ROLE ... IN DATABASE ... SET), until the measured recall reaches the target.
// Each value is measured on a new session, because only sessions started after the ALTER see
// it. It stops at max or when the probe latency exceeds latency_budget; not reaching the target
// restores the previous setting and fails.
//
// Probe latency is the mean time of a 10-nearest-neighbour query on a new session: the
// Measurer's figure of that name when it has one, else timed here. Either way it is recorded
// under latencyFigure.
//
// With iterative_scan it then turns on pgvector 0.8's iterative scans for the declared filtered
// queries of the index, within max_scan_tuples / max_probes, validated on recall, rows returned
// and latency together (iterative.go).
type TuneSearch struct{ opts Options }

const (
	recallFigure = "pgvector_recall_ratio"
	// latencyFigure names the probe latency in before/after. The exporter publishes probe
	// latency as a histogram, not as a figure its Measurer re-measures, so this strategy
	// normally times the probe itself; it is not one of its default figures.
	latencyFigure = "pgvector_probe_latency_seconds"
)

// TuneConfig are the parameters of a tune_search step.
type TuneConfig struct {
	Target  float64
	Scope   string // database or role
	Role    string
	Step    int // 0 = method default
	Max     int // 0 = method default
	Budget  time.Duration
	Figures []string

	// Iterative scans (iterative.go): the most permissive mode tried ("" leaves them alone),
	// the highest hnsw.max_scan_tuples (0: the current one) and ivfflat.max_probes, and the
	// targets of the filtered queries.
	IterativeScan  string
	MaxScanTuples  int
	MaxProbes      int
	FilteredRecall float64
	MaxShort       float64
}

// Spec implements Strategy.
func (*TuneSearch) Spec() Spec {
	return Spec{
		Name:        "tune_search",
		Description: "Raise hnsw.ef_search or ivfflat.probes for the database or a role step by step until measured recall reaches the target; with iterative_scan, then turn on pgvector 0.8's iterative scans within bounds until filtered queries are filled, validated on recall and latency.",
		Params: []Param{
			{Name: "target_recall", Type: TypeNumber, Default: "0.95", Min: "0.01", Max: "1", Doc: "Recall the step must reach."},
			{Name: "scope", Type: TypeEnum, Enum: []string{"database", "role"}, Default: "database", Doc: "Where the setting is stored."},
			{Name: "role", Type: TypeString, Doc: "The role whose setting changes; required with scope role."},
			{Name: "step", Type: TypeInt, Min: "1", Max: "1000", Doc: "Increment per try (default 20 for ef_search, 2 for probes). The first value tried is at least pgvector's default (ef_search 40, probes 1), so a setting left below it is not tuned to a value still below it; only a max below the default sets lower."},
			{Name: "max", Type: TypeInt, Min: "1", Max: strconv.Itoa(measure.MaxLists), Doc: "Highest value tried (default 400 for ef_search, lists for probes)."},
			{Name: "latency_budget", Type: TypeDuration, Default: "0s", Min: "0s", Max: "1h", Doc: "Stop raising when probe latency (or, with iterative_scan, filtered query latency) exceeds this, and restore the previous settings; 0 = none (required with iterative_scan)."},
			{Name: "iterative_scan", Type: TypeEnum, Enum: []string{"strict_order", "relaxed_order"}, Doc: "For short filtered queries (pgvector 0.8): the most permissive hnsw.iterative_scan / ivfflat.iterative_scan tried, strict_order first (IVFFlat: relaxed_order only); unset leaves iterative scans alone."},
			{Name: "max_scan_tuples", Type: TypeInt, Min: "1", Max: "100000000", Doc: "Highest hnsw.max_scan_tuples tried with iterative_scan, doubling from the current value (default: the current value, pgvector's 20000 unless set)."},
			{Name: "max_probes", Type: TypeInt, Min: "1", Max: "32768", Doc: "Highest ivfflat.max_probes tried with iterative_scan, doubling from twice ivfflat.probes; required for IVFFlat indexes."},
			{Name: "target_filtered_recall", Type: TypeNumber, Default: "0.9", Min: "0", Max: "1", Doc: "With iterative_scan: recall of the filtered queries against exact filtered search the step must reach."},
			{Name: "max_short_ratio", Type: TypeNumber, Default: "0", Min: "0", Max: "1", Doc: "With iterative_scan: the share of filtered queries returning fewer rows than exact search the step accepts."},
			figuresParam,
		},
		Figures: map[string][]string{"": {recallFigure}},
	}
}

// Decode implements Strategy.
func (*TuneSearch) Decode(v Values) (TuneConfig, error) {
	c := TuneConfig{Target: v.Float("target_recall"), Scope: v.String("scope"), Role: v.String("role"),
		Step: v.Int("step"), Max: v.Int("max"), Budget: v.Duration("latency_budget"), Figures: v.Figures(),
		IterativeScan: v.String("iterative_scan"), MaxScanTuples: v.Int("max_scan_tuples"), MaxProbes: v.Int("max_probes"),
		FilteredRecall: v.Float("target_filtered_recall"), MaxShort: v.Float("max_short_ratio")}
	if c.Scope == "role" && c.Role == "" {
		return c, fmt.Errorf("parameter %q: required when scope is role", "role")
	}
	if c.Scope == "database" && c.Role != "" {
		return c, fmt.Errorf("parameter %q: only used with scope role", "role")
	}
	if c.IterativeScan == "" {
		for _, p := range []string{"max_scan_tuples", "max_probes"} {
			if v.Int(p) != 0 {
				return c, fmt.Errorf("parameter %q: only used with iterative_scan", p)
			}
		}
	} else if c.Budget <= 0 {
		return c, fmt.Errorf("parameter %q: required with iterative_scan (when a filter cannot be met, an iterative scan visits up to max_scan_tuples / max_probes and can cost tens of times the latency)", "latency_budget")
	}
	return c, nil
}

// tuneValues is a TuneConfig with what depends on the index filled in.
type tuneValues struct {
	TuneConfig
	setting  string
	limitMax int
	// floor is pgvector's default of the setting: the first value tried is at least that, so
	// a database left below the default (ef_search 1 for a benchmark, say) is never "tuned"
	// to a value still below it. Only a max below it (asked for) caps the values lower.
	floor int
}

// pgvectorDefault is pgvector's default of a search setting tune_search changes.
func pgvectorDefault(setting string) int {
	if setting == "hnsw.ef_search" {
		return 40
	}
	return 1 // ivfflat.probes
}

// forIndex fills in the setting and the defaults that depend on the index's method.
func (c TuneConfig) forIndex(ix catalog.Index) (tuneValues, error) {
	v := tuneValues{TuneConfig: c}
	switch ix.Method {
	case "hnsw":
		v.setting, v.limitMax = "hnsw.ef_search", 1000
		if v.Step == 0 {
			v.Step = 20
		}
		if v.Max == 0 {
			v.Max = 400
		}
	case "ivfflat":
		v.setting, v.limitMax = "ivfflat.probes", max(ix.Lists, 1)
		if v.Step == 0 {
			v.Step = 2
		}
		if v.Max == 0 {
			v.Max = v.limitMax
		}
	default:
		return v, fmt.Errorf("%s: unknown method %q", ix, ix.Method)
	}
	if v.Max > v.limitMax {
		return v, fmt.Errorf("parameter %q: %d is above the limit %d of %s for %s", "max", v.Max, v.limitMax, v.setting, ix)
	}
	// A max below pgvector's default asks for values below it: then no floor.
	if def := pgvectorDefault(v.setting); v.Max >= def {
		v.floor = def
	}
	return v, nil
}

// tuneUndo is the setting as it was before the step: what Rollback restores.
type tuneUndo struct {
	Scope    string  `json:"scope"`
	Database string  `json:"database"`
	Role     string  `json:"role,omitempty"`
	Setting  string  `json:"setting"`
	Previous *string `json:"previous"` // nil: not set at that scope before
	// Also are the further settings the step may change (iterative scans), restored with it.
	Also []settingUndo `json:"also,omitempty"`
}

// settingUndo is one further setting as it was before the step.
type settingUndo struct {
	Setting  string  `json:"setting"`
	Previous *string `json:"previous"`
}

// setValue is the ALTER that sets setting to value. Only the settings tune_search knows are
// accepted, with an integer or a known mode as value, so nothing from outside reaches the SQL.
func (u tuneUndo) setValue(setting, value string) (string, error) {
	switch {
	case slices.Contains(integerSettings, setting):
		n, err := strconv.Atoi(value)
		if err != nil {
			return "", fmt.Errorf("%s %q is not an integer", setting, value)
		}
		return u.target() + " SET " + setting + " = " + strconv.Itoa(n), nil
	case slices.Contains(modeSettings, setting):
		if !slices.Contains(iterativeModes, value) {
			return "", fmt.Errorf("%s %q is not one of %s", setting, value, strings.Join(iterativeModes, ", "))
		}
		return u.target() + " SET " + setting + " = " + value, nil
	}
	return "", fmt.Errorf("unknown setting %q", setting)
}

// restoreAll returns the statements that restore every setting of the undo, the step's own
// search setting first.
func (u tuneUndo) restoreAll() ([]string, error) {
	first, err := u.restoreStatement()
	if err != nil {
		return nil, err
	}
	out := []string{first}
	for _, s := range u.Also {
		if !slices.Contains(integerSettings, s.Setting) && !slices.Contains(modeSettings, s.Setting) {
			return nil, fmt.Errorf("unknown setting %q in undo", s.Setting)
		}
		if s.Previous == nil {
			out = append(out, u.target()+" RESET "+s.Setting)
			continue
		}
		stmt, err := u.setValue(s.Setting, *s.Previous)
		if err != nil {
			return nil, fmt.Errorf("previous %w", err)
		}
		out = append(out, stmt)
	}
	return out, nil
}

func (u tuneUndo) target() string {
	if u.Scope == "role" {
		return "ALTER ROLE " + pgx.Identifier{u.Role}.Sanitize() + " IN DATABASE " + pgx.Identifier{u.Database}.Sanitize()
	}
	return "ALTER DATABASE " + pgx.Identifier{u.Database}.Sanitize()
}

// setStatement is the ALTER that sets value; setting names are constants of this file and the
// value is an integer, so nothing from outside reaches the SQL text.
func (u tuneUndo) setStatement(value int) string {
	return u.target() + " SET " + u.Setting + " = " + strconv.Itoa(value)
}

func (u tuneUndo) restoreStatement() (string, error) {
	if u.Previous == nil {
		return u.target() + " RESET " + u.Setting, nil
	}
	n, err := strconv.Atoi(*u.Previous)
	if err != nil {
		return "", fmt.Errorf("previous %s %q is not an integer", u.Setting, *u.Previous)
	}
	return u.setStatement(n), nil
}

// Plan implements Strategy.
func (t *TuneSearch) Plan(ctx context.Context, env Env, ix catalog.Index, c TuneConfig) (Impact, error) {
	v, err := c.forIndex(ix)
	if err != nil {
		return Impact{}, err
	}
	iter, err := c.iterativeFor(ix)
	if err != nil {
		return Impact{}, err
	}
	u := tuneUndo{Scope: v.Scope, Database: ix.Datname, Role: v.Role, Setting: v.setting}
	im := Impact{
		LockLevel:  "none (catalog update of pg_db_role_setting)",
		IndexBytes: ix.SizeBytes,
		Statements: []string{u.target() + " SET " + v.setting + " = <value>"},
		Notes: fmt.Sprintf("raise %s by %d up to %d until %s >= %g; new sessions only; slower queries in exchange for recall",
			v.setting, v.Step, v.Max, recallFigure, v.Target),
	}
	if iter != nil {
		im.Statements = append(im.Statements, u.target()+" SET "+iter.mode+" = <"+strings.Join(iter.modes, " | ")+">",
			u.target()+" SET "+iter.limit+" = <value>")
		im.Notes += fmt.Sprintf("; then %s up to %s with %s up to %s, until filtered queries are short at most %g and their recall >= %g, within latency_budget %s",
			iter.mode, iter.modes[len(iter.modes)-1], iter.limit, limitText(iter.limitMax), v.MaxShort, v.FilteredRecall, v.Budget)
	}
	return im, nil
}

// Run implements Strategy.
func (t *TuneSearch) Run(ctx context.Context, env Env, ix catalog.Index, c TuneConfig) (Outcome, error) {
	v, err := c.forIndex(ix)
	if err != nil {
		return Outcome{}, err
	}
	iter, err := c.iterativeFor(ix)
	if err != nil {
		return Outcome{}, err
	}
	if env.Measure == nil || !slices.Contains(env.Measure.Figures(), recallFigure) {
		return Outcome{}, fmt.Errorf("tune_search needs the %s figure from the measurer", recallFigure)
	}
	log := logger(env).With(slog.String("strategy", "tune_search"), slog.String("index", ix.String()), slog.String("setting", v.setting))
	u, err := previousSettings(ctx, env, tuneUndo{Scope: v.Scope, Database: ix.Datname, Role: v.Role, Setting: v.setting}, iter)
	if err != nil {
		return Outcome{}, err
	}
	var out Outcome
	out.Undo, _ = json.Marshal(u)
	figures, err := t.figures(env, ix, c, iter)
	if err != nil {
		return out, err
	}
	value, err := t.effective(ctx, env, u)
	if err != nil {
		return out, err
	}
	out.Before = t.measure(ctx, env, ix, u, map[string]string{u.Setting: strconv.Itoa(value)}, figures)
	out.Before[v.setting] = float64(value)
	if _, ok := out.Before[recallFigure]; !ok {
		return out, fmt.Errorf("tune_search: %s of %s cannot be measured (see the log); nothing changed", recallFigure, ix)
	}
	if _, ok := out.Before[filteredShortFigure]; iter != nil && !ok {
		return out, fmt.Errorf("tune_search: %s of %s cannot be measured (is a filtered query declared for it in exporter.filtered_queries? see the log); nothing changed",
			filteredShortFigure, ix)
	}
	filteredMet := func(f map[string]float64) bool { return iter == nil || v.iterativeMet(f) }
	if out.Before[recallFigure] >= v.Target && filteredMet(out.Before) {
		log.Info("recall already at target", slog.Float64("recall", out.Before[recallFigure]))
		out.After = out.Before
		return out, nil
	}
	out.After = out.Before
	for reached := out.Before[recallFigure] >= v.Target; !reached; {
		if value >= v.Max {
			return out, errors.Join(fmt.Errorf("%s reached max %d with recall %.4f below target %g; previous setting restored",
				v.setting, v.Max, out.After[recallFigure], v.Target), t.Rollback(ctx, env, ix, c, out.Undo))
		}
		value = min(max(value+v.Step, v.floor), v.Max)
		stmt := u.setStatement(value)
		if err := alterSetting(ctx, env, stmt); err != nil {
			return out, errors.Join(err, t.Rollback(ctx, env, ix, c, out.Undo))
		}
		out.Statements = append(out.Statements, stmt)
		out.After = t.measure(ctx, env, ix, u, map[string]string{u.Setting: strconv.Itoa(value)}, figures)
		out.After[v.setting] = float64(value)
		recall, ok := out.After[recallFigure]
		log.Info("search setting tried", slog.Int("value", value), slog.Float64("recall", recall), slog.Float64("latency_seconds", out.After[latencyFigure]))
		if ctx.Err() != nil {
			return out, errors.Join(ctx.Err(), t.Rollback(ctx, env, ix, c, out.Undo))
		}
		if v.Budget > 0 && out.After[latencyFigure] > v.Budget.Seconds() {
			return out, errors.Join(fmt.Errorf("%s = %d: probe latency %.4fs exceeds latency_budget %s before recall reached %g (at %.4f)",
				v.setting, value, out.After[latencyFigure], v.Budget, v.Target, recall), t.Rollback(ctx, env, ix, c, out.Undo))
		}
		reached = ok && recall >= v.Target
	}
	if filteredMet(out.After) {
		return out, nil
	}
	return out, t.iterate(ctx, env, ix, c, v, iter, u, value, figures, &out)
}

// previousSettings reads, into u, the values the step may change as they are before it (the
// setting, and the iterative scan settings with iter), for its undo.
func previousSettings(ctx context.Context, env Env, u tuneUndo, iter *iterativePlan) (tuneUndo, error) {
	var err error
	if u.Previous, err = readRoleSetting(ctx, env, u); err != nil {
		return u, err
	}
	if iter == nil {
		return u, nil
	}
	for _, s := range []string{iter.mode, iter.limit} {
		prev, err := readRoleSetting(ctx, env, tuneUndo{Scope: u.Scope, Database: u.Database, Role: u.Role, Setting: s})
		if err != nil {
			return u, err
		}
		u.Also = append(u.Also, settingUndo{Setting: s, Previous: prev})
	}
	return u, nil
}

// figures are what the step measures at each value: the configured (or default) figures, the
// probe latency where known, recall, which drives it, and with iter the filtered figures.
func (t *TuneSearch) figures(env Env, ix catalog.Index, c TuneConfig, iter *iterativePlan) ([]string, error) {
	figures := chooseFigures(env, c.Figures, t.Spec().DefaultFigures(ix.Method))
	if slices.Contains(env.Measure.Figures(), latencyFigure) && !slices.Contains(figures, latencyFigure) {
		figures = append(figures, latencyFigure)
	}
	if !slices.Contains(figures, recallFigure) {
		figures = append(figures, recallFigure) // the step is driven by it, whatever else is recorded
	}
	if iter == nil {
		return figures, nil
	}
	for _, f := range []string{filteredShortFigure, filteredRecallFigure, filteredLatencyFigure} {
		if !slices.Contains(env.Measure.Figures(), f) {
			return nil, fmt.Errorf("tune_search with iterative_scan needs the %s figure from the measurer", f)
		}
		if !slices.Contains(figures, f) {
			figures = append(figures, f)
		}
	}
	return figures, nil
}

// measure measures figures on a new session, so the session sees the setting as a new
// client would. With role scope and a pool that logs in as another role, the ALTER ROLE values
// would not apply to the measuring session; they are set in that session instead.
// set holds the values the step has set (setting -> value).
func (t *TuneSearch) measure(ctx context.Context, env Env, ix catalog.Index, u tuneUndo, set map[string]string, figures []string) map[string]float64 {
	var after func(context.Context, *pgx.Conn) error
	if u.Scope == "role" {
		after = func(ctx context.Context, c *pgx.Conn) error {
			for name, value := range set {
				if _, err := c.Exec(ctx, `SELECT set_config($1, $2, false) WHERE current_user <> $3`, name, value, u.Role); err != nil {
					return err
				}
			}
			return nil
		}
	}
	out := map[string]float64{}
	fresh, err := freshPool(ctx, env.Pool, after)
	if err != nil {
		logger(env).Warn("measure on a new session", slog.Any("err", err))
		return out
	}
	defer fresh.Close()
	for k, val := range measureFigures(ctx, env, fresh, ix, figures) {
		out[k] = val
	}
	if _, ok := out[latencyFigure]; !ok {
		// The measurer does not time probes: time a few nearest-neighbour queries here.
		if d, err := probeLatency(ctx, fresh, ix, 10); err == nil {
			out[latencyFigure] = d.Seconds()
		} else {
			logger(env).Warn("time probe queries", slog.String("index", ix.String()), slog.Any("err", err))
		}
	}
	return out
}

// probeLatency returns the mean time of n nearest-neighbour queries (k = 10) on pool, each
// with the vector of another row of the table as query, after one warm-up query.
func probeLatency(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, n int) (time.Duration, error) {
	if ix.Column == "" {
		return 0, fmt.Errorf("%s indexes an expression: no column to probe with", ix)
	}
	op, err := ix.OrderOperator()
	if err != nil {
		return 0, err
	}
	col, tbl := ix.QuotedColumn(), ix.QuotedTable()
	q := "SELECT count(*) FROM (SELECT 1 FROM " + tbl + " ORDER BY " + col + " " + op +
		" (SELECT " + col + " FROM " + tbl + " WHERE " + col + " IS NOT NULL OFFSET $1 LIMIT 1) LIMIT 10) AS knn"
	var total time.Duration
	for i := 0; i <= n; i++ {
		start := time.Now()
		var got int
		if err := pool.QueryRow(ctx, q, i*7).Scan(&got); err != nil {
			return 0, fmt.Errorf("probe query: %w", err)
		}
		if i > 0 {
			total += time.Since(start)
		}
	}
	return total / time.Duration(n), nil
}

// effective returns the value a new session gets now: the setting where it is set, else
// pgvector's default.
func (t *TuneSearch) effective(ctx context.Context, env Env, u tuneUndo) (int, error) {
	return effectiveSetting(ctx, env, u)
}

// effectiveSetting is the value of u's setting a new session of u's scope gets: the stored
// one, else the server's, else pgvector's default.
func effectiveSetting(ctx context.Context, env Env, u tuneUndo) (int, error) {
	if u.Previous != nil {
		if n, err := strconv.Atoi(*u.Previous); err == nil {
			return n, nil
		}
	}
	fresh, err := freshPool(ctx, env.Pool, nil)
	if err != nil {
		return 0, err
	}
	defer fresh.Close()
	var s *string
	// Using the type loads pgvector, which registers the setting with its default; until then
	// the session does not know it.
	if err := fresh.QueryRow(ctx, "SELECT current_setting($1, true) FROM (SELECT '[1]'::vector) AS loaded", u.Setting).Scan(&s); err != nil {
		return 0, fmt.Errorf("read %s: %w", u.Setting, err)
	}
	if s != nil {
		if n, err := strconv.Atoi(*s); err == nil {
			return n, nil
		}
	}
	return pgvectorDefault(u.Setting), nil
}

// alterSetting runs an ALTER DATABASE/ROLE ... SET or RESET. The session loads pgvector first:
// for a setting the session does not know (a placeholder), PostgreSQL allows only superusers
// to store a default; once the library has defined hnsw.ef_search and ivfflat.probes as user
// settings, the database owner may. LOAD itself would need superuser; using the type does not.
func alterSetting(ctx context.Context, env Env, stmt string) error {
	conn, err := env.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT '[1]'::vector"); err != nil {
		return fmt.Errorf("load pgvector: %w", err)
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}

// readRoleSetting reads the current value of u.Setting at u's scope from pg_db_role_setting;
// nil when not set there. It also checks that the database and role exist, as data.
func readRoleSetting(ctx context.Context, env Env, u tuneUndo) (*string, error) {
	var cfg []string
	var dbOK, roleOK bool
	err := env.Pool.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1),
		       $3 = '' OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $3),
		       coalesce((SELECT s.setconfig FROM pg_db_role_setting s
		                 WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = $1)
		                   AND s.setrole = CASE WHEN $2 = 'role' THEN (SELECT oid FROM pg_roles WHERE rolname = $3) ELSE 0 END),
		                '{}')`, u.Database, u.Scope, u.Role).Scan(&dbOK, &roleOK, &cfg)
	if err != nil {
		return nil, fmt.Errorf("read %s setting: %w", u.Scope, err)
	}
	if !dbOK {
		return nil, fmt.Errorf("database %q does not exist", u.Database)
	}
	if !roleOK {
		return nil, fmt.Errorf("parameter %q: role %q does not exist", "role", u.Role)
	}
	for _, kv := range cfg {
		if k, val, ok := strings.Cut(kv, "="); ok && k == u.Setting {
			return &val, nil
		}
	}
	return nil, nil
}

// Rollback implements Strategy: it restores the setting recorded in undo (or removes it when
// it was not set). Running it twice is harmless.
func (t *TuneSearch) Rollback(ctx context.Context, env Env, _ catalog.Index, _ TuneConfig, undo json.RawMessage) error {
	if len(undo) == 0 {
		return nil
	}
	var u tuneUndo
	if err := json.Unmarshal(undo, &u); err != nil {
		return fmt.Errorf("tune_search rollback: decode undo: %w", err)
	}
	if u.Setting != "hnsw.ef_search" && u.Setting != "ivfflat.probes" {
		return fmt.Errorf("tune_search rollback: unknown setting %q in undo", u.Setting)
	}
	if u.Scope != "database" && u.Scope != "role" {
		return fmt.Errorf("tune_search rollback: unknown scope %q in undo", u.Scope)
	}
	stmts, err := u.restoreAll()
	if err != nil {
		return fmt.Errorf("tune_search rollback: %w", err)
	}
	// A rollback must happen even when the step's own deadline is what failed.
	ctx, cancel := cleanupContext(ctx, time.Minute)
	defer cancel()
	for _, stmt := range stmts {
		if err := alterSetting(ctx, env, stmt); err != nil {
			return fmt.Errorf("tune_search rollback: %w", err)
		}
		logger(env).Info("search setting restored", slog.String("statement", stmt))
	}
	return nil
}
