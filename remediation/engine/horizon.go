package engine

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/horizon"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// This file holds back a step that cannot help while something holds back the xmin horizon of
// the index's database (a long or idle-in-transaction session, a prepared transaction, a
// replication slot, a standby's feedback). VACUUM removes no row deleted after the oldest
// snapshot still held, and a rebuild copies such rows into the new index; running them then
// costs I/O and, for an HNSW VACUUM, hours, changes nothing, and would mark the entry futile.
// Which steps are held back is the strategy's property (strategy.NeedsHorizon): vacuum and
// reclaim always, a rebuild only when its validation figure counts dead rows; a REINDEX for
// structural faults or an INVALID index runs.

// heldHorizonFigure is the figure that tells whether the dead rows may predate the holder.
const heldHorizonFigure = "pgvector_table_last_vacuum_age_seconds"

// horizonHolder returns the holder that keeps the step from helping now, nil when the step may
// run. A holder that cannot be read lets the step run as planned: the guard must never be why
// a repair does not run when it would help. A manual repair runs as asked, as it passes the
// other prechecks: the operator who asks for it may know the holder is about to end.
func (e *Engine) horizonHolder(ctx context.Context, log *slog.Logger, r repairRow, step PlanStep, st strategy.Step,
	ix catalog.Index, env strategy.Env) *horizon.Holder {
	cfg := e.o.Config
	if cfg.HorizonMinAge <= 0 || r.Plan.Manual {
		return nil // guard off (a configuration built in code without it), or asked for by hand
	}
	var figures []string
	if step.Validate != nil {
		figures = []string{step.Validate.Figure, step.Validate.Fallback}
	}
	if !strategy.NeedsHorizon(st.Spec(), figures...) {
		return nil
	}
	h, err := horizon.Oldest(ctx, env.Pool, cfg.HorizonMinAge)
	if err != nil {
		log.Warn("xmin horizon unknown, step runs as planned", "err", err)
		return nil
	}
	if h == nil {
		return nil
	}
	if !h.Timed() {
		if h.AgeXIDs < float64(cfg.HorizonMinXIDs) {
			return nil
		}
		return h
	}
	// A holder younger than the table's last VACUUM: the rows that died between that VACUUM and
	// the holder's start are removable, so the step can help. Older (or never vacuumed, or
	// unknown): every dead row left may have died after it.
	last, err := e.o.Measurer.Measure(ctx, env.Pool, ix, heldHorizonFigure)
	if err == nil && !math.IsNaN(last) && h.Age.Seconds() < last {
		return nil
	}
	return h
}

// heldBack records a step held back by h: deferred with a growing delay, until the repair's
// timeout has passed since it was queued; then failed, with nothing run and nothing to roll
// back, so that the runbook's next step (a rebuild for structure, say) may run.
func (e *Engine) heldBack(ctx context.Context, rec *recorder, pos int, step PlanStep, impact *strategy.Impact,
	h *horizon.Holder) stepResult {
	r := rec.r
	why := fmt.Sprintf("xmin horizon held by %s: %s cannot remove rows deleted after it until it ends", h, step.Strategy)
	e.metrics.held.WithLabelValues(step.Strategy, h.Kind).Inc()
	log := e.log.With("repair", r.ID, "step", pos, "strategy", step.Strategy, "holder_kind", h.Kind, "holder", h.Name)
	timeout := r.Plan.Timeout
	if timeout <= 0 {
		timeout = e.o.Config.DefaultTimeout
	}
	if time.Since(r.CreatedAt) < timeout {
		msg := "retry later: " + why
		rec.stepBegins(ctx, pos, step, "deferred", impact, msg)
		log.Info("step held back while the xmin horizon is held", "why", why)
		return stepResult{state: "deferred", err: msg}
	}
	msg := fmt.Sprintf("%s; gave up after the repair's timeout (%s)", why, timeout)
	rec.stepBegins(ctx, pos, step, "failed", impact, msg)
	log.Warn("step not run: the xmin horizon stayed held", "why", why)
	return stepResult{state: "failed", err: msg}
}
