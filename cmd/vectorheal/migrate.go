package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/alecthomas/kingpin/v2"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/store"
)

func registerMigrate(app *kingpin.Application) (string, action) {
	c := app.Command("migrate", `Create or upgrade vectorheal's schema in the state store.

Applies every pending numbered migration (vectorheal's tables and its job queue). Safe to run
while other vectorheal processes start: they wait for each other. serve runs it at start too.

When the role of a target is superuser, also installs in that database the page reader
vectorheal.index_page (a SECURITY DEFINER wrapper of get_raw_page limited to hnsw and ivfflat
indexes, executable by pg_monitor), so a non-superuser monitoring role can read index pages.`)
	cfgPath := configFlag(c)
	return c.FullCommand(), func(ctx context.Context, logger *slog.Logger) int {
		cfg, ok := loadConfig(*cfgPath, logger)
		if !ok {
			return 1
		}
		if err := migrate(ctx, cfg, logger); err != nil {
			logger.Error("migration failed", "err", err)
			return 1
		}
		logger.Info("state store schema is up to date", "schema", cfg.StateStore.Schema)
		return 0
	}
}

// migrate applies pending migrations to the configured state store.
func migrate(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	if !cfg.StateStore.DSN.IsSet() {
		return errors.New("state_store.dsn is not set in " + cfg.File)
	}
	dsn, err := cfg.StateStore.DSN.Resolve()
	if err != nil {
		return err
	}
	pool, err := store.Open(ctx, dsn, cfg.StateStore.Schema, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err = store.Migrate(ctx, pool, cfg.StateStore.Schema, logger); err != nil {
		return err
	}
	return exporter.InstallPageReaders(ctx, cfg.Targets, logger)
}
