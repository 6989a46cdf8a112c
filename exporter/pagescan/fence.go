package pagescan

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

// A Fence is a WAL position read before a scan's first page. get_raw_page copies one page at a
// time, so the pages of one scan are read at different moments; on an index that is being
// written, a scan can see a state that existed only between two WAL records (a neighbour
// pointing at an element on a page read before the element was added). Every change to a
// WAL-logged page sets the page's LSN to the end of its record, after the fence when the
// change came after it. A page whose LSN is not newer than the fence therefore shows the
// relation as of the fence, and a fault that involves only such pages is a fault of one
// consistent state. The others must be read again before a fault involving them counts.
//
// The fence is the WAL insert position on a primary (every record reserved later ends after
// it) and the replay position on a standby (every record replayed later ends after it).
type Fence struct {
	LSN uint64
	// Logged is false for unlogged and temporary relations: their pages carry no LSN, so no
	// page of theirs can be shown to be unchanged.
	Logged bool
}

// PageLSN returns the pd_lsn of page p, or 0 for a page too short to have one.
func PageLSN(p []byte) uint64 {
	if len(p) < 8 {
		return 0
	}
	// pd_lsn is two uint32 halves (xlogid, xrecoff), the high half first.
	return uint64(binary.LittleEndian.Uint32(p[0:]))<<32 | uint64(binary.LittleEndian.Uint32(p[4:]))
}

// Holds reports whether page p has not changed since f was read. A nil Fence holds for every
// page: the caller vouches that the pages are one state (pages copied out of a stopped
// cluster, or built in memory by a test).
func (f *Fence) Holds(p []byte) bool {
	if f == nil {
		return true
	}
	return f.Logged && PageLSN(p) <= f.LSN
}

// ReadFence reads a fence for relation relOID in q's session, and the relation's file node:
// a scan whose relation got a new file node before it ended (REINDEX, VACUUM FULL, TRUNCATE)
// read two relations and is not one state either.
func ReadFence(ctx context.Context, q catalog.Querier, relOID uint32) (f Fence, filenode uint32, err error) {
	var lsn, node int64
	var persistence string
	err = q.QueryRow(ctx, `SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
			ELSE pg_current_wal_insert_lsn() END - '0/0'::pg_lsn)::bigint,
		c.relpersistence::text, coalesce(pg_relation_filenode(c.oid), 0)::bigint
		FROM pg_class c WHERE c.oid = $1::oid`, relOID).Scan(&lsn, &persistence, &node)
	if err != nil {
		return Fence{}, 0, fmt.Errorf("read WAL position and file node of %d: %w", relOID, err)
	}
	return Fence{LSN: uint64(lsn), Logged: persistence == "p"}, uint32(node), nil
}
