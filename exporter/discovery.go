package exporter

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

// buildSQL reads, for the given indexes, what build tracking records when a relfilenode is new.
const buildSQL = `
SELECT c.oid, greatest(c.reltuples, t.reltuples, 0)::bigint,
       coalesce(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0),
       pg_snapshot_xmax(pg_current_snapshot())::text::bigint
FROM pg_class c
JOIN pg_index i ON i.indexrelid = c.oid
JOIN pg_class t ON t.oid = i.indrelid
LEFT JOIN pg_stat_user_tables s ON s.relid = i.indrelid
WHERE c.oid = ANY($1)`

// discover lists the target's watched vector indexes, finds how pages can be read, and
// records new builds. Indexes that appeared are added, dropped ones forgotten.
func (e *Exporter) discover(ctx context.Context, t *target) error {
	start := time.Now()
	found, err := e.listIndexes(ctx, t)
	if err != nil {
		err = fmt.Errorf("discovery: %w", err)
		t.mu.Lock()
		t.record(kindDiscovery, 0, start, err)
		if msg := err.Error(); msg != t.discErr {
			t.discErr = msg
			t.logger.Warn("cannot list vector indexes", "err", err)
		}
		t.mu.Unlock()
		return err
	}

	builds := map[uint32]buildInfo{}
	for _, ix := range found.list {
		b := found.builds[ix.OID]
		b.relfilenode, b.builtAt = ix.Relfilenode, time.Now()
		got, err := e.builds.observe(ctx, buildKey{t.Name, ix.Datname, ix.OID}, b)
		if err != nil {
			// Staleness of this index stays unknown this round; the other figures go on.
			t.logger.Warn("index build tracking", "index", ix.String(), "err", err)
			continue
		}
		builds[ix.OID] = got
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.discErr != "" {
		t.logger.Info("vector indexes listed again", "indexes", len(found.list))
		t.discErr = ""
	}
	t.record(kindDiscovery, 0, start, nil)
	t.setReader(found.reader)
	t.elsewhere = found.elsewhere
	t.updateIndexes(found.list, builds, e.cfg.Recall.LatencyBuckets)
	t.discovered = true
	return nil
}

// discovered is what one discovery read from the target's catalog.
type discovered struct {
	list      []catalog.Index // the watched indexes this replica measures
	elsewhere map[string]bool // the watched indexes other shards measure
	reader    pageReader
	builds    map[uint32]buildInfo // the build figures of list, by OID
}

// listIndexes reads the target's watched vector indexes, how its pages can be read and the
// build figures of its indexes, in one read-only transaction.
func (e *Exporter) listIndexes(ctx context.Context, t *target) (discovered, error) {
	d := discovered{elsewhere: map[string]bool{}, builds: map[uint32]buildInfo{}}
	err := readOnly(ctx, t.Pool, e.cfg.StatisticsTimeout, func(tx pgx.Tx) error {
		all, err := catalog.List(ctx, tx)
		if err != nil {
			return err
		}
		var oids []uint32
		for _, ix := range all {
			switch {
			case !t.Watches(ix.Schema, ix.Name):
			case e.ownsIndex(t, ix):
				d.list = append(d.list, ix)
				oids = append(oids, ix.OID)
			default:
				d.elsewhere[ix.String()] = true
			}
		}
		if d.reader, err = detectPageReader(ctx, tx, pageReaderSchema(e.cfg)); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, buildSQL, oids)
		if err != nil {
			return fmt.Errorf("build figures: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var oid uint32
			var b buildInfo
			var xid int64
			if err := rows.Scan(&oid, &b.rowsAtBuild, &b.writesAtBuild, &xid); err != nil {
				return fmt.Errorf("build figures: %w", err)
			}
			b.xidAtBuild = uint64(xid)
			d.builds[oid] = b
		}
		return rows.Err()
	})
	return d, err
}

// updateIndexes makes t's indexes those of list: new ones added (logged after the first
// discovery), rebuilt ones' results dropped, gone ones forgotten. t.mu must be held.
func (t *target) updateIndexes(list []catalog.Index, builds map[uint32]buildInfo, latencyBuckets []float64) {
	seen := map[uint32]bool{}
	for _, ix := range list {
		seen[ix.OID] = true
		st, ok := t.indexes[ix.OID]
		if !ok {
			st = &index{jobs: map[string]*job{}, latency: newHistogram(latencyBuckets)}
			t.indexes[ix.OID] = st
			if t.discovered {
				attrs := []any{"index", ix.String(), "method", ix.Method}
				if ix.ParentIndex != "" {
					attrs = append(attrs, "partition_of", ix.ParentSchema+"."+ix.ParentIndex)
				}
				t.logger.Info("new vector index", attrs...)
			}
		}
		if b, ok := builds[ix.OID]; ok {
			if st.build.relfilenode != 0 && st.build.relfilenode != b.relfilenode {
				// A rebuilt index: results of the old build no longer describe it.
				st.structure, st.recall, st.drift, st.faultKinds, st.asBuilt = nil, nil, nil, nil, nil
				for _, j := range st.jobs {
					j.next = time.Now()
				}
			}
			st.build = b
		}
		st.ix = ix
	}
	for oid, st := range t.indexes {
		if !seen[oid] {
			t.logger.Info("vector index gone", "index", st.ix.String())
			delete(t.indexes, oid)
			for _, cs := range t.collectors {
				delete(cs.ok, oid)
			}
		}
	}
}

// setReader records how pages are read, logging only changes. t.mu must be held.
func (t *target) setReader(r pageReader) {
	if t.readerSeen && r == t.reader {
		return
	}
	switch {
	case r.index == "":
		t.logger.Warn("index pages cannot be read: structure metrics are absent", "reason", r.why)
		for _, ix := range t.indexes {
			ix.structure = nil
		}
	case r.heap == "":
		t.logger.Warn("index pages readable, heap pages not: dead heap TIDs are published only where no HOT chain needs following; pgvector_index_dead_entries_estimated stands in",
			"function", r.index, "reason", r.heapWhy)
	default:
		t.logger.Info("index pages readable", "function", r.index, "heap_function", r.heap)
	}
	t.reader, t.readerSeen = r, true
}
