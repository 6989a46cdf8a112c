package measure

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Querier is what the measurements that query need of a connection, pool or transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// UsesIndex reports whether the planner scans the index called index (unqualified, as the
// catalog names it) for the query sql with args, from EXPLAIN (FORMAT JSON). sql is built by
// the caller from catalog-quoted identifiers and constants; args are bound as parameters. An
// index name is unique within its schema and a query's scans are of its tables' own indexes,
// so the name alone identifies the index.
func UsesIndex(ctx context.Context, q Querier, index, sql string, args ...any) (bool, error) {
	var raw []byte
	if err := q.QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+sql, args...).Scan(&raw); err != nil {
		return false, fmt.Errorf("explain: %w", err)
	}
	return PlanScans(raw, index)
}

// planNode is the part of a node of EXPLAIN (FORMAT JSON) output that PlanScans reads: an
// Index Scan, Index Only Scan or Bitmap Index Scan names its index, and a node's children are
// its Plans.
type planNode struct {
	IndexName string     `json:"Index Name"`
	Plans     []planNode `json:"Plans"`
}

// PlanScans reports whether EXPLAIN (FORMAT JSON) output raw has a node, at any depth, that
// scans the index called index.
func PlanScans(raw []byte, index string) (bool, error) {
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &plans); err != nil {
		return false, fmt.Errorf("explain: decode plan: %w", err)
	}
	var scans func(n planNode) bool
	scans = func(n planNode) bool {
		return n.IndexName == index || slices.ContainsFunc(n.Plans, scans)
	}
	for _, p := range plans {
		if scans(p.Plan) {
			return true, nil
		}
	}
	return false, nil
}
