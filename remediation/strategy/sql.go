package strategy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

// SQL runs statements written in the runbook, e.g. the pattern reset of a learning system that
// keeps its own tables. Values come from the alert's labels as bound parameters ($1, $2, ...):
// the runbook names the label for each, and the label's text never becomes SQL.
//
// Parameters:
//
//	statements: [{sql: "DELETE FROM patterns WHERE idx = $1", args: [indexrelname]}, ...]
//	rollback:   [{sql: ..., args: [...]}, ...]      optional, run when a statement or the validation fails
//	validate:   {sql: "SELECT ...", args: [...], min: 1}  optional; one row, one column:
//	            a boolean must be true, a number must be >= min (default 1)
//
// Each statement runs on its own, committed when it succeeds (so VACUUM and other statements
// that refuse a transaction block are allowed): when statement 3 fails, statements 1 and 2 have
// taken effect, which is what the rollback statements are for. Several changes that must be
// atomic belong in one statement (a CTE, or a DO block without parameters).
type SQL struct{ opts Options }

// Spec implements Strategy.
func (*SQL) Spec() Spec {
	return Spec{
		Name:         "sql",
		Description:  "Run runbook SQL with alert labels as bound parameters, validate with a query, run rollback SQL when a step fails.",
		Capabilities: []Capability{RunsUserSQL},
		Params: []Param{
			{Name: "statements", Type: TypeStatements, Required: true, Doc: "Statements run in order, each committed on its own."},
			{Name: "rollback", Type: TypeStatements, Doc: "Statements run when a statement or the validation fails."},
			{Name: "validate", Type: TypeQuery, Doc: "One row, one column: a boolean must be true, a number must be >= min (default 1)."},
			figuresParam,
		},
	}
}

// SQLConfig are the parameters of an sql step.
type SQLConfig struct {
	statements, rollback []sqlStatement
	validate             *sqlValidation
	Figures              []string
}

// Decode implements Strategy.
func (*SQL) Decode(v Values) (SQLConfig, error) {
	c := SQLConfig{Figures: v.Figures()}
	p := Params{}
	for _, k := range []string{"statements", "rollback", "validate"} {
		if r := v.Raw(k); r != nil {
			p[k] = r
		}
	}
	var err error
	if c.statements, err = parseStatements(p, "statements", true); err != nil {
		return c, err
	}
	if c.rollback, err = parseStatements(p, "rollback", false); err != nil {
		return c, err
	}
	if c.validate, err = parseValidation(p); err != nil {
		return c, err
	}
	return c, nil
}

// sqlStatement is one statement with the labels that supply its parameters.
type sqlStatement struct {
	SQL  string   `json:"sql"`
	Args []string `json:"args,omitempty"` // label names in $n order
}

// boundStatement is a statement with its parameter values taken from the labels.
type boundStatement struct {
	SQL    string   `json:"sql"`
	Values []string `json:"values,omitempty"`
}

type sqlValidation struct {
	sqlStatement
	Min float64
}

type sqlUndo struct {
	Rollback []boundStatement `json:"rollback"`
}

func parseStatement(v any, where string) (sqlStatement, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return sqlStatement{}, fmt.Errorf("parameter %q: want a map with sql and args, got %T", where, v)
	}
	var s sqlStatement
	for k, val := range m {
		switch k {
		case "sql":
			str, ok := val.(string)
			if !ok || strings.TrimSpace(str) == "" {
				return s, fmt.Errorf("parameter %q: sql must be a non-empty string", where+".sql")
			}
			s.SQL = str
		case "args":
			args, err := stringsParam(Params{where + ".args": val}, where+".args")
			if err != nil {
				return s, err
			}
			for i, a := range args {
				if a == "" {
					return s, fmt.Errorf("parameter %q: empty label name", fmt.Sprintf("%s.args[%d]", where, i))
				}
			}
			s.Args = args
		case "min":
			if !strings.HasSuffix(where, "validate") {
				return s, fmt.Errorf("parameter %q: unknown key (want sql, args)", where+"."+k)
			}
		default:
			return s, fmt.Errorf("parameter %q: unknown key (want sql, args)", where+"."+k)
		}
	}
	if s.SQL == "" {
		return s, fmt.Errorf("parameter %q: sql is missing", where)
	}
	return s, nil
}

