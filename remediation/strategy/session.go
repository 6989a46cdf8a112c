package strategy

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
)

// cancelGrace is how long a cancelled statement gets to stop on the server before the client
// gives up on the connection.
const cancelGrace = 15 * time.Second

// openSession opens a connection of its own to the database behind pool for one maintenance
// statement. Two reasons not to borrow a pooled connection: pgx's default reaction to a cancelled
// context is to drop the socket, and a backend busy in REINDEX or VACUUM does not notice that —
// the statement would go on running after the step timed out. This connection sends a cancel
// request instead, so a timeout really stops the statement. And session settings such as
// maintenance_work_mem die with the connection instead of leaking into the pool.
func openSession(ctx context.Context, pool *pgxpool.Pool) (*pgx.Conn, error) {
	cfg := pool.Config().ConnConfig.Copy()
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelGrace}
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "vectorheal-repair"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open maintenance session: %w", err)
	}
	// The server stops the statement by itself at the step's deadline too, in case the cancel
	// request is lost (it travels on a separate connection).
	if dl, ok := ctx.Deadline(); ok {
		ms := time.Until(dl).Milliseconds()
		if ms < 1 {
			ms = 1
		}
		if _, err := conn.Exec(ctx, "SELECT set_config('statement_timeout', $1, false)", strconv.FormatInt(ms, 10)); err != nil {
			conn.Close(context.Background())
			return nil, fmt.Errorf("set statement_timeout: %w", err)
		}
	}
	return conn, nil
}

// closeSession closes conn without depending on the step's (possibly cancelled) context.
func closeSession(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// cleanupContext is for work that must happen after the step's context ended (dropping an
// INVALID leftover after a timeout): it keeps ctx's values but not its cancellation.
func cleanupContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

// setMaintenanceWorkMem raises maintenance_work_mem for this session to want bytes (never
// lowers it) and returns the value in effect, in bytes.
func setMaintenanceWorkMem(ctx context.Context, conn *pgx.Conn, want int64) (int64, error) {
	current, err := settingBytes(ctx, conn, "maintenance_work_mem")
	if err != nil {
		return 0, err
	}
	if want <= current {
		return current, nil
	}
	kb := strconv.FormatInt(want/1024, 10) + "kB"
	if _, err := conn.Exec(ctx, "SELECT set_config('maintenance_work_mem', $1, false)", kb); err != nil {
		return 0, fmt.Errorf("set maintenance_work_mem to %s: %w", kb, err)
	}
	return want / 1024 * 1024, nil
}

// settingBytes reads a memory setting of the session in bytes.
func settingBytes(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, name string) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT setting::bigint * CASE unit WHEN 'kB' THEN 1024 WHEN '8kB' THEN 8192
		WHEN 'MB' THEN 1048576 WHEN 'B' THEN 1 ELSE 1 END FROM pg_settings WHERE name = $1`, name).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	return n, nil
}
