package exporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// buildInfo is what the exporter knows of an index's current build: when its relfilenode
// appeared and the table's figures at that moment.
type buildInfo struct {
	relfilenode   uint32
	builtAt       time.Time
	rowsAtBuild   int64  // index entries (reltuples) at the build
	writesAtBuild int64  // n_tup_ins + n_tup_upd + n_tup_del of the table at the build
	xidAtBuild    uint64 // pg_snapshot_xmax of the moment the build was seen
}

// buildKey identifies an index of a target.
type buildKey struct {
	target, datname string
	oid             uint32
}

// buildTracker remembers the current build of each index. observe returns the known build
// when its relfilenode is cur's, or records cur as a new build and returns it.
type buildTracker interface {
	observe(ctx context.Context, k buildKey, cur buildInfo) (buildInfo, error)
}

// memoryBuilds tracks builds for the process's lifetime.
type memoryBuilds struct {
	mu sync.Mutex
	m  map[buildKey]buildInfo
}

func newMemoryBuilds() *memoryBuilds { return &memoryBuilds{m: map[buildKey]buildInfo{}} }

func (b *memoryBuilds) observe(_ context.Context, k buildKey, cur buildInfo) (buildInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old, ok := b.m[k]; ok && old.relfilenode == cur.relfilenode {
		return old, nil
	}
	b.m[k] = cur
	return cur, nil
}

// storeBuilds tracks builds in the state store's index_builds table.
type storeBuilds struct{ pool *pgxpool.Pool }

func (b *storeBuilds) observe(ctx context.Context, k buildKey, cur buildInfo) (buildInfo, error) {
	var old buildInfo
	var xid int64
	err := b.pool.QueryRow(ctx, `SELECT relfilenode, built_at, rows_at_build, writes_at_build, xid_at_build
		FROM index_builds WHERE target = $1 AND datname = $2 AND index_oid = $3`, k.target, k.datname, k.oid).
		Scan(&old.relfilenode, &old.builtAt, &old.rowsAtBuild, &old.writesAtBuild, &xid)
	switch {
	case err == nil && old.relfilenode == cur.relfilenode:
		old.xidAtBuild = uint64(xid)
		return old, nil
	case err != nil && !errors.Is(err, pgx.ErrNoRows):
		return buildInfo{}, fmt.Errorf("read index build: %w", err)
	}
	// A replica may record the same build at the same time; the one whose row lands first
	// wins and both then read it back.
	_, err = b.pool.Exec(ctx, `INSERT INTO index_builds
		(target, datname, index_oid, relfilenode, built_at, rows_at_build, writes_at_build, xid_at_build)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (target, datname, index_oid) DO UPDATE SET relfilenode = EXCLUDED.relfilenode,
		  built_at = EXCLUDED.built_at, rows_at_build = EXCLUDED.rows_at_build,
		  writes_at_build = EXCLUDED.writes_at_build, xid_at_build = EXCLUDED.xid_at_build
		WHERE index_builds.relfilenode <> EXCLUDED.relfilenode`,
		k.target, k.datname, k.oid, cur.relfilenode, cur.builtAt, cur.rowsAtBuild, cur.writesAtBuild, int64(cur.xidAtBuild))
	if err != nil {
		return buildInfo{}, fmt.Errorf("record index build: %w", err)
	}
	return cur, nil
}
