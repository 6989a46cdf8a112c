// Package ivfflat reads the pages of a pgvector IVFFlat index and measures its lists.
package ivfflat

import (
	"context"

	"github.com/vectorheal/vectorheal/exporter/pagescan"
)

// Options tune Analyze.
type Options struct {
	// Distance is the opclass's distance: "l2", "cosine", "ip" or "l1" (see DistanceKind).
	Distance string
	// QualitySample bounds the number of entries sampled for CentroidQuality; 0 means 1000.
	QualitySample int
	// Batch is the number of pages read per Reader.Read call; 0 means pagescan.DefaultBatch.
	Batch int
}

// Report is the structure of one IVFFlat index.
type Report struct {
	Dimensions, Lists int
	Pages             uint32
	ListSizes         []int64
	Entries           int64
	EmptyLists        int
	ListSizeCV        float64
	CentroidQuality   float64
	Centers           [][]float32 // for drift
	Faults            map[string]int64
}

// Analyze streams the pages of an IVFFlat index from r and returns its structure.
func Analyze(ctx context.Context, r pagescan.Reader, opts Options) (*Report, error) {
	return &Report{Faults: map[string]int64{}}, nil
}

// Distance returns the distance of kind between a and b as pgvector orders it.
func Distance(kind string, a, b []float32) float64 { return 0 }

// NearestCenter returns the index of the center nearest to v and its distance.
func NearestCenter(centers [][]float32, kind string, v []float32) (int, float64) { return -1, 0 }
