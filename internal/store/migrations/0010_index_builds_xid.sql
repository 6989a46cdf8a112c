-- The transaction counter (pg_snapshot_xmax, a 64-bit xid) when the exporter saw the index's
-- current relfilenode first: rows with a newer xmin were written since the build (drift).
ALTER TABLE index_builds ADD COLUMN xid_at_build bigint NOT NULL DEFAULT 0;
