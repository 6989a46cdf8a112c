package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/store"
)

// migrateOptions are migrate's flags.
type migrateOptions struct {
	configFile       *string
	createExtensions bool
	dryRun           bool
}

func registerMigrate(app *kingpin.Application, stdout io.Writer) (string, action) {
	c := app.Command("migrate", `Create or upgrade vectorheal's schema in the state store, and install the page readers in each target database.

Applies every pending numbered migration (vectorheal's tables and its job queue). Safe to run
while other vectorheal processes start: they wait for each other. serve runs it at start too.

Then, in each target database, connected with the target's migrate_dsn (else dsn), which must
be a superuser, installs in exporter.page_reader_schema (default vectorheal_pages) the page
readers index_page and heap_page: SECURITY DEFINER wrappers of pageinspect's get_raw_page,
limited to hnsw and ivfflat indexes and to the masked heap pages of their tables, executable
by pg_monitor. It prints every statement it runs. pageinspect is created only with
--create-extensions; without it a missing pageinspect is an error that says what to run.`)
	o := &migrateOptions{configFile: configFlag(c)}
	c.Flag("create-extensions", "Create the pageinspect extension in a target database that lacks it.").BoolVar(&o.createExtensions)
	c.Flag("dry-run", "Print what would be created in each target database, change nothing (the state store included).").BoolVar(&o.dryRun)
	return c.FullCommand(), func(ctx context.Context, logger *slog.Logger) int {
		cfg, ok := loadConfig(*o.configFile, logger)
		if !ok {
			return 1
		}
		if err := migrate(ctx, cfg, o, stdout, logger); err != nil {
			logger.Error("migration failed", "err", err)
			return 1
		}
		return 0
	}
}

// migrate applies pending migrations to the configured state store, then installs the page
// readers in every target database.
func migrate(ctx context.Context, cfg *config.Config, o *migrateOptions, stdout io.Writer, logger *slog.Logger) error {
	if !cfg.StateStore.DSN.IsSet() {
		return errors.New("state_store.dsn is not set in " + cfg.File)
	}
	if o.dryRun {
		fmt.Fprintf(stdout, "state store: would apply pending migrations to schema %s (not listed by --dry-run)\n", cfg.StateStore.Schema)
	} else {
		dsn, err := cfg.StateStore.DSN.Resolve()
		if err != nil {
			return fmt.Errorf("state_store.dsn: %w", err)
		}
		pool, err := store.Open(ctx, dsn, cfg.StateStore.Schema, 2)
		if err != nil {
			return err
		}
		defer pool.Close()
		if _, err = store.Migrate(ctx, pool, cfg.StateStore.Schema, logger); err != nil {
			return err
		}
		logger.Info("state store schema is up to date", "schema", cfg.StateStore.Schema)
	}
	var errs []error
	for _, t := range cfg.Targets {
		if err := installPageReaders(ctx, cfg, t, o, stdout, logger.With("target", t.Name)); err != nil {
			errs = append(errs, fmt.Errorf("target %q: %w", t.Name, err))
		}
	}
	return errors.Join(errs...)
}

// installPageReaders installs the page readers in target t's database and prints the plan. A
// target whose migrate connection is its plain dsn and not a superuser is skipped with a
// warning (its structure metrics stay absent until a superuser runs migrate); a migrate_dsn
// that is not a superuser is an error, since it was given for this.
func installPageReaders(ctx context.Context, cfg *config.Config, t config.Target, o *migrateOptions, stdout io.Writer, logger *slog.Logger) error {
	key := t.DSNKey(config.UseMigrate)
	secret := t.DSNFor(config.UseMigrate)
	if !secret.IsSet() {
		return errors.New("neither migrate_dsn nor dsn is set: the page readers need a superuser connection")
	}
	dsn, err := secret.Resolve()
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, dsn)
	if err != nil {
		return fmt.Errorf("%s: connect: %w", key, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	db := conn.Config().Database
	schema := cfg.Exporter.PageReaderSchema
	plan, err := exporter.InstallPageReader(cctx, conn, exporter.InstallOptions{Schema: schema, CreateExtensions: o.createExtensions, DryRun: o.dryRun})
	switch {
	case errors.Is(err, exporter.ErrNotSuperuser) && key == "dsn":
		logger.Warn("page readers not installed: the target's dsn is not a superuser; give a superuser migrate_dsn for migrate (structure metrics need the page readers or a superuser exporter role)")
		return nil
	case errors.Is(err, exporter.ErrNotSuperuser):
		return fmt.Errorf("%s connects as a role that is not superuser: the page readers need one", key)
	case errors.Is(err, exporter.ErrNoPageinspect):
		return fmt.Errorf("the extension pageinspect is not installed in database %s: run `CREATE EXTENSION pageinspect;` there as a superuser, or run vectorheal migrate --create-extensions", db)
	case err != nil:
		return err
	}
	verb := "installed"
	if o.dryRun {
		verb = "would install"
	}
	fmt.Fprintf(stdout, "target %s (database %s): %s the page readers:\n", t.Name, db, verb)
	for _, st := range plan {
		fmt.Fprintf(stdout, "  %s\n", st.Summary)
	}
	if old, err := exporter.LegacyPageReader(cctx, conn, schema); err != nil {
		return err
	} else if old != "" {
		fmt.Fprintf(stdout, "  note: the page reader of earlier releases, %s, is no longer used: drop it with `DROP FUNCTION %s;`\n", old, old)
	}
	return nil
}
