package strategy

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/measure"
)

// Retrain rebuilds an IVFFlat index with lists recomputed for today's row count, so k-means
// runs again on today's data: IVFFlat centers never move after a build, and inserts that
// drifted away from them pile up in a few lists.
//
// REINDEX cannot change lists, so the sequence is: CREATE INDEX CONCURRENTLY <name>_vhnew with
// the same key, operator class and predicate and the new lists; check it is valid; swap the
// names in one short transaction (both renames or neither; lock_timeout bounds the wait for the
// lock so it never queues in front of traffic); DROP INDEX CONCURRENTLY the old one, now
// <name>_vhold. Until the swap the original index serves untouched, and a failure before it
// only drops <name>_vhnew. Dropping the old index before the new one is in place, as the naive
// sequence does, would leave the table without an index in between.
type Retrain struct{ opts Options }

// RetrainConfig are the parameters of an ivfflat_retrain step.
type RetrainConfig struct {
	MinLists, MaxLists    int
	KeepProbeShare        bool
	MaxMaintenanceWorkMem int64 // bytes
	Figures               []string
}

// Spec implements Strategy.
func (*Retrain) Spec() Spec {
	return Spec{
		Name:         "ivfflat_retrain",
		Description:  "Rebuild an IVFFlat index concurrently with lists recomputed for today's rows (rows/1000, sqrt above 1M) and swap it in.",
		Methods:      []string{"ivfflat"},
		Capabilities: []Capability{RecordsReadingAfter, CopiesVisibleRows},
		Params: []Param{
			{Name: "min_lists", Type: TypeInt, Default: "1", Min: "1", Max: strconv.Itoa(measure.MaxLists), Doc: "Lower bound of the recomputed lists."},
			{Name: "max_lists", Type: TypeInt, Default: strconv.Itoa(measure.MaxLists), Min: "1", Max: strconv.Itoa(measure.MaxLists), Doc: "Upper bound of the recomputed lists (pgvector's limit is 32768)."},
			{Name: "keep_probe_share", Type: TypeBool, Default: "true", Doc: "When the lists grow, raise the database's ivfflat.probes in proportion (never lower it), so searches probe the same share of the index as before and keep its recall; rollback restores the setting. false leaves ivfflat.probes alone: more lists at the same probes search a smaller share, faster and with lower recall."},
			maxMaintenanceWorkMemParam,
			figuresParam,
		},
		Figures: ivfflatFigures(),
	}
}

// ivfflatFigures are the figures recorded for an IVFFlat rebuild.
func ivfflatFigures() map[string][]string {
	f := withIndexFigures()
	delete(f, "hnsw")
	return f
}

// Decode implements Strategy.
func (*Retrain) Decode(v Values) (RetrainConfig, error) {
	c := RetrainConfig{MinLists: v.Int("min_lists"), MaxLists: v.Int("max_lists"), KeepProbeShare: v.Bool("keep_probe_share"),
		MaxMaintenanceWorkMem: v.Size(maxMaintenanceWorkMemParam.Name), Figures: v.Figures()}
	if c.MinLists > c.MaxLists {
		return c, fmt.Errorf("parameter %q: %d is above max_lists %d", "min_lists", c.MinLists, c.MaxLists)
	}
	return c, nil
}

// lists returns pgvector's advice for the lists of an index over rows rows
// (measure.RecommendedLists), within [c.MinLists, c.MaxLists].
func (c RetrainConfig) lists(rows float64) int {
	return min(max(measure.RecommendedLists(rows), c.MinLists), c.MaxLists)
}

type retrainUndo struct {
	PreviousLists int `json:"previous_lists"`
	// Probes is the database's ivfflat.probes as it was before keepProbeShare raised it; nil
	// when the step did not change it.
	Probes *tuneUndo `json:"probes,omitempty"`
}

// Plan implements Strategy.
func (r *Retrain) Plan(ctx context.Context, env Env, ix catalog.Index, c RetrainConfig) (Impact, error) {
	if ix.Method != "ivfflat" {
		return Impact{}, fmt.Errorf("%s is a %s index: %s applies to ivfflat only", ix, ix.Method, "ivfflat_retrain")
	}
	if err := replaceable(ix, "ivfflat_retrain"); err != nil {
		return Impact{}, err
	}
	rows, err := tableRows(ctx, env.Pool, ix)
	if err != nil {
		return Impact{}, err
	}
	lists := c.lists(rows)
	def, err := indexDefinition(ctx, env.Pool, ix)
	if err != nil {
		return Impact{}, err
	}
	newName, oldName := tempIndexName(ix.Name, "_vhnew"), tempIndexName(ix.Name, "_vhold")
	bp, err := r.planBuild(ctx, env, ix, lists, c.MaxMaintenanceWorkMem)
	if err != nil {
		return Impact{}, err
	}
	return Impact{
		LockLevel:       "SHARE UPDATE EXCLUSIVE",
		IndexBytes:      ix.SizeBytes,
		DiskBytesNeeded: ix.SizeBytes,
		Statements: []string{
			def.create(ix, newName, lists),
			"ALTER INDEX " + ix.QuotedIndex() + " RENAME TO " + pgx.Identifier{oldName}.Sanitize(),
			"ALTER INDEX " + pgx.Identifier{ix.Schema, newName}.Sanitize() + " RENAME TO " + pgx.Identifier{ix.Name}.Sanitize(),
			"DROP INDEX CONCURRENTLY IF EXISTS " + pgx.Identifier{ix.Schema, oldName}.Sanitize(),
		},
		Notes: fmt.Sprintf("lists %d -> %d for ~%.0f rows; build: %s", ix.Lists, lists, rows, bp.note()),
	}, nil
}

