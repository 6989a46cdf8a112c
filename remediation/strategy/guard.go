package strategy

import (
	"fmt"
	"strings"

	"github.com/vectorheal/vectorheal/internal/pgvector"
)

// This file holds the resource guards of a build, as pure logic: whether the disk space it
// needs is there, and the maintenance_work_mem and parallel workers it runs with. The numbers
// come from the caller (the configured budget, a Prometheus query, the catalog); nothing here
// guesses them.

// FreeSpace is what is known of the free space a build would use.
type FreeSpace struct {
	// Bytes is the free space. It comes from a budget configured for the target or from a
	// Prometheus query the operator configures (e.g. node_filesystem_avail_bytes of the
	// volume of the data directory), never from a guess.
	Bytes int64
	// Reserve is kept free whatever the build needs (e.g. for WAL and the application).
	Reserve int64
	// Source says where Bytes comes from, for messages: `budget free_space_bytes of target
	// "prod"` or `Prometheus query node_filesystem_avail_bytes{mountpoint="/var/lib/postgresql"}`.
	Source string
}

// SpaceError is a build refused for lack of disk space.
type SpaceError struct {
	What      string // the build, e.g. "REINDEX INDEX CONCURRENTLY public.items_embedding_idx"
	Need      int64
	Free      FreeSpace
	Shortfall int64
}

func (e *SpaceError) Error() string {
	avail := e.Free.Bytes - e.Free.Reserve
	msg := fmt.Sprintf("%s refused: it needs %s of disk, the %s allows %s", e.What, bytesText(e.Need), e.Free.Source, bytesText(max(avail, 0)))
	if e.Free.Reserve > 0 {
		msg += fmt.Sprintf(" (%s free less a reserve of %s)", bytesText(e.Free.Bytes), bytesText(e.Free.Reserve))
	}
	return msg + fmt.Sprintf(": short by %s", bytesText(e.Shortfall))
}

// GuardDisk checks that a build needing need bytes fits free. Without a known free space
// (free nil) nothing is checked and the note says so: the guard never assumes space it was not
// told about. A refusal is a *SpaceError naming the budget and the shortfall.
func GuardDisk(what string, need int64, free *FreeSpace) (note string, err error) {
	if need < 0 {
		return "", fmt.Errorf("disk guard of %s: need %d bytes: must not be negative", what, need)
	}
	if free == nil {
		return "free disk space not checked: no budget or Prometheus query configured for the target", nil
	}
	if free.Bytes < 0 || free.Reserve < 0 || strings.TrimSpace(free.Source) == "" {
		return "", fmt.Errorf("disk guard of %s: free space %d bytes, reserve %d bytes, source %q: want non-negative sizes and a source", what, free.Bytes, free.Reserve, free.Source)
	}
	if short := need - (free.Bytes - free.Reserve); short > 0 {
		return "", &SpaceError{What: what, Need: need, Free: *free, Shortfall: short}
	}
	return fmt.Sprintf("needs %s of disk; the %s allows %s", bytesText(need), free.Source, bytesText(free.Bytes-free.Reserve)), nil
}

// BuildInput is what sizing a build's session settings knows.
type BuildInput struct {
	Method          string // "hnsw" or "ivfflat"
	PgvectorVersion string // pg_extension.extversion; empty or unreadable: unknown
	// GraphBytes is the memory the build wants (for HNSW, the whole graph in memory, see
	// hnswBuildMemory); 0 leaves maintenance_work_mem as it is.
	GraphBytes int64
	// MaintenanceWorkMem is the session's current setting, MaxMaintenanceWorkMem the
	// configured cap of what a build may raise it to.
	MaintenanceWorkMem, MaxMaintenanceWorkMem int64
	// MaxParallelWorkers is the configured cap of parallel maintenance workers; negative
	// means not configured: the server's max_parallel_maintenance_workers is left alone
	// (except where a version gate sets it to 0).
	MaxParallelWorkers int
}

