-- Repairs: one row per runbook entry matched by an alert (or per manual trigger). The row is
-- the durable record; the River job (job_id) only says when to work on it.
CREATE TABLE repairs (
    id                bigserial   PRIMARY KEY,
    job_id            bigint,
    alert_id          bigint      REFERENCES alerts (id) ON DELETE SET NULL,
    fingerprint       text        NOT NULL DEFAULT '',
    alert_starts_at   timestamptz,
    alertname         text        NOT NULL DEFAULT '',
    labels            jsonb       NOT NULL DEFAULT '{}',
    entry             text        NOT NULL,
    plan              jsonb       NOT NULL,
    priority          integer     NOT NULL,
    target            text        NOT NULL DEFAULT '',
    datname           text        NOT NULL DEFAULT '',
    schemaname        text        NOT NULL DEFAULT '',
    relname           text        NOT NULL DEFAULT '',
    indexrelname      text        NOT NULL DEFAULT '',
    state             text        NOT NULL CHECK (state IN ('queued', 'awaiting_approval', 'running',
                          'succeeded', 'failed', 'rolled_back', 'skipped', 'dry_run', 'cancelled')),
    reason            text        NOT NULL DEFAULT '',
    error             text        NOT NULL DEFAULT '',
    requested_by      text        NOT NULL DEFAULT '',
    approved_by       text        NOT NULL DEFAULT '',
    approved_at       timestamptz,
    cancel_requested_by text      NOT NULL DEFAULT '',
    runner            text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz
);
-- The same alert (fingerprint, startsAt) matched to the same entry is one repair, however often
-- Alertmanager sends it.
CREATE UNIQUE INDEX repairs_alert_entry ON repairs (fingerprint, alert_starts_at, entry) WHERE fingerprint <> '';
CREATE INDEX repairs_index ON repairs (target, datname, schemaname, indexrelname, created_at);
CREATE INDEX repairs_state ON repairs (state) WHERE state IN ('queued', 'awaiting_approval', 'running');
CREATE INDEX repairs_finished_at ON repairs (finished_at);

-- Steps of a repair as they ran: impact estimate, SQL, figures, validation, undo data.
CREATE TABLE repair_steps (
    repair_id     bigint      NOT NULL REFERENCES repairs (id) ON DELETE CASCADE,
    position      integer     NOT NULL,
    strategy      text        NOT NULL,
    params        jsonb       NOT NULL DEFAULT '{}',
    state         text        NOT NULL CHECK (state IN ('planned', 'running', 'succeeded', 'failed',
                      'rolled_back', 'rollback_failed', 'dry_run')),
    impact        jsonb,
    statements    jsonb       NOT NULL DEFAULT '[]',
    before        jsonb,
    after         jsonb,
    validation    jsonb,
    undo          jsonb,
    error         text        NOT NULL DEFAULT '',
    started_at    timestamptz,
    finished_at   timestamptz,
    PRIMARY KEY (repair_id, position)
);

-- Circuit breaker per index: failures in a row; open stops auto-healing until reset.
CREATE TABLE circuits (
    target        text        NOT NULL,
    datname       text        NOT NULL,
    schemaname    text        NOT NULL,
    indexrelname  text        NOT NULL,
    relname       text        NOT NULL DEFAULT '',
    failures      integer     NOT NULL DEFAULT 0,
    open          boolean     NOT NULL DEFAULT false,
    opened_at     timestamptz,
    reset_by      text        NOT NULL DEFAULT '',
    reset_at      timestamptz,
    PRIMARY KEY (target, datname, schemaname, indexrelname)
);

-- Health checks requested through the API; the exporter runs the index's background checks
-- ahead of schedule and marks the request done.
CREATE TABLE check_requests (
    id            bigserial   PRIMARY KEY,
    target        text        NOT NULL,
    schemaname    text        NOT NULL DEFAULT '',
    indexrelname  text        NOT NULL DEFAULT '',
    requested_by  text        NOT NULL DEFAULT '',
    requested_at  timestamptz NOT NULL DEFAULT now(),
    done_at       timestamptz
);
CREATE INDEX check_requests_pending ON check_requests (requested_at) WHERE done_at IS NULL;
