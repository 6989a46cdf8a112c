package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
)

// Page reading functions. Only these constants are ever handed to the page reader as a
// function name; nothing from configuration or a label is.
const (
	// rawPageFunc is pageinspect's get_raw_page, usable by superusers.
	rawPageFunc = "get_raw_page"
	// wrapperFunc is the SECURITY DEFINER wrapper "vectorheal migrate" installs.
	wrapperFunc = "vectorheal.index_page"
	// WrapperGrantee is the role granted EXECUTE on the wrapper: PostgreSQL's predefined
	// monitoring role, so a monitoring login needs only "GRANT pg_monitor TO role". PUBLIC has
	// no access.
	WrapperGrantee = "pg_monitor"
)

// detectPageReader returns the function that can read index pages for the connected role:
// get_raw_page when the role is superuser and pageinspect is installed, the wrapper when it
// exists and the role may execute it, or "" with the reason when pages cannot be read.
func detectPageReader(ctx context.Context, q catalog.Querier) (fn, reason string, err error) {
	var super, rawPage, wrapper, canExec bool
	err = q.QueryRow(ctx, `
SELECT r.rolsuper,
       EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'get_raw_page' AND pg_function_is_visible(oid)),
       to_regprocedure('vectorheal.index_page(regclass,integer)') IS NOT NULL,
       CASE WHEN to_regprocedure('vectorheal.index_page(regclass,integer)') IS NULL THEN false
            ELSE has_function_privilege(to_regprocedure('vectorheal.index_page(regclass,integer)'), 'EXECUTE')
                 AND has_schema_privilege(to_regnamespace('vectorheal'), 'USAGE') END
FROM pg_roles r WHERE r.rolname = current_user`).Scan(&super, &rawPage, &wrapper, &canExec)
	if err != nil {
		return "", "", fmt.Errorf("detect page reader: %w", err)
	}
	switch {
	case super && rawPage:
		return rawPageFunc, "", nil
	case wrapper && canExec:
		return wrapperFunc, "", nil
	case wrapper:
		return "", "the role may not execute vectorheal.index_page (grant " + WrapperGrantee + " to it)", nil
	case super:
		return "", "pageinspect is not installed (run vectorheal migrate)", nil
	}
	return "", "the role is not superuser and vectorheal.index_page is not installed (run vectorheal migrate as superuser)", nil
}

// ErrNotSuperuser means InstallPageReader was called with a role that cannot install it.
var ErrNotSuperuser = errors.New("the connected role is not superuser")

// InstallPageReader installs, in the connected database, the function
// vectorheal.index_page(regclass, integer) returning bytea: a SECURITY DEFINER wrapper around
// pageinspect's get_raw_page that refuses every relation that is not an hnsw or ivfflat index.
// EXECUTE is revoked from PUBLIC and granted to pg_monitor; index pages hold the indexed
// vectors, so pg_monitor's members can read them. It creates the pageinspect
// extension and the vectorheal schema when missing. It needs a superuser connection and
// returns ErrNotSuperuser otherwise. Running it again is harmless.
func InstallPageReader(ctx context.Context, conn *pgx.Conn, logger *slog.Logger) error {
	var super bool
	if err := conn.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		return fmt.Errorf("install page reader: %w", err)
	}
	if !super {
		return ErrNotSuperuser
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("install page reader: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pageinspect`); err != nil {
		return fmt.Errorf("install page reader: create extension pageinspect: %w", err)
	}
	var extSchema string
	if err := tx.QueryRow(ctx, `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
		WHERE e.extname = 'pageinspect'`).Scan(&extSchema); err != nil {
		return fmt.Errorf("install page reader: find pageinspect: %w", err)
	}
	// The body names get_raw_page by its schema, quoted, because the function pins its
	// search_path (a SECURITY DEFINER function must not resolve names through the caller's).
	body := `
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_am am ON am.oid = c.relam
                 WHERE c.oid = rel AND c.relkind = 'i' AND am.amname IN ('hnsw', 'ivfflat')) THEN
    RAISE EXCEPTION 'relation % is not an hnsw or ivfflat index', rel
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN ` + pgx.Identifier{extSchema}.Sanitize() + `.get_raw_page(rel::text, blkno);
END`
	stmts := []string{
		`CREATE SCHEMA IF NOT EXISTS vectorheal`,
		`CREATE OR REPLACE FUNCTION vectorheal.index_page(rel regclass, blkno integer) RETURNS bytea
LANGUAGE plpgsql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS ` + quoteLiteral(body),
		`REVOKE ALL ON FUNCTION vectorheal.index_page(regclass, integer) FROM PUBLIC`,
		`GRANT USAGE ON SCHEMA vectorheal TO ` + WrapperGrantee,
		`GRANT EXECUTE ON FUNCTION vectorheal.index_page(regclass, integer) TO ` + WrapperGrantee,
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("install page reader: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("install page reader: %w", err)
	}
	logger.Info("installed page reader vectorheal.index_page", "grantee", WrapperGrantee)
	return nil
}

// quoteLiteral quotes a constant SQL text as a standard string literal.
func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}

// InstallPageReaders runs InstallPageReader in the database of every target. A target whose
// role is not superuser is skipped with a warning (its structure metrics stay absent unless
// a superuser installs the wrapper); any other failure is returned, naming the target.
func InstallPageReaders(ctx context.Context, ts []config.Target, logger *slog.Logger) error {
	var errs []error
	for _, t := range ts {
		l := logger.With("target", t.Name)
		if err := installOn(ctx, t, l); err != nil {
			if errors.Is(err, ErrNotSuperuser) {
				l.Warn("page reader not installed: the target's role is not superuser; structure metrics need it (or get_raw_page as superuser)")
				continue
			}
			errs = append(errs, fmt.Errorf("target %q: %w", t.Name, err))
		}
	}
	return errors.Join(errs...)
}

func installOn(ctx context.Context, t config.Target, logger *slog.Logger) error {
	dsn, err := t.DSN.Resolve()
	if err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return InstallPageReader(cctx, conn, logger)
}
