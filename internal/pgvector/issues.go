package pgvector

import (
	"slices"
	"strings"
)

// Gate is a repair choice vectorheal refuses, or changes, on a version with a known issue.
type Gate string

// The gates. Their names are label values (pgvector_known_issue{gates}) and never change.
const (
	// GateHNSWVacuum: VACUUM is not used as the repair of an HNSW graph with deleted
	// elements; REINDEX INDEX CONCURRENTLY runs first, as pgvector's README advises for heavy
	// churn, so the VACUUM after it finds almost nothing to repair in the fresh graph.
	GateHNSWVacuum Gate = "hnsw_vacuum"
	// GateParallelHNSWBuild: HNSW builds run with max_parallel_maintenance_workers = 0.
	GateParallelHNSWBuild Gate = "parallel_hnsw_build"
)

// Describe says in a few words what the gate changes, for reasons and alerts.
func (g Gate) Describe() string {
	switch g {
	case GateHNSWVacuum:
		return "HNSW vacuum gated: REINDEX CONCURRENTLY runs before VACUUM"
	case GateParallelHNSWBuild:
		return "no parallel HNSW build workers (max_parallel_maintenance_workers = 0)"
	}
	return string(g)
}

// Issue is a known bug of a range of pgvector releases.
type Issue struct {
	// ID names the issue in labels and logs; it never changes.
	ID string
	// Summary is the CHANGELOG entry of the fix, as written there.
	Summary string
	// Methods are the index methods it concerns ("hnsw", "ivfflat").
	Methods []string
	// From is the first affected release; Fixed the first release with the fix. Affected is
	// From <= v < Fixed. Where the CHANGELOG does not say when a bug appeared, From is the
	// release that introduced the code concerned (HNSW in 0.5.0, parallel HNSW builds in
	// 0.6.0), so the range errs on the side of affected.
	From, Fixed Version
	// Source is where the fact comes from: the CHANGELOG section and the pgvector issue.
	Source string
	// Gates are what vectorheal refuses or changes on an affected version; none for issues
	// that are reported only (nothing vectorheal does makes them more or less likely).
	Gates []Gate
}

const changelog = "https://github.com/pgvector/pgvector/blob/master/CHANGELOG.md"

// KnownIssues returns the table of known issues that matter to vacuum, reindex and build
// decisions, oldest fix first. Each entry is one line of pgvector's CHANGELOG; the affected
// ranges were checked against pgvector's git history (the code each fix changed, and when it
// was added).
func KnownIssues() []Issue {
	hnsw, ivf := []string{"hnsw"}, []string{"ivfflat"}
	return []Issue{
		{
			ID:      "ivfflat_insert_corruption",
			Summary: "Fixed issue with inserts silently corrupting ivfflat indexes (introduced in 0.2.7); recreate all ivfflat indexes after upgrading",
			Methods: ivf, From: V(0, 2, 7), Fixed: V(0, 3, 1),
			Source: changelog + "#031-2022-11-02",
		},
		{
			ID:      "hnsw_build_alloc_error",
			Summary: "Fixed `invalid memory alloc request size` error with HNSW index builds",
			Methods: hnsw, From: V(0, 5, 0), Fixed: V(0, 6, 0),
			Source: changelog + "#060-2024-01-29",
		},
		{
			ID:      "hnsw_parallel_build_locking",
			Summary: "Fixed locking for parallel HNSW index builds",
			Methods: hnsw, From: V(0, 6, 0), Fixed: V(0, 7, 4),
			Source: changelog + "#074-2024-08-05 (pgvector issue #635)",
			Gates:  []Gate{GateParallelHNSWBuild},
		},
		{
			ID:      "hnsw_parallel_build_overflow",
			Summary: "Fixed buffer overflow with parallel HNSW index build",
			Methods: hnsw, From: V(0, 6, 0), Fixed: V(0, 8, 2),
			Source: changelog + "#082-2026-02-25 (pgvector issue #959)",
			Gates:  []Gate{GateParallelHNSWBuild},
		},
		{
			ID:      "hnsw_vacuum_corruption",
			Summary: "Fixed possible index corruption with HNSW vacuuming",
			Methods: hnsw, From: V(0, 5, 0), Fixed: V(0, 8, 3),
			Source: changelog + "#083-2026-06-17 (pgvector issue #988)",
			Gates:  []Gate{GateHNSWVacuum},
		},
		{
			// The check raising this error was added in 0.8.3 itself.
			ID:      "hnsw_vacuum_not_repaired",
			Summary: "Fixed `hnsw graph not repaired` error with HNSW vacuuming",
			Methods: hnsw, From: V(0, 8, 3), Fixed: V(0, 8, 4),
			Source: changelog + "#084-2026-06-30 (pgvector issue #993)",
			Gates:  []Gate{GateHNSWVacuum},
		},
		{
			ID:      "hnsw_vacuum_insert_error",
			Summary: "Fixed possible error with inserts during HNSW vacuuming",
			Methods: hnsw, From: V(0, 5, 0), Fixed: V(0, 8, 4),
			Source: changelog + "#084-2026-06-30 (pgvector issue #993)",
			Gates:  []Gate{GateHNSWVacuum},
		},
		{
			ID:      "ivfflat_build_memory",
			Summary: "Fixed memory exceeding `maintenance_work_mem` with IVFFlat index builds",
			Methods: ivf, From: V(0, 1, 0), Fixed: V(0, 8, 4),
			Source: changelog + "#084-2026-06-30 (pgvector issue #986)",
		},
	}
}

// Affects reports whether v is in the issue's affected range.
func (i Issue) Affects(v Version) bool {
	return !v.Less(i.From) && v.Less(i.Fixed)
}

// GateList is the issue's gates as one label value: "hnsw_vacuum", several joined by commas,
// or "none".
func (i Issue) GateList() string {
	if len(i.Gates) == 0 {
		return "none"
	}
	s := make([]string, len(i.Gates))
	for k, g := range i.Gates {
		s[k] = string(g)
	}
	return strings.Join(s, ",")
}

// Affecting returns the known issues of v, in the order of KnownIssues.
func Affecting(v Version) []Issue {
	var out []Issue
	for _, i := range KnownIssues() {
		if i.Affects(v) {
			out = append(out, i)
		}
	}
	return out
}

// Gated returns the issues of v that close gate g; none means g is open on v.
func Gated(v Version, g Gate) []Issue {
	var out []Issue
	for _, i := range Affecting(v) {
		if slices.Contains(i.Gates, g) {
			out = append(out, i)
		}
	}
	return out
}

// Gates returns every gate closed on v, each once, in the order they first appear.
func Gates(v Version) []Gate {
	var out []Gate
	for _, i := range Affecting(v) {
		for _, g := range i.Gates {
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	return out
}

// GateReason explains why g is closed on v, e.g. "pgvector 0.8.0 < 0.8.4: HNSW vacuum gated:
// REINDEX CONCURRENTLY runs before VACUUM (hnsw_vacuum_corruption, fixed in 0.8.3;
// hnsw_vacuum_insert_error, fixed in 0.8.4)"; empty when g is open.
func GateReason(v Version, g Gate) string {
	issues := Gated(v, g)
	if len(issues) == 0 {
		return ""
	}
	fixed := issues[0].Fixed
	parts := make([]string, len(issues))
	for k, i := range issues {
		if fixed.Less(i.Fixed) {
			fixed = i.Fixed
		}
		parts[k] = i.ID + ", fixed in " + i.Fixed.String()
	}
	return "pgvector " + v.String() + " < " + fixed.String() + ": " + g.Describe() + " (" + strings.Join(parts, "; ") + ")"
}
