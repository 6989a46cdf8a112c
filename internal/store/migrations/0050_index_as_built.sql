-- As-built baselines: an index's structure (and recall) as vectorheal first measured its
-- current build, so that alerts and repair validation judge the index against its own build
-- rather than against absolute thresholds a healthy pgvector build may already miss. One row
-- per build (relfilenode); the first replica to record a figure wins, later ones read it back.
CREATE TABLE index_as_built (
    target        text        NOT NULL,
    datname       text        NOT NULL,
    index_oid     oid         NOT NULL,
    relfilenode   oid         NOT NULL,
    schemaname    text        NOT NULL,
    indexrelname  text        NOT NULL,
    -- 'build': measured with no deleted element and no dead heap TID since the build;
    -- 'first_seen': first measured after churn, the best baseline there is until a rebuild.
    basis         text        NOT NULL CHECK (basis IN ('build', 'first_seen')),
    recorded_at   timestamptz NOT NULL,
    figures       jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (target, datname, index_oid, relfilenode)
);
-- The Measurer looks a baseline up by name: a concurrent rebuild gives the index a new OID.
CREATE INDEX index_as_built_by_name ON index_as_built (datname, schemaname, indexrelname, recorded_at DESC);