// planBuild sizes and guards the build of ix with lists: the new index exists next to the old
// one until the old one is dropped.
func (r *Retrain) planBuild(ctx context.Context, env Env, ix catalog.Index, lists int, maxMemory int64) (buildPlan, error) {
	memory, err := buildMemory(ctx, env, ix, lists)
	if err != nil {
		return buildPlan{}, err
	}
	return planBuild(ctx, env, ix, fmt.Sprintf("retrain of %s (lists = %d)", ix.QuotedIndex(), lists), memory, maxMemory, ix.SizeBytes)
}

// Run implements Strategy.
func (r *Retrain) Run(ctx context.Context, env Env, ix catalog.Index, c RetrainConfig) (Outcome, error) {
	if ix.Method != "ivfflat" {
		return Outcome{}, fmt.Errorf("%s is a %s index: %s applies to ivfflat only", ix, ix.Method, "ivfflat_retrain")
	}
	if err := replaceable(ix, "ivfflat_retrain"); err != nil {
		return Outcome{}, err
	}
	// The index the alert named may have been rebuilt since (new OID): work on today's.
	cur, err := catalog.Resolve(ctx, env.Pool, ix.Schema, ix.Name)
	if err != nil {
		return Outcome{}, err
	}
	rows, err := tableRows(ctx, env.Pool, cur)
	if err != nil {
		return Outcome{}, err
	}
	lists := c.lists(rows)
	figures := chooseFigures(env, c.Figures, r.Spec().DefaultFigures(cur.Method))
	out := Outcome{Before: figuresBefore(ctx, env, cur, figures)}
	out.Undo, _ = json.Marshal(retrainUndo{PreviousLists: cur.Lists})
	if out.Before == nil {
		out.Before = map[string]float64{}
	}
	out.Before["lists"] = float64(cur.Lists)
	bp, err := r.planBuild(ctx, env, cur, lists, c.MaxMaintenanceWorkMem)
	if err != nil {
		return out, err
	}
	// The probes are raised before the swap, so no session opened after it searches the new
	// lists at the old probes; sessions already open keep their setting until they reconnect.
	probes := -1 // the database's ivfflat.probes after the step; -1 when not looked at
	var stmts []string
	if c.KeepProbeShare {
		from, to, stmt, undo, err := keepProbeShare(ctx, env, cur, cur.Lists, lists)
		if err != nil {
			return out, err
		}
		out.Before["ivfflat.probes"], probes = float64(from), to
		if stmt != "" {
			out.Undo, _ = json.Marshal(retrainUndo{PreviousLists: cur.Lists, Probes: undo})
			stmts = append(stmts, stmt)
		}
	}
	built, after, err := buildAndSwap(ctx, r.opts, env, cur, lists, bp)
	out.Statements = append(stmts, built...)
	if err != nil {
		return out, err
	}
	// Measured on new sessions, which have the database's settings as they are now.
	fresh, err := freshPool(ctx, env.Pool, nil)
	if err != nil {
		return out, err
	}
	defer fresh.Close()
	out.After = measureFigures(ctx, env, fresh, after, figures)
	if out.After == nil {
		out.After = map[string]float64{}
	}
	out.After["lists"] = float64(after.Lists)
	if probes >= 0 {
		out.After["ivfflat.probes"] = float64(probes)
	}
	return out, nil
}

// keepProbeShare raises the database's ivfflat.probes after ix's lists went from before to
// after, so that a search probes the same share of the index as it did: probes × after /
// before, rounded up, at most after. It never lowers the setting. It returns the setting
// before and after, the statement it ran ("" when none) and what restores the setting.
func keepProbeShare(ctx context.Context, env Env, ix catalog.Index, before, after int) (from, to int, stmt string, undo *tuneUndo, err error) {
	u := tuneUndo{Scope: "database", Database: ix.Datname, Setting: "ivfflat.probes"}
	if u.Previous, err = readRoleSetting(ctx, env, u); err != nil {
		return 0, 0, "", nil, err
	}
	if from, err = effectiveSetting(ctx, env, u); err != nil {
		return 0, 0, "", nil, err
	}
	if before <= 0 || after <= before {
		return from, from, "", nil, nil
	}
	to = min(int(math.Ceil(float64(from)*float64(after)/float64(before))), after)
	if to <= from {
		return from, from, "", nil, nil
	}
	stmt = u.setStatement(to)
	if err := alterSetting(ctx, env, stmt); err != nil {
		return from, from, "", nil, fmt.Errorf("keep the probed share (keep_probe_share): %w", err)
	}
	return from, to, stmt, &u, nil
}

