// Package catalog finds pgvector indexes in a database's system catalog. It is the only way
// vectorheal turns a name (from a config pattern, an alert label or an API call) into an index:
// names are looked up as data, never spliced into SQL, and the identifiers used to build
// maintenance statements come from the catalog row, quoted.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/measure"
)

// Querier is what catalog needs of a connection or pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Index is one pgvector index as the catalog describes it.
type Index struct {
	OID      uint32
	Datname  string
	Schema   string // schemaname of index and table
	Table    string // relname
	Name     string // indexrelname
	TableOID uint32
	Method   string // hnsw or ivfflat
	Opclass  string // e.g. vector_l2_ops
	// Operator is the operator class's ordering (distance) operator as the catalog names it,
	// schema-qualified so that no search_path can put another operator in its place:
	// OPERATOR(public.<->), the schema quoted where it needs to be. Empty when the class has
	// none.
	Operator   string
	Column     string // indexed column; empty for an expression index
	ColumnType string // e.g. vector(128); empty for an expression index
	// Expression is the indexed expression of an expression index as PostgreSQL prints it
	// (pg_get_indexdef), e.g. ((embedding)::halfvec(8)); empty for a column index.
	Expression string
	// KeyType is the type of the indexed value (column or expression), e.g. halfvec(8).
	KeyType string
	// Predicate is the WHERE clause of a partial index as PostgreSQL prints it (pg_get_expr of
	// pg_index.indpred), e.g. (category = 1); empty for an index over every row.
	Predicate  string
	Dimensions int // from the indexed value's type modifier; 0 when unknown
	// Partitioned is true for the index of a partitioned table (relkind 'I'): it has no
	// storage of its own; each partition has an index of its own attached to it.
	Partitioned bool
	// ParentSchema, ParentIndex and ParentTable name, for the index of a partition, the
	// partitioned index it is attached to (pg_inherits) and that index's table; empty otherwise.
	ParentSchema string
	ParentIndex  string
	ParentTable  string
	Valid        bool // pg_index.indisvalid
	Relfilenode  uint32
	SizeBytes    int64
	// Options from WITH (...), defaulted as pgvector does: m=16, ef_construction=64 for HNSW,
	// lists=100 for IVFFlat.
	M              int
	EfConstruction int
	Lists          int
}

// QuotedIndex returns schema.index quoted for use in SQL.
func (ix Index) QuotedIndex() string { return pgx.Identifier{ix.Schema, ix.Name}.Sanitize() }

// QuotedTable returns schema.table quoted for use in SQL.
func (ix Index) QuotedTable() string { return pgx.Identifier{ix.Schema, ix.Table}.Sanitize() }

// QuotedColumn returns the indexed column quoted for use in SQL.
func (ix Index) QuotedColumn() string { return pgx.Identifier{ix.Column}.Sanitize() }

// Key returns the SQL of the indexed value: the quoted column, or the parenthesised
// expression of an expression index. Queries ordering by it can use the index; the
// expression is the server's own text of it, never a name from a label or configuration.
func (ix Index) Key() string {
	if ix.Column == "" && ix.Expression != "" {
		return "(" + ix.Expression + ")"
	}
	return ix.QuotedColumn()
}

// Where returns the partial index's predicate, parenthesised, for a WHERE clause ("" for an
// index over every row). A query must repeat it for the planner to use the index.
func (ix Index) Where() string {
	if ix.Predicate == "" {
		return ""
	}
	return "(" + ix.Predicate + ")"
}

// OrderOperator returns the operator a nearest-neighbour query of the index orders by
// (Operator), or an error naming the operator class when the catalog gave it none.
func (ix Index) OrderOperator() (string, error) {
	if ix.Operator == "" {
		return "", fmt.Errorf("%s: operator class %s has no ordering operator in the catalog", ix, ix.Opclass)
	}
	return ix.Operator, nil
}

// String is schema.index, unquoted, for logs.
func (ix Index) String() string { return ix.Schema + "." + ix.Name }

// ErrNotFound means no index of that name exists; ErrNotVector that it is not a pgvector index.
var (
	ErrNotFound  = errors.New("no such index")
	ErrNotVector = errors.New("not a pgvector (hnsw or ivfflat) index")
)

