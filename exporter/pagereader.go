package exporter

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
)

// Page reading functions. Only rawPageFunc and the functions of the page reader schema
// (exporter.page_reader_schema, a plain identifier checked by config, quoted wherever it is
// used) are ever handed to a page reader as a function name; nothing from a label is.
const (
	// rawPageFunc is pageinspect's get_raw_page, usable by superusers.
	rawPageFunc = "get_raw_page"
	// indexPageFunc and heapPageFunc are the SECURITY DEFINER wrappers "vectorheal migrate"
	// installs in the page reader schema.
	indexPageFunc = "index_page"
	heapPageFunc  = "heap_page"
	// WrapperGrantee is the role granted EXECUTE on the wrappers: PostgreSQL's predefined
	// monitoring role, so a monitoring login needs only "GRANT pg_monitor TO role". PUBLIC has
	// no access.
	WrapperGrantee = "pg_monitor"
)

// pageReader is how the connected role reads pages: the function for index pages and the
// one for the heap pages an HNSW scan follows HOT chains on, each "" with the reason when the
// role cannot.
type pageReader struct {
	index, why    string
	heap, heapWhy string
}

// rawPages is the reader of a superuser: get_raw_page for both.
func rawPages() pageReader { return pageReader{index: rawPageFunc, heap: rawPageFunc} }

// pageReaderSchema is cfg's schema of the wrappers; a configuration not loaded through
// config.Load (vectorheal check builds its own) gets the default.
func pageReaderSchema(cfg config.Exporter) string {
	if cfg.PageReaderSchema == "" {
		return config.DefaultPageReaderSchema
	}
	return cfg.PageReaderSchema
}

// detectPageReader returns how the connected role can read pages: get_raw_page when it is
// superuser and pageinspect is installed, else the wrappers in schema that exist and that it
// may execute. It reads the catalog only (no name lookup that checks privileges), so a role
// without USAGE on the schema gets a reason, never an error that would end discovery or a
// validation.
func detectPageReader(ctx context.Context, q catalog.Querier, schema string) (pageReader, error) {
	var super, rawPage, index, indexExec, heap, heapExec bool
	err := q.QueryRow(ctx, `
SELECT r.rolsuper,
       EXISTS (SELECT 1 FROM pg_catalog.pg_proc WHERE proname = 'get_raw_page' AND pg_catalog.pg_function_is_visible(oid)),
       ip.oid IS NOT NULL,
       coalesce(pg_catalog.has_schema_privilege(n.oid, 'USAGE') AND pg_catalog.has_function_privilege(ip.oid, 'EXECUTE'), false),
       hp.oid IS NOT NULL,
       coalesce(pg_catalog.has_schema_privilege(n.oid, 'USAGE') AND pg_catalog.has_function_privilege(hp.oid, 'EXECUTE'), false)
FROM pg_catalog.pg_roles r
LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = $1
LEFT JOIN pg_catalog.pg_proc ip ON ip.pronamespace = n.oid AND ip.proname = 'index_page'
     AND pg_catalog.oidvectortypes(ip.proargtypes) = 'regclass, integer'
LEFT JOIN pg_catalog.pg_proc hp ON hp.pronamespace = n.oid AND hp.proname = 'heap_page'
     AND pg_catalog.oidvectortypes(hp.proargtypes) = 'regclass, integer'
WHERE r.rolname = current_user`, schema).Scan(&super, &rawPage, &index, &indexExec, &heap, &heapExec)
	if err != nil {
		return pageReader{}, fmt.Errorf("detect page reader: %w", err)
	}
	var r pageReader
	wrapper := func(fn string) string { return schema + "." + fn }
	switch {
	case super && rawPage:
		return rawPages(), nil
	case index && indexExec:
		r.index = wrapper(indexPageFunc)
	case index:
		r.why = "the role may not execute " + wrapper(indexPageFunc) + " (grant " + WrapperGrantee + " to it)"
	case super:
		r.why = "pageinspect is not installed (run vectorheal migrate --create-extensions)"
	default:
		r.why = "the role is not superuser and " + wrapper(indexPageFunc) + " is not installed (run vectorheal migrate with a superuser migrate_dsn)"
	}
	switch {
	case r.index == "":
		r.heapWhy = r.why
	case heap && heapExec:
		r.heap = wrapper(heapPageFunc)
	case heap:
		r.heapWhy = "the role may not execute " + wrapper(heapPageFunc) + " (grant " + WrapperGrantee + " to it)"
	default:
		r.heapWhy = wrapper(heapPageFunc) + " is not installed (run vectorheal migrate again)"
	}
	return r, nil
}

