// Package strategytest holds what tests of strategies and of the engine share: a Measurer that
// counts how often an index's pages are read.
package strategytest

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/measure"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// PageReads wraps a Measurer and counts the structural readings of an index's pages made
// through it: one per Measure or Read asking for any HNSW structure figure. Tests
// assert with it that a large index is not read more often than a repair needs.
type PageReads struct {
	strategy.Measurer
	n atomic.Int32
}

// Count is the readings since the last Reset.
func (p *PageReads) Count() int { return int(p.n.Load()) }

// Reset sets the count to zero.
func (p *PageReads) Reset() { p.n.Store(0) }

func isStructure(figure string) bool { return strings.HasPrefix(figure, "pgvector_hnsw_") }

// Measure implements strategy.Measurer.
func (p *PageReads) Measure(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figure string) (float64, error) {
	if isStructure(figure) {
		p.n.Add(1)
	}
	return p.Measurer.Measure(ctx, pool, ix, figure)
}

// Read implements strategy.Measurer.
func (p *PageReads) Read(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figures ...string) measure.Reading {
	if slices.ContainsFunc(figures, isStructure) {
		p.n.Add(1)
	}
	return p.Measurer.Read(ctx, pool, ix, figures...)
}
