package strategy

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/measure"
)

// chooseFigures returns the figures to record: the step's list when given, else the
// strategy's defaults that the Measurer understands. Runbook loading has checked both against
// the exporter's figures; the filter only matters for test measurers that know fewer.
func chooseFigures(env Env, list, defaults []string) []string {
	if env.Measure == nil {
		return nil
	}
	if list != nil {
		return list
	}
	known := env.Measure.Figures()
	var out []string
	for _, f := range defaults {
		if slices.Contains(known, f) {
			out = append(out, f)
		}
	}
	return out
}

// measureFigures measures each figure on pool. A figure that cannot be measured is logged and
// left out, and so is one that cannot be known on the target (NaN: structure without page
// access): the record is informative, the engine's validation decides success.
func measureFigures(ctx context.Context, env Env, pool *pgxpool.Pool, ix catalog.Index, figures []string) map[string]float64 {
	if env.Measure == nil || len(figures) == 0 {
		return nil
	}
	return recorded(env, ix, figures, env.Measure.Read(ctx, pool, ix, figures...))
}

// figuresBefore is measureFigures before the step acts: the figures env.Before holds (a
// reading of the same state taken a moment ago) are taken from it, the others measured.
func figuresBefore(ctx context.Context, env Env, ix catalog.Index, figures []string) map[string]float64 {
	if env.Measure != nil {
		env.Measure = WithReading(env.Measure, env.Before)
	}
	return measureFigures(ctx, env, env.Pool, ix, figures)
}

// recorded keeps the figures of one reading that a step records: the ones measured, logging
// the others and leaving out those that cannot be known on the target (NaN).
func recorded(env Env, ix catalog.Index, figures []string, reading measure.Reading) map[string]float64 {
	out := make(map[string]float64, len(figures))
	for _, f := range figures {
		v, err := reading.Get(f)
		if err != nil {
			logger(env).Warn("measure figure", slog.String("index", ix.String()), slog.String("figure", f), slog.Any("err", err))
			continue
		}
		if !math.IsNaN(v) {
			out[f] = v
		}
	}
	return out
}

// freshPool opens a one-connection pool to the same database whose sessions start after
// everything before this call, so they see settings made with ALTER DATABASE/ROLE ... SET
// (existing sessions keep the values they started with). afterConnect may adjust each session.
func freshPool(ctx context.Context, pool *pgxpool.Pool, afterConnect func(context.Context, *pgx.Conn) error) (*pgxpool.Pool, error) {
	cfg := pool.Config().Copy()
	cfg.MinConns, cfg.MaxConns = 0, 1
	cfg.AfterConnect = afterConnect
	cfg.BeforeConnect = pool.Config().BeforeConnect
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open fresh session: %w", err)
	}
	return p, nil
}