// ErrNotSuperuser means InstallPageReader was called with a role that cannot install it.
var ErrNotSuperuser = errors.New("the connected role is not superuser")

// ErrNoPageinspect means pageinspect is missing and InstallOptions.CreateExtensions is off.
var ErrNoPageinspect = errors.New("the extension pageinspect is not installed")

// InstallOptions say where and how InstallPageReader installs the page readers.
type InstallOptions struct {
	// Schema holds the functions (exporter.page_reader_schema).
	Schema string
	// CreateExtensions lets it create pageinspect when missing; without it a missing
	// pageinspect is ErrNoPageinspect.
	CreateExtensions bool
	// DryRun only returns the plan.
	DryRun bool
}

// PlanStep is one statement of an installation, with a one-line summary to show.
type PlanStep struct {
	Summary string
	SQL     string
}

// indexPageBody reads one page of an hnsw or ivfflat index and refuses any other relation.
// get_raw_page is named by its schema, quoted (%s), because the function pins its search_path
// (a SECURITY DEFINER function must not resolve names through the caller's): @pageinspect@
// stands for that schema.
const indexPageBody = `
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_am am ON am.oid = c.relam
                 WHERE c.oid = rel AND c.relkind = 'i' AND am.amname IN ('hnsw', 'ivfflat')) THEN
    RAISE EXCEPTION 'relation % is not an hnsw or ivfflat index', rel
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN @pageinspect@.get_raw_page(rel::text, blkno);
END`

// heapPageBody returns one heap page of a table that has an hnsw or ivfflat index and that
// the session's user may SELECT from, with only what following a HOT chain needs: the page
// header, the line pointers and the first 23 bytes (the fixed header: xmin, xmax, t_ctid,
// infomask) of each normal tuple. Every other byte (the rows' columns, free space, old row
// data) is zero, so the page shows nothing a SELECT of the table would not, beyond tuple
// headers.
const heapPageBody = `
DECLARE
  raw bytea;
  masked bytea;
  lp_end integer;
  it record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                 JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                 JOIN pg_catalog.pg_am am ON am.oid = ic.relam
                 JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
                 WHERE i.indrelid = rel AND t.relkind IN ('r', 'm') AND am.amname IN ('hnsw', 'ivfflat')) THEN
    RAISE EXCEPTION 'relation % is not a table with an hnsw or ivfflat index', rel
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NOT pg_catalog.has_table_privilege(session_user, rel, 'SELECT') THEN
    RAISE EXCEPTION 'permission denied for table %', rel USING ERRCODE = 'insufficient_privilege';
  END IF;
  raw := @pageinspect@.get_raw_page(rel::text, blkno);
  lp_end := pg_catalog.get_byte(raw, 12) + 256 * pg_catalog.get_byte(raw, 13);
  masked := substring(raw FROM 1 FOR lp_end)
            || pg_catalog.decode(pg_catalog.repeat('00', pg_catalog.length(raw) - lp_end), 'hex');
  FOR it IN SELECT lp_off FROM @pageinspect@.heap_page_items(raw) WHERE lp_flags = 1 AND lp_len >= 23 LOOP
    masked := overlay(masked PLACING substring(raw FROM it.lp_off + 1 FOR 23) FROM it.lp_off + 1);
  END LOOP;
  RETURN masked;
END`

