package hnsw

import (
	"context"

	"github.com/vectorheal/vectorheal/exporter/pagescan"
)

func analyze(ctx context.Context, r pagescan.Reader, opts Options) (*Report, error) {
	return &Report{Faults: map[string]int64{}}, nil
}