// BuildSettings are the session settings a build runs with.
type BuildSettings struct {
	MaintenanceWorkMem int64 // bytes to set; 0 leaves the setting
	ParallelWorkers    int   // max_parallel_maintenance_workers to set; -1 leaves the setting
	Notes              []string
}

// PlanBuild sizes maintenance_work_mem to the graph within the cap and chooses the parallel
// workers within theirs, except on pgvector versions whose parallel HNSW builds are broken.
func PlanBuild(in BuildInput) (BuildSettings, error) {
	switch {
	case in.Method != "hnsw" && in.Method != "ivfflat":
		return BuildSettings{}, fmt.Errorf("build settings: method %q: want hnsw or ivfflat", in.Method)
	case in.GraphBytes < 0 || in.MaintenanceWorkMem < 0 || in.MaxMaintenanceWorkMem < 0:
		return BuildSettings{}, fmt.Errorf("build settings: memory sizes must not be negative (graph %d, maintenance_work_mem %d, cap %d)",
			in.GraphBytes, in.MaintenanceWorkMem, in.MaxMaintenanceWorkMem)
	}
	out := BuildSettings{ParallelWorkers: -1}
	switch need := in.GraphBytes; {
	case need == 0:
	case need <= in.MaintenanceWorkMem:
		out.Notes = append(out.Notes, fmt.Sprintf("the graph (~%s) fits the current maintenance_work_mem (%s)", bytesText(need), bytesText(in.MaintenanceWorkMem)))
	case need <= in.MaxMaintenanceWorkMem:
		out.MaintenanceWorkMem = need
		out.Notes = append(out.Notes, fmt.Sprintf("maintenance_work_mem raised to %s for the session so the graph fits", bytesText(need)))
	default:
		if in.MaxMaintenanceWorkMem > in.MaintenanceWorkMem {
			out.MaintenanceWorkMem = in.MaxMaintenanceWorkMem
		}
		out.Notes = append(out.Notes, fmt.Sprintf("the graph needs ~%s but the cap is %s: the build will spill to disk and be slower",
			bytesText(need), bytesText(in.MaxMaintenanceWorkMem)))
	}

	gate := ""
	if in.Method == "hnsw" {
		gate = parallelBuildGate(in.PgvectorVersion)
	}
	switch {
	case gate != "":
		out.ParallelWorkers = 0
		out.Notes = append(out.Notes, gate)
	case in.MaxParallelWorkers >= 0:
		out.ParallelWorkers = in.MaxParallelWorkers
		if in.Method == "hnsw" && in.MaxParallelWorkers > 0 {
			// pgvector's README: a parallel HNSW build keeps its graph in shared memory.
			out.Notes = append(out.Notes, fmt.Sprintf("up to %d parallel workers; the graph is in shared memory, so /dev/shm must hold maintenance_work_mem", in.MaxParallelWorkers))
		}
	}
	if in.Method == "ivfflat" {
		if v, err := pgvector.ParseVersion(in.PgvectorVersion); err != nil || pgvector.V(0, 8, 4).Compare(v) > 0 {
			out.Notes = append(out.Notes, "pgvector before 0.8.4 may exceed maintenance_work_mem in IVFFlat builds (ivfflat_build_memory): leave memory headroom")
		}
	}
	return out, nil
}

// parallelBuildGate says why parallel HNSW build workers are off on version, or "".
func parallelBuildGate(version string) string {
	v, err := pgvector.ParseVersion(version)
	if err != nil {
		return "pgvector version unknown or not understood: no parallel HNSW build workers, as on an affected version"
	}
	return pgvector.GateReason(v, pgvector.GateParallelHNSWBuild)
}

// bytesText writes a size as the rest of vectorheal does: MB (MiB) from 1 MB up, else bytes.
func bytesText(n int64) string {
	switch {
	case n >= 10<<30:
		return fmt.Sprintf("%d GB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