func parseStatements(p Params, name string, required bool) ([]sqlStatement, error) {
	v, ok := p[name]
	if !ok || v == nil {
		if required {
			return nil, fmt.Errorf("parameter %q: required", name)
		}
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("parameter %q: want a list of {sql, args}, got %T", name, v)
	}
	if required && len(list) == 0 {
		return nil, fmt.Errorf("parameter %q: empty", name)
	}
	out := make([]sqlStatement, len(list))
	for i, e := range list {
		s, err := parseStatement(e, fmt.Sprintf("%s[%d]", name, i))
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

func parseValidation(p Params) (*sqlValidation, error) {
	v, ok := p["validate"]
	if !ok || v == nil {
		return nil, nil
	}
	s, err := parseStatement(v, "validate")
	if err != nil {
		return nil, err
	}
	minimum, err := floatParam(v.(map[string]any), "min", 1, -1e18, 1e18)
	if err != nil {
		return nil, fmt.Errorf("parameter %q: %w", "validate.min", err)
	}
	return &sqlValidation{sqlStatement: s, Min: minimum}, nil
}

// bind takes each argument's value from labels; a missing label is an error naming it.
func bind(s sqlStatement, labels map[string]string, where string) (boundStatement, error) {
	b := boundStatement{SQL: s.SQL}
	for i, name := range s.Args {
		v, ok := labels[name]
		if !ok {
			return b, fmt.Errorf("%s: $%d: the alert has no label %q", where, i+1, name)
		}
		b.Values = append(b.Values, v)
	}
	return b, nil
}

func bindAll(ss []sqlStatement, labels map[string]string, name string) ([]boundStatement, error) {
	out := make([]boundStatement, len(ss))
	for i, s := range ss {
		b, err := bind(s, labels, fmt.Sprintf("%s[%d]", name, i))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (b boundStatement) args() []any {
	out := make([]any, len(b.Values))
	for i, v := range b.Values {
		out[i] = v
	}
	return out
}

// Plan implements Strategy.
func (*SQL) Plan(_ context.Context, env Env, ix catalog.Index, st SQLConfig) (Impact, error) {
	if _, err := bindAll(st.statements, env.Labels, "statements"); err != nil {
		return Impact{}, err
	}
	im := Impact{LockLevel: "depends on the statements", IndexBytes: ix.SizeBytes,
		Notes: "runbook SQL with alert labels bound as parameters"}
	for _, s := range st.statements {
		im.Statements = append(im.Statements, s.SQL)
	}
	return im, nil
}

// Run implements Strategy.
func (q *SQL) Run(ctx context.Context, env Env, ix catalog.Index, st SQLConfig) (Outcome, error) {
	stmts, err := bindAll(st.statements, env.Labels, "statements")
	if err != nil {
		return Outcome{}, err
	}
	rollback, err := bindAll(st.rollback, env.Labels, "rollback")
	if err != nil {
		return Outcome{}, err
	}
	var validate *boundStatement
	if st.validate != nil {
		b, err := bind(st.validate.sqlStatement, env.Labels, "validate")
		if err != nil {
			return Outcome{}, err
		}
		validate = &b
	}
	var out Outcome
	out.Undo, _ = json.Marshal(sqlUndo{Rollback: rollback})
	figures := chooseFigures(env, st.Figures, nil)
	out.Before = figuresBefore(ctx, env, ix, figures)

	conn, err := openSession(ctx, env.Pool)
	if err != nil {
		return out, err
	}
	defer closeSession(conn)
	log := logger(env).With(slog.String("strategy", "sql"), slog.String("index", ix.String()))
	fail := func(err error) (Outcome, error) {
		return out, errors.Join(err, q.Rollback(ctx, env, ix, st, out.Undo))
	}
	for i, s := range stmts {
		if _, err := conn.Exec(ctx, s.SQL, s.args()...); err != nil {
			return fail(fmt.Errorf("statements[%d]: %w", i, err))
		}
		out.Statements = append(out.Statements, s.SQL)
		log.Info("runbook statement done", slog.Int("n", i))
	}
	if validate != nil {
		var v any
		if err := conn.QueryRow(ctx, validate.SQL, validate.args()...).Scan(&v); err != nil {
			return fail(fmt.Errorf("validate: %w", err))
		}
		ok, err := passes(v, st.validate.Min)
		if err != nil {
			return fail(fmt.Errorf("validate: %w", err))
		}
		if !ok {
			return fail(fmt.Errorf("validate: query returned %v, want true or >= %g", v, st.validate.Min))
		}
	}
	out.After = measureFigures(ctx, env, env.Pool, ix, figures)
	return out, nil
}

// passes says whether a validation result is a success: true, or a number >= minimum.
func passes(v any, minimum float64) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case int16:
		return float64(x) >= minimum, nil
	case int32:
		return float64(x) >= minimum, nil
	case int64:
		return float64(x) >= minimum, nil
	case float32:
		return float64(x) >= minimum, nil
	case float64:
		return x >= minimum, nil
	case pgtype.Numeric:
		f, err := x.Float64Value()
		if err != nil || !f.Valid {
			return false, fmt.Errorf("numeric result %v is not a number", x)
		}
		return f.Float64 >= minimum, nil
	case *big.Int:
		return float64(x.Int64()) >= minimum, nil
	case nil:
		return false, errors.New("query returned NULL")
	}
	return false, fmt.Errorf("query returned a %T, want a boolean or a number", v)
}

// Rollback implements Strategy: it runs the step's rollback statements with the label values
// recorded when it ran.
func (q *SQL) Rollback(ctx context.Context, env Env, _ catalog.Index, _ SQLConfig, undo json.RawMessage) error {
	if len(undo) == 0 {
		return nil
	}
	var u sqlUndo
	if err := json.Unmarshal(undo, &u); err != nil {
		return fmt.Errorf("sql rollback: decode undo: %w", err)
	}
	if len(u.Rollback) == 0 {
		return nil
	}
	ctx, cancel := cleanupContext(ctx, q.opts.cleanupTimeout())
	defer cancel()
	conn, err := openSession(ctx, env.Pool)
	if err != nil {
		return fmt.Errorf("sql rollback: %w", err)
	}
	defer closeSession(conn)
	for i, s := range u.Rollback {
		if _, err := conn.Exec(ctx, s.SQL, s.args()...); err != nil {
			return fmt.Errorf("sql rollback[%d]: %w", i, err)
		}
	}
	logger(env).Info("runbook rollback statements done", slog.Int("count", len(u.Rollback)))
	return nil
}
