package engine

import "context"

// recoverRepair finishes a repair whose worker died while it ran: a step that had succeeded
// makes it succeeded; a step caught running is rolled back with the undo data saved after Run
// (none if it died inside Run, and the strategy's rollback then cleans up what a Run cut
// short leaves, such as an INVALID *_ccnew index).
func (e *Engine) recoverRepair(ctx context.Context, r repairRow) error {
	e.log.Warn("recovering repair interrupted by a stopped process", "repair", r.ID)
	steps, err := e.repairs.steps(ctx, r.ID)
	if err != nil {
		return err
	}
	rec := e.recorder(r)
	for _, s := range steps {
		if s.State == "succeeded" {
			return rec.finish(ctx, result{outcome: "succeeded", reason: "recovered"})
		}
	}
	ix, env, reason, detail, err := e.resolve(ctx, r)
	if err != nil {
		return err // target down: River retries later
	}
	if reason != "" {
		return rec.finish(ctx, result{outcome: "failed", reason: "interrupted", err: "cannot roll back: " + detail})
	}
	res := result{outcome: "rolled_back", reason: "interrupted", err: "the process running the repair stopped"}
	for _, s := range steps {
		if s.State != "running" {
			continue
		}
		st, err := e.o.Strategies.Bind(s.Strategy, s.Params)
		if err != nil {
			rec.stepEnds(ctx, s.Position, s.Strategy, "failed", nil, nil, false, "interrupted; cannot roll back: "+err.Error())
			res.outcome = "failed"
			continue
		}
		state := e.rollback(ctx, rec, s.Position, s.Strategy, st, ix, env, s.Undo)
		rec.stepEnds(ctx, s.Position, s.Strategy, state, nil, nil, false, "interrupted")
		if state != "rolled_back" {
			res.outcome = "failed"
		}
	}
	return rec.finish(ctx, res)
}

// recoverOrphans recovers, at start, repairs left running by a process that is gone: a
// running repair whose index lock is free has no live worker.
func (e *Engine) recoverOrphans(ctx context.Context) error {
	ids, err := e.repairs.runningIDs(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := e.recoverOne(ctx, id); err != nil {
			// A target that is down now is tried again on the next round.
			e.log.Warn("recover interrupted repair", "repair", id, "err", err)
		}
	}
	return nil
}

func (e *Engine) recoverOne(ctx context.Context, id int64) error {
	r, err := e.repairs.load(ctx, id)
	if err != nil {
		return err
	}
	lock, ok, err := e.lockIndex(ctx, r)
	if err != nil || !ok {
		return err // !ok: a live worker runs it
	}
	defer lock.release(ctx)
	if r, err = e.repairs.load(ctx, id); err != nil || r.State != "running" {
		return err
	}
	return e.recoverRepair(ctx, r)
}
