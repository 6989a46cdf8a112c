package strategy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/pgvector"
)

// This file applies the resource guards of guard.go to the builds the strategies run
// (reindex, ivfflat_retrain, reclaim): the disk guard before the build starts, and the session
// settings PlanBuild chooses, with the pgvector version read from the target itself.

// Resources is what the operator configured about a target's room for builds. The engine
// fills it from the target's configuration; a nil *Resources means nothing is configured.
type Resources struct {
	// FreeSpace returns the free disk space a build on the target would use: a configured
	// budget, or the answer of a configured Prometheus query. nil: none configured, and the
	// disk guard says "free space not checked" instead of guessing.
	FreeSpace func(ctx context.Context) (*FreeSpace, error)
	// MaxParallelWorkers caps max_parallel_maintenance_workers of a build; negative: not
	// configured, the server's setting is left (except where a version gate sets 0).
	MaxParallelWorkers int
}

func (r *Resources) maxParallelWorkers() int {
	if r == nil {
		return -1
	}
	return r.MaxParallelWorkers
}

// buildPlan is how one build will run, decided before it starts.
type buildPlan struct {
	version  string // pgvector's extversion on the target; "" when it could not be read
	settings BuildSettings
	disk     string // the disk guard's note
	notes    []string
}

// set lists the statements that put the settings into effect, as the impact shows them.
func (b buildPlan) set() []string {
	var out []string
	if b.settings.MaintenanceWorkMem > 0 {
		out = append(out, "SET maintenance_work_mem = '"+strconv.FormatInt(b.settings.MaintenanceWorkMem/1024, 10)+"kB'")
	}
	if b.settings.ParallelWorkers >= 0 {
		out = append(out, "SET max_parallel_maintenance_workers = "+strconv.Itoa(b.settings.ParallelWorkers))
	}
	return out
}

// note is the plan in one line for the impact: settings, gates and the disk guard.
func (b buildPlan) note() string {
	return strings.Join(append(append([]string{}, b.notes...), b.disk), "; ")
}

// apply puts the settings into effect on the build's own session and returns the statements
// run, as the outcome records them.
func (b buildPlan) apply(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	var done []string
	if m := b.settings.MaintenanceWorkMem; m > 0 {
		if _, err := setMaintenanceWorkMem(ctx, conn, m); err != nil {
			return done, err
		}
		done = append(done, b.set()[0])
	}
	if w := b.settings.ParallelWorkers; w >= 0 {
		if _, err := conn.Exec(ctx, "SELECT set_config('max_parallel_maintenance_workers', $1, false)", strconv.Itoa(w)); err != nil {
			return done, fmt.Errorf("set max_parallel_maintenance_workers to %d: %w", w, err)
		}
		done = append(done, "SET max_parallel_maintenance_workers = "+strconv.Itoa(w))
	}
	return done, nil
}

// installedVersion reads pgvector's version on the target; "" and a note when it cannot, so
// every gate stays closed.
func installedVersion(ctx context.Context, q querier) (string, string) {
	in, err := pgvector.Installed(ctx, q)
	if err != nil {
		return "", fmt.Sprintf("pgvector version not read (%v): gates closed", err)
	}
	return in.Raw, ""
}

// planBuild decides how a build of ix runs: memory (memory bytes wanted, up to maxMemory),
// parallel workers within the target's cap and pgvector's gates, and whether diskNeed bytes
// fit the target's free space. A build that does not fit returns a *SpaceError.
func planBuild(ctx context.Context, env Env, ix catalog.Index, what string, memory, maxMemory, diskNeed int64) (buildPlan, error) {
	var b buildPlan
	var note string
	b.version, note = installedVersion(ctx, env.Pool)
	if note != "" {
		b.notes = append(b.notes, note)
	}
	current, err := settingBytes(ctx, env.Pool, "maintenance_work_mem")
	if err != nil {
		return buildPlan{}, err
	}
	b.settings, err = PlanBuild(BuildInput{Method: ix.Method, PgvectorVersion: b.version, GraphBytes: memory,
		MaintenanceWorkMem: current, MaxMaintenanceWorkMem: maxMemory, MaxParallelWorkers: env.Resources.maxParallelWorkers()})
	if err != nil {
		return buildPlan{}, err
	}
	b.notes = append(b.notes, b.settings.Notes...)
	b.disk, err = guardDisk(ctx, env, what, diskNeed)
	return b, err
}

// guardDisk asks the target's configured free space whether diskNeed bytes fit.
func guardDisk(ctx context.Context, env Env, what string, diskNeed int64) (string, error) {
	var free *FreeSpace
	if env.Resources != nil && env.Resources.FreeSpace != nil {
		f, err := env.Resources.FreeSpace(ctx)
		if err != nil {
			// Not knowing is not "enough": the build waits until the source answers.
			return "", fmt.Errorf("disk guard of %s: %w", what, err)
		}
		free = f
	}
	return GuardDisk(what, diskNeed, free)
}

// IsSpaceError says whether err is a build refused for lack of disk space.
func IsSpaceError(err error) bool {
	var se *SpaceError
	return errors.As(err, &se)
}
