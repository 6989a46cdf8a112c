package exporter

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// requestPoll is how often each target looks for check requests: an operator who asked for a
// check waits at most this long before it starts.
const requestPoll = 5 * time.Second

// checkRequest is a pending row of check_requests (POST /api/v1/checks, `vectorheal
// request-check`): run the background checks of one index, or of every index of the target
// when indexrelname is empty, ahead of schedule.
type checkRequest struct {
	schema, index string
}

// takeCheckRequests claims the target's pending requests and marks them done. Claiming with
// SKIP LOCKED lets replicas share one state store without running a request twice.
func (e *Exporter) takeCheckRequests(ctx context.Context, t *target) []checkRequest {
	rows, err := e.state.Query(ctx, `UPDATE check_requests SET done_at = now()
		WHERE id IN (SELECT id FROM check_requests WHERE done_at IS NULL AND target = $1
		             FOR UPDATE SKIP LOCKED)
		RETURNING schemaname, indexrelname`, t.Name)
	var reqs []checkRequest
	if err == nil {
		reqs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (checkRequest, error) {
			var c checkRequest
			err := r.Scan(&c.schema, &c.index)
			return c, err
		})
	}
	t.mu.Lock()
	t.noteOutcome("check_requests", "", err)
	t.mu.Unlock()
	for _, r := range reqs {
		t.logger.Info("health check requested", "schemaname", r.schema, "indexrelname", r.index)
	}
	return reqs
}

// makeDue moves the next run of every check of the requested indexes to now.
func (t *target) makeDue(reqs []checkRequest, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ix := range t.indexes {
		for _, r := range reqs {
			if r.index != "" && (r.index != ix.ix.Name || r.schema != ix.ix.Schema) {
				continue
			}
			for _, kind := range []string{kindStructure, kindRecall, kindDrift} {
				j, ok := ix.jobs[kind]
				if !ok {
					j = &job{}
					ix.jobs[kind] = j
				}
				if !j.running {
					j.next = now
				}
			}
		}
	}
}
