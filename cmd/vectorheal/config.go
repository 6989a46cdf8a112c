package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/alecthomas/kingpin/v2"

	"github.com/vectorheal/vectorheal/internal/config"
)

func registerConfigCheck(app *kingpin.Application, stdout, stderr io.Writer) (string, action) {
	c := app.Command("config", "Work with the configuration file.").Command("check",
		"Validate a configuration file: unknown keys, wrong types and bad values are reported with file and line.")
	file := c.Arg("file", "Configuration file to check.").Required().String()
	return c.FullCommand(), func(context.Context, *slog.Logger) int {
		if _, err := config.Load(*file); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: OK\n", *file)
		return 0
	}
}

// configFlag adds --config.file, the flag of the Prometheus ecosystem every subcommand that
// reads the configuration takes, and --config, its earlier name, kept working but hidden.
func configFlag(c *kingpin.CmdClause) *string {
	path := c.Flag("config.file", "Path of the vectorheal configuration file (see docs/configuration.md).").
		Short('c').Default("vectorheal.yml").String()
	c.Flag("config", "Alias of --config.file.").Hidden().StringVar(path)
	return path
}

// loadConfig loads and validates the config, logging the error on failure.
func loadConfig(path string, logger *slog.Logger) (*config.Config, bool) {
	cfg, err := config.Load(path)
	if err != nil {
		logger.Error("invalid configuration", "err", err)
		return nil, false
	}
	return cfg, true
}
