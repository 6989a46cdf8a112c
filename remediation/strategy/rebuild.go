package strategy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// checkNoBuild fails with ErrBusy when pg_stat_progress_create_index shows a build on the
// table of ix. Other sessions' rows are visible only to superusers and pg_read_all_stats
// members, hence that grant in docs/operations.md.
func checkNoBuild(ctx context.Context, q querier, ix catalog.Index) error {
	var pid int64
	var command string
	err := q.QueryRow(ctx, `SELECT pid, command FROM pg_stat_progress_create_index
		WHERE relid = $1 AND pid <> pg_backend_pid() LIMIT 1`, ix.TableOID).Scan(&pid, &command)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check running index builds: %w", err)
	}
	return fmt.Errorf("%s: %w (%s, pid %d)", ix.QuotedTable(), ErrBusy, command, pid)
}

// relIndex names one index of the table: identifiers read from the catalog.
type relIndex struct {
	OID    uint32
	Schema string
	Name   string
	Valid  bool
}

func (r relIndex) quoted() string { return pgx.Identifier{r.Schema, r.Name}.Sanitize() }

// tableIndexes lists every index of the table of ix.
func tableIndexes(ctx context.Context, q querier, ix catalog.Index) ([]relIndex, error) {
	rows, err := q.Query(ctx, `SELECT c.oid, n.nspname, c.relname, i.indisvalid
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE i.indrelid = $1`, ix.TableOID)
	if err != nil {
		return nil, fmt.Errorf("list indexes of %s: %w", ix.QuotedTable(), err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (relIndex, error) {
		var x relIndex
		return x, r.Scan(&x.OID, &x.Schema, &x.Name, &x.Valid)
	})
}

// ccLeftover matches the names REINDEX CONCURRENTLY gives its temporary indexes:
// <name>_ccnew, <name>_ccold, with a number when taken, the base truncated to fit 63 bytes.
var ccLeftover = regexp.MustCompile(`^(.*)_cc(new|old)[0-9]*$`)

// isReindexLeftover says whether r is an INVALID temporary index that a REINDEX CONCURRENTLY of
// ix left behind.
func isReindexLeftover(r relIndex, ix catalog.Index) bool {
	if r.Valid || r.OID == ix.OID {
		return false
	}
	m := ccLeftover.FindStringSubmatch(r.Name)
	if m == nil || m[1] == "" {
		return false
	}
	if m[1] == ix.Name {
		return true
	}
	// The server shortens the base so the name fits 63 bytes (cutting at a character
	// boundary): only then may the base be a prefix rather than the whole name.
	return len(r.Name) > 63-4 && strings.HasPrefix(ix.Name, m[1])
}

// leftoverOf returns the name of the valid index of which ix is an INVALID REINDEX
// CONCURRENTLY leftover, or "" when ix is not one.
func leftoverOf(ctx context.Context, q querier, ix catalog.Index) (string, error) {
	if ix.Valid || !ccLeftover.MatchString(ix.Name) {
		return "", nil
	}
	all, err := tableIndexes(ctx, q, ix)
	if err != nil {
		return "", err
	}
	self := relIndex{OID: ix.OID, Schema: ix.Schema, Name: ix.Name}
	for _, e := range all {
		if e.Valid && e.OID != ix.OID && isReindexLeftover(self, catalog.Index{OID: e.OID, Name: e.Name}) {
			return e.Schema + "." + e.Name, nil
		}
	}
	return "", nil
}

// dropIndexes drops each index with DROP INDEX CONCURRENTLY, which cannot run in a
// transaction block and does not block reads or writes of the table.
func dropIndexes(ctx context.Context, conn *pgx.Conn, env Env, ixs []relIndex) ([]string, error) {
	var done []string
	for _, r := range ixs {
		stmt := "DROP INDEX CONCURRENTLY IF EXISTS " + r.quoted()
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return done, fmt.Errorf("drop leftover index %s: %w", r.quoted(), err)
		}
		logger(env).Info("dropped leftover index", slog.String("index", r.Schema+"."+r.Name))
		done = append(done, stmt)
	}
	return done, nil
}

// hnswBuildMemory estimates the memory pgvector needs to keep the whole HNSW graph of ix in
// memory while building it: per element its tuple (header, ten heap TIDs, the vector) and its
// neighbour candidates (2m on layer 0, m above, about 1/ln(m) extra layers), with pointers. When
// maintenance_work_mem is smaller the build spills to disk pages and slows badly.
func hnswBuildMemory(ix catalog.Index, rows float64) int64 {
	m := ix.M
	if m <= 0 {
		m = 16
	}
	dim := ix.Dimensions
	if dim <= 0 {
		dim = 1
	}
	perElement := 128.0 + 4*float64(dim) + 24*(2*float64(m)+float64(m)/math.Log(float64(max(m, 2))))
	need := int64(rows*perElement) + 16<<20 // plus a margin for allocator overhead
	return max(need, ix.SizeBytes+ix.SizeBytes/4)
}

// tableRows returns the table of ix's row count as the planner would estimate it today
// (catalog.RowEstimate), or an exact count when nothing estimates it.
func tableRows(ctx context.Context, q querier, ix catalog.Index) (float64, error) {
	rows, ok, err := catalog.RowEstimate(ctx, q, ix.TableOID)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", ix.QuotedTable(), err)
	}
	if ok {
		return rows, nil
	}
	var n int64
	if err := q.QueryRow(ctx, "SELECT count(*) FROM "+ix.QuotedTable()).Scan(&n); err != nil {
		return 0, fmt.Errorf("count rows of %s: %w", ix.QuotedTable(), err)
	}
	return float64(n), nil
}
