package config

import (
	"net/url"
	"strings"
)

// Builds is what index builds on a target (reindex, ivfflat_retrain, reclaim's rebuild) may
// use. How much disk is free is never guessed: it is a budget written here, or the answer of a
// Prometheus query the operator writes here; with neither, builds run and their impact says
// "free disk space not checked".
type Builds struct {
	// FreeSpaceBytes is a budget: the disk space a build on this target may take (the copy of
	// the index a concurrent rebuild writes next to the old one). 0: no budget.
	FreeSpaceBytes int64 `yaml:"free_space_bytes"`
	// FreeSpaceQuery is a PromQL query whose one sample is the free bytes of the volume that
	// holds the target's indexes, asked before every build, e.g.
	// node_filesystem_avail_bytes{instance="db1:9100",mountpoint="/var/lib/postgresql"}.
	// Give it or FreeSpaceBytes, not both. Needs PrometheusURL.
	FreeSpaceQuery string `yaml:"free_space_query"`
	// PrometheusURL is the Prometheus that answers FreeSpaceQuery (its base URL; the HTTP API
	// /api/v1/query is appended).
	PrometheusURL string `yaml:"prometheus_url"`
	// ReserveBytes are kept free whatever a build needs (WAL, the application's growth).
	// Default 0. Needs FreeSpaceBytes or FreeSpaceQuery.
	ReserveBytes int64 `yaml:"reserve_bytes"`
	// MaxParallelWorkers caps max_parallel_maintenance_workers of a build, 0 to 1024. Absent:
	// the server's setting is left. On pgvector versions whose parallel HNSW builds are broken
	// (0.6.0 to 0.8.1) HNSW builds run with 0 whatever this says.
	MaxParallelWorkers *int `yaml:"max_parallel_workers"`
}

// HasFreeSpace says whether the free space of builds is configured at all.
func (b Builds) HasFreeSpace() bool { return b.FreeSpaceBytes > 0 || b.FreeSpaceQuery != "" }

func (b Builds) validate(v *validator, p string) {
	switch {
	case b.FreeSpaceBytes < 0:
		v.errorf(p+".free_space_bytes", "must not be negative, got %d", b.FreeSpaceBytes)
	case b.FreeSpaceBytes > 0 && b.FreeSpaceQuery != "":
		v.errorf(p+".free_space_query", "give only one of free_space_bytes and free_space_query")
	}
	if b.FreeSpaceQuery != "" && strings.TrimSpace(b.FreeSpaceQuery) == "" {
		v.errorf(p+".free_space_query", "is blank")
	}
	switch {
	case b.FreeSpaceQuery != "" && b.PrometheusURL == "":
		v.errorf(p+".prometheus_url", "must be set: free_space_query needs the Prometheus that answers it")
	case b.PrometheusURL != "" && b.FreeSpaceQuery == "":
		v.errorf(p+".prometheus_url", "is set but free_space_query is not: nothing would be asked")
	case b.PrometheusURL != "":
		u, err := url.Parse(b.PrometheusURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.errorf(p+".prometheus_url", "%q is not an http(s) URL", b.PrometheusURL)
		}
	}
	switch {
	case b.ReserveBytes < 0:
		v.errorf(p+".reserve_bytes", "must not be negative, got %d", b.ReserveBytes)
	case b.ReserveBytes > 0 && !b.HasFreeSpace():
		v.errorf(p+".reserve_bytes", "needs free_space_bytes or free_space_query: a reserve of unknown free space checks nothing")
	}
	if w := b.MaxParallelWorkers; w != nil && (*w < 0 || *w > 1024) {
		v.errorf(p+".max_parallel_workers", "must be 0 to 1024 (PostgreSQL's range), got %d", *w)
	}
}