// listSQL reads the type and type modifier of the indexed value from the index's own first
// attribute: for a column it is the column's, for an expression the expression's (so
// (embedding::halfvec(8)) has 8 dimensions). Expression and predicate are deparsed without
// pretty-printing, fully parenthesised, so they can be embedded in a query as they are.
const listSQL = `
SELECT c.oid, current_database(), n.nspname, t.relname, c.relname, t.oid, am.amname, opc.opcname,
       coalesce(a.attname, ''), coalesce(format_type(a.atttypid, a.atttypmod), ''),
       CASE WHEN i.indkey[0] = 0 THEN pg_get_indexdef(c.oid, 1, false) ELSE '' END,
       format_type(ka.atttypid, ka.atttypmod), ka.atttypmod,
       coalesce(pg_get_expr(i.indpred, i.indrelid), ''),
       c.relkind = 'I', coalesce(pn.nspname, ''), coalesce(pc.relname, ''), coalesce(pt.relname, ''),
       i.indisvalid, c.relfilenode, coalesce(c.reloptions, '{}'),
       coalesce((SELECT format('OPERATOR(%I.%s)', opn.nspname, op.oprname)
                 FROM pg_amop ao
                 JOIN pg_operator op ON op.oid = ao.amopopr
                 JOIN pg_namespace opn ON opn.oid = op.oprnamespace
                 WHERE ao.amopfamily = opc.opcfamily AND ao.amoppurpose = 'o'
                   AND ao.amoplefttype = opc.opcintype AND ao.amoprighttype = opc.opcintype
                 ORDER BY ao.amopstrategy LIMIT 1), '')
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am am ON am.oid = c.relam
JOIN pg_opclass opc ON opc.oid = i.indclass[0]
JOIN pg_attribute ka ON ka.attrelid = c.oid AND ka.attnum = 1
LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0] AND i.indkey[0] <> 0
LEFT JOIN pg_inherits inh ON inh.inhrelid = c.oid
LEFT JOIN pg_class pc ON pc.oid = inh.inhparent
LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
LEFT JOIN pg_index pi ON pi.indexrelid = pc.oid
LEFT JOIN pg_class pt ON pt.oid = pi.indrelid
WHERE am.amname IN ('hnsw', 'ivfflat')`

// List returns every pgvector index of the connected database, valid or not.
func List(ctx context.Context, q Querier) ([]Index, error) {
	rows, err := q.Query(ctx, listSQL+" ORDER BY n.nspname, c.relname")
	if err != nil {
		return nil, fmt.Errorf("list vector indexes: %w", err)
	}
	defer rows.Close()
	var out []Index
	for rows.Next() {
		ix, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, ix)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list vector indexes: %w", err)
	}
	rows.Close()
	if err := withSizes(ctx, q, out); err != nil {
		return nil, fmt.Errorf("list vector indexes: %w", err)
	}
	return out, nil
}

// withSizes sets the SizeBytes of each index (measure.Sizes); the listing query's rows must be
// closed, as a connection runs one query at a time.
func withSizes(ctx context.Context, q Querier, ixs []Index) error {
	oids := make([]uint32, len(ixs))
	for i, ix := range ixs {
		oids[i] = ix.OID
	}
	sizes, err := measure.Sizes(ctx, q, oids)
	if err != nil {
		return err
	}
	for i := range ixs {
		ixs[i].SizeBytes = sizes[ixs[i].OID].Bytes
	}
	return nil
}

