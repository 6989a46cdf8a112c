-- Alerts as received from Alertmanager. One row per (fingerprint, starts_at, status): a
-- retried notification or the copy an Alertmanager HA peer sends lands on the same row.
CREATE TABLE alerts (
    id              bigserial PRIMARY KEY,
    fingerprint     text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('firing', 'resolved')),
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz,
    alertname       text        NOT NULL,
    labels          jsonb       NOT NULL,
    annotations     jsonb       NOT NULL DEFAULT '{}',
    generator_url   text        NOT NULL DEFAULT '',
    receiver        text        NOT NULL DEFAULT '',
    group_key       text        NOT NULL DEFAULT '',
    received_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    times_received  integer     NOT NULL DEFAULT 1,
    UNIQUE (fingerprint, starts_at, status)
);
CREATE INDEX alerts_received_at ON alerts (received_at);

-- Index build tracking: the exporter notices a rebuild by the index's relfilenode changing and
-- keeps the table's write counter at that moment, for training staleness and rows changed since.
CREATE TABLE index_builds (
    target            text        NOT NULL,
    datname           text        NOT NULL,
    index_oid         oid         NOT NULL,
    relfilenode       oid         NOT NULL,
    built_at          timestamptz NOT NULL,
    rows_at_build     bigint      NOT NULL,
    writes_at_build   bigint      NOT NULL,
    PRIMARY KEY (target, datname, index_oid)
);
