package pgvector

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// InstalledSQL reads the version of pgvector installed in the connected database. It is the
// version of the extension's SQL objects: after new binaries are installed and before ALTER
// EXTENSION vector UPDATE runs it is the older one, so gates err on the side of closed.
const InstalledSQL = `SELECT current_database(), extversion FROM pg_extension WHERE extname = 'vector'`

// Installation is the pgvector of one database, as the catalog holds it.
type Installation struct {
	Datname string
	Raw     string // extversion as written in pg_extension
}

// ErrNotInstalled is returned (wrapped) when the database has no vector extension.
var ErrNotInstalled = errors.New("pgvector is not installed")

// Installed reads the pgvector installed in the database q is connected to.
func Installed(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}) (Installation, error) {
	var in Installation
	err := q.QueryRow(ctx, InstalledSQL).Scan(&in.Datname, &in.Raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return Installation{}, fmt.Errorf("read pgvector version: %w", ErrNotInstalled)
	}
	if err != nil {
		return Installation{}, fmt.Errorf("read pgvector version: %w", err)
	}
	return in, nil
}