// Resolve finds the index schema.name. It returns ErrNotFound when there is no relation of
// that name and ErrNotVector when it is not a pgvector index.
func Resolve(ctx context.Context, q Querier, schema, name string) (Index, error) {
	rows, err := q.Query(ctx, listSQL+" AND n.nspname = $1 AND c.relname = $2", schema, name)
	if err != nil {
		return Index{}, fmt.Errorf("resolve index: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		ix, err := scan(rows)
		if err != nil {
			return Index{}, err
		}
		rows.Close()
		one := []Index{ix}
		if err := withSizes(ctx, q, one); err != nil {
			return Index{}, fmt.Errorf("resolve index: %w", err)
		}
		return one[0], nil
	}
	if err := rows.Err(); err != nil {
		return Index{}, fmt.Errorf("resolve index: %w", err)
	}
	var isIndex bool
	err = q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('i', 'I'))`, schema, name).Scan(&isIndex)
	if err != nil {
		return Index{}, fmt.Errorf("resolve index: %w", err)
	}
	if isIndex {
		return Index{}, fmt.Errorf("%s.%s: %w", schema, name, ErrNotVector)
	}
	return Index{}, fmt.Errorf("%s.%s: %w", schema, name, ErrNotFound)
}

// Partitions returns the indexes attached to parent, a partitioned table's index: one per
// partition (pg_inherits), sorted by name.
func Partitions(ctx context.Context, q Querier, parent Index) ([]Index, error) {
	rows, err := q.Query(ctx, listSQL+" AND inh.inhparent = $1 ORDER BY n.nspname, c.relname", parent.OID)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", parent, err)
	}
	defer rows.Close()
	var out []Index
	for rows.Next() {
		ix, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, ix)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", parent, err)
	}
	rows.Close()
	if err := withSizes(ctx, q, out); err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", parent, err)
	}
	return out, nil
}

func scan(rows pgx.Rows) (Index, error) {
	var ix Index
	var typmod int32
	var opts []string
	if err := rows.Scan(&ix.OID, &ix.Datname, &ix.Schema, &ix.Table, &ix.Name, &ix.TableOID, &ix.Method,
		&ix.Opclass, &ix.Column, &ix.ColumnType, &ix.Expression, &ix.KeyType, &typmod, &ix.Predicate,
		&ix.Partitioned, &ix.ParentSchema, &ix.ParentIndex, &ix.ParentTable,
		&ix.Valid, &ix.Relfilenode, &opts, &ix.Operator); err != nil {
		return Index{}, fmt.Errorf("scan vector index: %w", err)
	}
	if typmod > 0 {
		ix.Dimensions = int(typmod)
	}
	ix.M, ix.EfConstruction, ix.Lists = 16, 64, 100
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		n, err := strconv.Atoi(v)
		if err != nil {
			continue
		}
		switch k {
		case "m":
			ix.M = n
		case "ef_construction":
			ix.EfConstruction = n
		case "lists":
			ix.Lists = n
		}
	}
	if ix.Method != "hnsw" {
		ix.M, ix.EfConstruction = 0, 0
	}
	if ix.Method != "ivfflat" {
		ix.Lists = 0
	}
	return ix, nil
}

// rowEstimateSQL reads what RowEstimate scales: the rows and pages of the table's last
// ANALYZE (NULL where it has not measured the table: never analysed, or analysed empty) and the
// statistics collector's live rows.
const rowEstimateSQL = `
SELECT CASE WHEN c.reltuples > 0 AND c.relpages > 0 THEN c.reltuples::float8 / c.relpages ELSE NULL END,
       coalesce(s.n_live_tup, 0)::float8
FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.oid = $1`

// RowEstimate returns the estimated rows of the table with OID table now, as the planner
// estimates them: the density of the last ANALYZE (rows per page) scaled to the table's
// current size (measure.SizeOf), so a table that grew since then is not mistaken for its old
// size. The statistics collector's live rows count only where ANALYZE has not measured the
// table: right after a bulk load that counter may still add the load's inserts on top of what
// ANALYZE counted, doubling it. It returns false when neither knows the rows.
func RowEstimate(ctx context.Context, q Querier, table uint32) (float64, bool, error) {
	var density *float64
	var live float64
	if err := q.QueryRow(ctx, rowEstimateSQL, table).Scan(&density, &live); err != nil {
		return 0, false, fmt.Errorf("row estimate: %w", err)
	}
	if density == nil {
		return live, live > 0, nil
	}
	size, err := measure.SizeOf(ctx, q, table)
	if err != nil {
		return 0, false, fmt.Errorf("row estimate: %w", err)
	}
	return *density * float64(size.Blocks), true, nil
}
