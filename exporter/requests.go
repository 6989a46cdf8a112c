package exporter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/shard"
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

// takeCheckRequests returns the target's pending requests this replica acts on, and marks
// done those that are its alone. A replica that runs none of the background checks takes none:
// it would mark them done and run nothing. With one shard every request is this replica's,
// claimed with SKIP LOCKED so that replicas sharing one state store never run a request twice;
// so is every request of a target when sharding by target, as the one shard that visits the
// target measures all of it. With several shards by index, takeShardRequests decides.
func (e *Exporter) takeCheckRequests(ctx context.Context, t *target) []checkRequest {
	if !e.measures() {
		return nil
	}
	var reqs []checkRequest
	var err error
	if e.shard.Total > 1 && e.shard.Granularity() == shard.ByIndex {
		reqs, err = e.takeShardRequests(ctx, t)
	} else {
		reqs, err = e.claimRequests(ctx, t)
	}
	t.mu.Lock()
	t.noteOutcome("check_requests", "", err)
	t.mu.Unlock()
	for _, r := range reqs {
		t.logger.Info("health check requested", "schemaname", r.schema, "indexrelname", r.index)
	}
	return reqs
}

// measures says whether the exporter runs any background check.
func (e *Exporter) measures() bool {
	return !e.cfg.Structure.Disabled || !e.cfg.Recall.Disabled || !e.cfg.Drift.Disabled
}

// claimRequests claims every pending request of the target and marks it done.
func (e *Exporter) claimRequests(ctx context.Context, t *target) ([]checkRequest, error) {
	rows, err := e.state.Query(ctx, `UPDATE check_requests SET done_at = now()
		WHERE id IN (SELECT id FROM check_requests WHERE done_at IS NULL AND target = $1
		             FOR UPDATE SKIP LOCKED)
		RETURNING schemaname, indexrelname`, t.Name)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (checkRequest, error) {
		var c checkRequest
		err := r.Scan(&c.schema, &c.index)
		return c, err
	})
}

// takeShardRequests is takeCheckRequests of one shard of several. A request for one index is
// the business of the shard that measures the index, and that shard alone claims it: taken by
// another, it would be marked done and never run. A request for the whole target is every
// shard's: each acts on it once, and none marks it done, as no shard knows when the others
// have; the engine deletes it with the history (remediation.history_retention).
func (e *Exporter) takeShardRequests(ctx context.Context, t *target) ([]checkRequest, error) {
	rows, err := e.state.Query(ctx, `SELECT id FROM check_requests
		WHERE done_at IS NULL AND target = $1 AND indexrelname = ''`, t.Name)
	if err != nil {
		return nil, err
	}
	whole, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	var reqs []checkRequest
	err = pgx.BeginFunc(ctx, e.state, func(tx pgx.Tx) error {
		reqs = nil
		rows, err := tx.Query(ctx, `SELECT id, schemaname, indexrelname FROM check_requests
			WHERE done_at IS NULL AND target = $1 AND indexrelname <> '' FOR UPDATE SKIP LOCKED`, t.Name)
		if err != nil {
			return err
		}
		type pending struct {
			id  int64
			req checkRequest
		}
		ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pending, error) {
			var p pending
			err := r.Scan(&p.id, &p.req.schema, &p.req.index)
			return p, err
		})
		if err != nil {
			return err
		}
		var mine []int64
		for _, p := range ps {
			owns, err := e.ownsRequested(ctx, t, p.req)
			if err != nil {
				return err
			}
			if owns {
				mine = append(mine, p.id)
				reqs = append(reqs, p.req)
			}
		}
		if len(mine) == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE check_requests SET done_at = now() WHERE id = ANY($1)`, mine)
		return err
	})
	if err != nil {
		return nil, err
	}
	seen := make(map[int64]bool, len(whole))
	for _, id := range whole {
		if !t.requestsSeen[id] {
			reqs = append(reqs, checkRequest{})
		}
		seen[id] = true
	}
	t.requestsSeen = seen
	return reqs, nil
}

// ownsRequested says whether this shard measures the index r names, read from the catalog
// as discovery reads it (a partition's index goes with its parent index). A request for an
// index that does not exist or is not a vector index goes to the shard that owns the target,
// so that one shard marks it done.
func (e *Exporter) ownsRequested(ctx context.Context, t *target, r checkRequest) (bool, error) {
	var ix catalog.Index
	err := readOnly(ctx, t.Pool, e.cfg.StatisticsTimeout, func(tx pgx.Tx) error {
		var err error
		ix, err = catalog.Resolve(ctx, tx, r.schema, r.index)
		return err
	})
	switch {
	case errors.Is(err, catalog.ErrNotFound), errors.Is(err, catalog.ErrNotVector):
		return e.ownsTarget(t), nil
	case err != nil:
		return false, fmt.Errorf("check request for %s.%s: %w", r.schema, r.index, err)
	}
	return e.ownsIndex(t, ix), nil
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