// Rollback implements Strategy: it rebuilds the index with the lists it had before. The old
// centers themselves are gone with the old index; the rebuilt one is trained on today's rows.
func (r *Retrain) Rollback(ctx context.Context, env Env, ix catalog.Index, c RetrainConfig, undo json.RawMessage) error {
	if len(undo) == 0 {
		return nil
	}
	var u retrainUndo
	if err := json.Unmarshal(undo, &u); err != nil {
		return fmt.Errorf("ivfflat_retrain rollback: decode undo: %w", err)
	}
	if u.Probes != nil {
		stmt, err := u.Probes.restoreStatement()
		if err == nil {
			err = alterSetting(ctx, env, stmt)
		}
		if err != nil {
			return fmt.Errorf("ivfflat_retrain rollback: restore ivfflat.probes: %w", err)
		}
	}
	if u.PreviousLists <= 0 {
		return nil
	}
	cur, err := catalog.Resolve(ctx, env.Pool, ix.Schema, ix.Name)
	if err != nil {
		return fmt.Errorf("ivfflat_retrain rollback: %w", err)
	}
	if cur.Lists == u.PreviousLists && cur.Valid {
		return nil
	}
	bp, err := r.planBuild(ctx, env, cur, u.PreviousLists, c.MaxMaintenanceWorkMem)
	if err != nil {
		return fmt.Errorf("ivfflat_retrain rollback: %w", err)
	}
	_, _, err = buildAndSwap(ctx, r.opts, env, cur, u.PreviousLists, bp)
	return err
}

// swapNames renames ix to oldName and newIx to ix's name in one transaction, waiting at most
// 5 s for the lock (a queued ACCESS EXCLUSIVE lock would stall the application's queries
// behind it), and returns the statements.
func swapNames(ctx context.Context, conn *pgx.Conn, ix catalog.Index, newIx relIndex, oldName string) ([]string, error) {
	swap := []string{
		"SET LOCAL lock_timeout = '5s'",
		"ALTER INDEX " + ix.QuotedIndex() + " RENAME TO " + pgx.Identifier{oldName}.Sanitize(),
		"ALTER INDEX " + newIx.quoted() + " RENAME TO " + pgx.Identifier{ix.Name}.Sanitize(),
	}
	return swap, pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, s := range swap {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
}

// indexDef is the part of an index's definition a rebuild keeps, as the server deparses it.
type indexDef struct {
	key        string // column or expression, e.g. embedding or (emb::vector(3))
	opclass    string // schema-qualified, quoted
	predicate  string // WHERE clause of a partial index, or empty
	tablespace string // quoted, or empty for the database's default
}

func indexDefinition(ctx context.Context, q querier, ix catalog.Index) (indexDef, error) {
	var d indexDef
	err := q.QueryRow(ctx, `SELECT pg_get_indexdef(i.indexrelid, 1, true),
			quote_ident(opn.nspname) || '.' || quote_ident(opc.opcname),
			coalesce(pg_get_expr(i.indpred, i.indrelid, true), ''),
			coalesce((SELECT quote_ident(spcname) FROM pg_tablespace WHERE oid = c.reltablespace), '')
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_opclass opc ON opc.oid = i.indclass[0]
		JOIN pg_namespace opn ON opn.oid = opc.opcnamespace
		WHERE i.indexrelid = $1`, ix.OID).Scan(&d.key, &d.opclass, &d.predicate, &d.tablespace)
	if err != nil {
		return d, fmt.Errorf("definition of %s: %w", ix.QuotedIndex(), err)
	}
	return d, nil
}

func (d indexDef) create(ix catalog.Index, name string, lists int) string {
	s := "CREATE INDEX CONCURRENTLY " + pgx.Identifier{name}.Sanitize() + " ON " + ix.QuotedTable() +
		" USING ivfflat (" + d.key + " " + d.opclass + ") WITH (lists = " + strconv.Itoa(lists) + ")"
	if d.tablespace != "" {
		s += " TABLESPACE " + d.tablespace
	}
	if d.predicate != "" {
		s += " WHERE " + d.predicate
	}
	return s
}

// tempIndexName appends suffix to name, shortening name so the result fits PostgreSQL's
// 63-byte identifiers (a longer one would be truncated by the server and could collide).
func tempIndexName(name, suffix string) string {
	const maxLen = 63
	for len(name)+len(suffix) > maxLen {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name + suffix
}
