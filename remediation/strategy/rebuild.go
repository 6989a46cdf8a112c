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

// buildSession opens a session of its own for a build on ix, refusing with ErrBusy while
// another build runs on its table.
func buildSession(ctx context.Context, env Env, ix catalog.Index) (*pgx.Conn, error) {
	conn, err := openSession(ctx, env.Pool)
	if err != nil {
		return nil, err
	}
	if err := checkNoBuild(ctx, conn, ix); err != nil {
		closeSession(conn)
		return nil, err
	}
	return conn, nil
}

// reindexConcurrently runs REINDEX INDEX CONCURRENTLY of ix with the settings of b on a
// session of its own, dropping what an earlier attempt or this one leaves behind, and returns
// the statements run and the rebuilt index: the rebuild of Reindex, which reclaim shares.
func reindexConcurrently(ctx context.Context, opts Options, env Env, ix catalog.Index, b buildPlan) ([]string, catalog.Index, error) {
	log := logger(env).With(slog.String("strategy", "reindex"), slog.String("index", ix.String()))
	conn, err := buildSession(ctx, env, ix)
	if err != nil {
		return nil, ix, err
	}
	defer closeSession(conn)
	// A previous attempt that died (timeout, crash) may have left its temporary index: drop it
	// first, or this run would add another and the table would carry both.
	stmts, err := dropReindexLeftovers(ctx, conn, env, ix)
	if err != nil {
		return stmts, ix, err
	}
	set, err := b.apply(ctx, conn)
	stmts = append(stmts, set...)
	if err != nil {
		return stmts, ix, err
	}

	stmt := reindexWhat(ix)
	log.Info("rebuilding index", slog.String("statement", stmt))
	stop := watchProgress(ctx, env, opts, ix, createIndexProgressSQL, conn.PgConn().PID())
	_, runErr := conn.Exec(ctx, stmt)
	stop()
	stmts = append(stmts, stmt)
	if runErr != nil {
		cleaned, cerr := reindexCleanup(ctx, opts, env, ix)
		stmts = append(stmts, cleaned...)
		return stmts, ix, errors.Join(fmt.Errorf("reindex %s: %w", ix.QuotedIndex(), runErr), cerr)
	}
	after, err := catalog.Resolve(ctx, env.Pool, ix.Schema, ix.Name)
	if err != nil {
		return stmts, ix, fmt.Errorf("reindex %s: look up rebuilt index: %w", ix.QuotedIndex(), err)
	}
	log.Info("index rebuilt", slog.Int64("size_bytes", after.SizeBytes))
	return stmts, after, nil
}

// reindexCleanup drops the INVALID temporary indexes a failed REINDEX CONCURRENTLY left behind. It
// runs on a new session and a context of its own: the step's context is usually what failed.
func reindexCleanup(ctx context.Context, opts Options, env Env, ix catalog.Index) ([]string, error) {
	ctx, cancel := cleanupContext(ctx, opts.cleanupTimeout())
	defer cancel()
	conn, err := openSession(ctx, env.Pool)
	if err != nil {
		return nil, fmt.Errorf("clean up after failed reindex: %w", err)
	}
	defer closeSession(conn)
	stmts, err := dropReindexLeftovers(ctx, conn, env, ix)
	if err != nil {
		return stmts, fmt.Errorf("clean up after failed reindex: %w", err)
	}
	return stmts, nil
}

// dropReindexLeftovers drops the temporary indexes REINDEX CONCURRENTLY of ix left on its
// table (isReindexLeftover) and returns the statements run.
func dropReindexLeftovers(ctx context.Context, conn *pgx.Conn, env Env, ix catalog.Index) ([]string, error) {
	all, err := tableIndexes(ctx, conn, ix)
	if err != nil {
		return nil, err
	}
	var left []relIndex
	for _, e := range all {
		if isReindexLeftover(e, ix) {
			left = append(left, e)
		}
	}
	return dropIndexes(ctx, conn, env, left)
}