// PageReaderPlan returns the statements that install the page readers in schema, with
// pageinspect in extSchema; create says pageinspect is to be created there first.
func PageReaderPlan(schema, extSchema string, create bool) []PlanStep {
	s := pgx.Identifier{schema}.Sanitize()
	ext := pgx.Identifier{extSchema}.Sanitize()
	var plan []PlanStep
	if create {
		plan = append(plan, PlanStep{"CREATE EXTENSION pageinspect SCHEMA " + ext, `CREATE EXTENSION IF NOT EXISTS pageinspect SCHEMA ` + ext})
	}
	fn := func(name, body string) []PlanStep {
		sig := s + "." + name + "(regclass, integer)"
		return []PlanStep{
			{"CREATE FUNCTION " + sig + " RETURNS bytea SECURITY DEFINER",
				`CREATE OR REPLACE FUNCTION ` + s + `.` + name + `(rel regclass, blkno integer) RETURNS bytea
LANGUAGE plpgsql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS ` + quoteLiteral(strings.ReplaceAll(body, "@pageinspect@", ext))},
			{"REVOKE ALL ON FUNCTION " + sig + " FROM PUBLIC", `REVOKE ALL ON FUNCTION ` + sig + ` FROM PUBLIC`},
			{"GRANT EXECUTE ON FUNCTION " + sig + " TO " + WrapperGrantee, `GRANT EXECUTE ON FUNCTION ` + sig + ` TO ` + WrapperGrantee},
		}
	}
	plan = append(plan,
		PlanStep{"CREATE SCHEMA " + s, `CREATE SCHEMA IF NOT EXISTS ` + s},
		PlanStep{"GRANT USAGE ON SCHEMA " + s + " TO " + WrapperGrantee, `GRANT USAGE ON SCHEMA ` + s + ` TO ` + WrapperGrantee})
	plan = append(plan, fn(indexPageFunc, indexPageBody)...)
	return append(plan, fn(heapPageFunc, heapPageBody)...)
}

// InstallPageReader installs, in the connected database and o.Schema, the page readers:
// index_page(regclass, integer), a SECURITY DEFINER wrapper around pageinspect's get_raw_page
// that refuses every relation that is not an hnsw or ivfflat index, and heap_page(regclass,
// integer), which returns a heap page of a table with such an index, masked to its tuple
// headers, to the session users who may SELECT from the table. EXECUTE is revoked from PUBLIC
// and granted to pg_monitor; index pages hold the indexed vectors, so pg_monitor's members can
// read them. It needs a superuser connection (ErrNotSuperuser otherwise) and pageinspect,
// which it creates (in the connection's current schema) only with o.CreateExtensions
// (ErrNoPageinspect otherwise, with the plan). It returns the plan, run unless o.DryRun.
// Running it again is harmless.
func InstallPageReader(ctx context.Context, conn *pgx.Conn, o InstallOptions) ([]PlanStep, error) {
	var super bool
	var extSchema, current string
	err := conn.QueryRow(ctx, `SELECT r.rolsuper, coalesce((SELECT n.nspname FROM pg_catalog.pg_extension e
		JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pageinspect'), ''),
		coalesce(current_schema(), '')
		FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`).Scan(&super, &extSchema, &current)
	if err != nil {
		return nil, fmt.Errorf("install page reader: %w", err)
	}
	if !super {
		return nil, ErrNotSuperuser
	}
	create := extSchema == ""
	if create {
		if current == "" {
			return nil, fmt.Errorf("install page reader: pageinspect is not installed and no schema of the search_path exists to create it in")
		}
		extSchema = current
	}
	plan := PageReaderPlan(o.Schema, extSchema, create)
	if create && !o.CreateExtensions {
		return plan, ErrNoPageinspect
	}
	if o.DryRun {
		return plan, nil
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return plan, fmt.Errorf("install page reader: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, st := range plan {
		if _, err := tx.Exec(ctx, st.SQL); err != nil {
			return plan, fmt.Errorf("install page reader: %s: %w", st.Summary, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return plan, fmt.Errorf("install page reader: %w", err)
	}
	return plan, nil
}

// LegacyPageReader returns "vectorheal.index_page(regclass, integer)" when the connected
// database still has the page reader earlier releases installed in schema vectorheal (and
// schema is not vectorheal), so migrate can say how to drop it; "" otherwise.
func LegacyPageReader(ctx context.Context, q catalog.Querier, schema string) (string, error) {
	if schema == "vectorheal" {
		return "", nil
	}
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = 'vectorheal' AND p.proname = 'index_page'
		AND pg_catalog.oidvectortypes(p.proargtypes) = 'regclass, integer'`).Scan(&n)
	if err != nil || n == 0 {
		return "", err
	}
	return "vectorheal.index_page(regclass, integer)", nil
}

// quoteLiteral quotes a constant SQL text as a standard string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