// buildAndSwap builds ix again next to it with lists and the settings of b, and swaps it in:
// the sequence of Retrain, which hnsw_rebuild and reclaim share.
func buildAndSwap(ctx context.Context, opts Options, env Env, ix catalog.Index, lists int, b buildPlan) ([]string, catalog.Index, error) {
	log := logger(env).With(slog.String("strategy", "ivfflat_retrain"), slog.String("index", ix.String()))
	newName, oldName := tempIndexName(ix.Name, "_vhnew"), tempIndexName(ix.Name, "_vhold")
	conn, err := buildSession(ctx, env, ix)
	if err != nil {
		return nil, ix, err
	}
	defer closeSession(conn)
	def, err := indexDefinition(ctx, conn, ix)
	if err != nil {
		return nil, ix, err
	}
	// Leftovers of an earlier attempt that died: a half-built new index or an old one not yet
	// dropped after its swap. Either way the index named ix.Name is the one serving.
	var stmts []string
	left, err := leftovers(ctx, conn, ix, newName, oldName)
	if err != nil {
		return nil, ix, err
	}
	dropped, err := dropIndexes(ctx, conn, env, left)
	stmts = append(stmts, dropped...)
	if err != nil {
		return stmts, ix, err
	}

	set, err := b.apply(ctx, conn)
	stmts = append(stmts, set...)
	if err != nil {
		return stmts, ix, err
	}
	create := def.create(ix, newName, lists)
	log.Info("building retrained index", slog.Int("lists_before", ix.Lists), slog.Int("lists", lists))
	stop := watchProgress(ctx, env, opts, ix, createIndexProgressSQL, conn.PgConn().PID())
	_, err = conn.Exec(ctx, create)
	stop()
	stmts = append(stmts, create)
	newIx := relIndex{Schema: ix.Schema, Name: newName}
	if err == nil {
		err = checkValid(ctx, conn, ix, newName)
	}
	if err != nil {
		cctx, cancel := cleanupContext(ctx, opts.cleanupTimeout())
		defer cancel()
		drop, cerr := dropOnFreshSession(cctx, env, []relIndex{newIx})
		return append(stmts, drop...), ix, errors.Join(fmt.Errorf("build %s: %w", newIx.quoted(), err), cerr)
	}

	swap, err := swapNames(ctx, conn, ix, newIx, oldName)
	stmts = append(stmts, swap...)
	if err != nil {
		cctx, cancel := cleanupContext(ctx, opts.cleanupTimeout())
		defer cancel()
		drop, cerr := dropOnFreshSession(cctx, env, []relIndex{newIx})
		return append(stmts, drop...), ix, errors.Join(fmt.Errorf("swap in retrained index: %w", err), cerr)
	}
	// The new index serves from here on; the old one only costs writes and disk until dropped.
	cctx, cancel := cleanupContext(ctx, opts.cleanupTimeout())
	defer cancel()
	// A session of its own: this one's statement_timeout follows the step's deadline, which
	// may be all but used up by the build.
	drop, err := dropOnFreshSession(cctx, env, []relIndex{{Schema: ix.Schema, Name: oldName}})
	stmts = append(stmts, drop...)
	if err != nil {
		log.Warn("old index not dropped; the next run drops it", slog.Any("err", err))
	}
	after, err := catalog.Resolve(ctx, env.Pool, ix.Schema, ix.Name)
	if err != nil {
		return stmts, ix, fmt.Errorf("look up retrained index: %w", err)
	}
	log.Info("index retrained", slog.Int("lists", after.Lists), slog.Int64("size_bytes", after.SizeBytes))
	return stmts, after, nil
}

// checkValid fails unless the index name on the table of ix is valid.
func checkValid(ctx context.Context, conn *pgx.Conn, ix catalog.Index, name string) error {
	var valid bool
	err := conn.QueryRow(ctx, `SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = $1 AND c.relname = $2`, ix.TableOID, name).Scan(&valid)
	if err != nil {
		return fmt.Errorf("check new index: %w", err)
	}
	if !valid {
		return fmt.Errorf("new index %s is not valid", name)
	}
	return nil
}

// leftovers finds the temporary indexes of an earlier run on the table of ix.
func leftovers(ctx context.Context, conn *pgx.Conn, ix catalog.Index, names ...string) ([]relIndex, error) {
	all, err := tableIndexes(ctx, conn, ix)
	if err != nil {
		return nil, err
	}
	var out []relIndex
	for _, e := range all {
		for _, n := range names {
			if e.Name == n && e.Schema == ix.Schema && e.OID != ix.OID {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// dropOnFreshSession drops ixs on a session of its own.
func dropOnFreshSession(ctx context.Context, env Env, ixs []relIndex) ([]string, error) {
	conn, err := openSession(ctx, env.Pool)
	if err != nil {
		return nil, err
	}
	defer closeSession(conn)
	return dropIndexes(ctx, conn, env, ixs)
}
