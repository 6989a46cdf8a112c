package hnsw

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/exporter/pagescan"
	"github.com/vectorheal/vectorheal/internal/catalog"
)

// Heap tuple header fields needed to follow a HOT chain.
const (
	heapTupleCtid    = 12 // t_ctid
	heapTupleMask2   = 18 // t_infomask2
	heapHotUpdated   = 0x4000
	heapHeaderMinLen = 23
)

// ErrHeapInexact is wrapped by DeadTIDs when heap pages cannot be read to follow HOT chains:
// the count it returns with it is then an upper bound (every TID without a visible row at its
// own place is counted dead, also the roots of HOT-updated rows).
var ErrHeapInexact = errors.New("heap pages unreadable (needs superuser): HOT chains not followed, dead heap TIDs are an upper bound")

type sqlHeap struct {
	q     catalog.Querier
	ix    catalog.Index
	fn    string
	table string
	// canRead: 0 unknown, 1 heap pages readable, -1 not.
	canRead int
}

// SQLHeap returns a HeapChecker that is exact: a heap TID is live when a row visible to the
// query's snapshot sits at it or at a later member of the HOT chain rooted there. An index
// points at the root of a HOT chain, which after an update is no longer the live version
// (after pruning the root is a redirect that no TID scan returns), so TIDs without a visible
// row at their own place are resolved by following their chain on the raw heap page. It needs
// get_raw_page on the table (superuser); pages are read only for those TIDs. Without
// superuser it issues no query that would fail (and abort the caller's transaction) and
// returns the upper bound with ErrHeapInexact.
func SQLHeap(q catalog.Querier, ix catalog.Index) HeapChecker {
	return SQLHeapFunc(q, ix, pagescan.RawPageFunc)
}

// SQLHeapFunc is SQLHeap with another page function with get_raw_page's contract (a constant
// chosen by code, as for pagescan.NewSQLReader); it must accept the table, else its error
// ends the analysis.
func SQLHeapFunc(q catalog.Querier, ix catalog.Index, fn string) HeapChecker {
	return &sqlHeap{q: q, ix: ix, fn: fn, table: ix.QuotedTable()}
}

func (h *sqlHeap) DeadTIDs(ctx context.Context, tids []TID) (int64, error) {
	if len(tids) == 0 {
		return 0, nil
	}
	visible, err := h.visible(ctx, tids)
	if err != nil {
		return 0, err
	}
	// TIDs with no visible row at their own place: candidates for a HOT chain, grouped by block.
	byBlock := map[uint32][]uint16{}
	for _, t := range tids {
		if !visible[t] {
			byBlock[t.Block] = append(byBlock[t.Block], t.Offset)
		}
	}
	if len(byBlock) == 0 {
		return 0, nil
	}
	if ok, err := h.pagesReadable(ctx); err != nil {
		return 0, err
	} else if !ok {
		var n int64
		for _, offs := range byBlock {
			n += int64(len(offs))
		}
		return n, fmt.Errorf("heap TIDs of %s: %w", h.ix.Table, ErrHeapInexact)
	}
	blocks := make([]uint32, 0, len(byBlock))
	for b := range byBlock {
		blocks = append(blocks, b)
	}
	slices.Sort(blocks)
	var dead int64
	// Chains never leave their page, so one heap page resolves all roots on it.
	const perQuery = 64
	for i := 0; i < len(blocks); i += perQuery {
		part := blocks[i:min(i+perQuery, len(blocks))]
		pages, err := h.pages(ctx, part)
		if err != nil {
			return 0, err
		}
		members := map[TID]TID{} // chain member -> root
		var cands []TID
		for _, b := range part {
			for _, off := range byBlock[b] {
				root := TID{Block: b, Offset: off}
				for _, m := range hotChain(pages[b], b, off) {
					members[m] = root
					cands = append(cands, m)
				}
			}
		}
		liveRoots := map[TID]bool{}
		if len(cands) > 0 {
			vis, err := h.visible(ctx, cands)
			if err != nil {
				return 0, err
			}
			for m := range vis {
				liveRoots[members[m]] = true
			}
		}
		for _, b := range part {
			for _, off := range byBlock[b] {
				if !liveRoots[TID{Block: b, Offset: off}] {
					dead++
				}
			}
		}
	}
	return dead, nil
}

// pagesReadable tells, once, whether heap pages can be read: get_raw_page needs superuser;
// another function is trusted to accept the table.
func (h *sqlHeap) pagesReadable(ctx context.Context) (bool, error) {
	if h.canRead == 0 {
		h.canRead = 1
		if h.fn == pagescan.RawPageFunc {
			var super bool
			if err := h.q.QueryRow(ctx, `SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
				return false, fmt.Errorf("heap TIDs of %s: %w", h.ix.Table, err)
			}
			if !super {
				h.canRead = -1
			}
		}
	}
	return h.canRead > 0, nil
}

// visible returns which of tids hold a row visible to the query's snapshot (a TID scan).
func (h *sqlHeap) visible(ctx context.Context, tids []TID) (map[TID]bool, error) {
	strs := make([]string, len(tids))
	for i, t := range tids {
		strs[i] = t.String()
	}
	rows, err := h.q.Query(ctx, `SELECT ctid::text FROM `+h.table+` WHERE ctid = ANY($1::text[]::tid[])`, strs)
	if err != nil {
		return nil, fmt.Errorf("heap TIDs of %s: %w", h.ix.Table, err)
	}
	defer rows.Close()
	out := make(map[TID]bool, len(tids))
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("heap TIDs of %s: %w", h.ix.Table, err)
		}
		t, err := parseTID(s)
		if err != nil {
			return nil, err
		}
		out[t] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("heap TIDs of %s: %w", h.ix.Table, err)
	}
	return out, nil
}

// pages fetches the raw heap pages of the given blocks.
func (h *sqlHeap) pages(ctx context.Context, blocks []uint32) (map[uint32][]byte, error) {
	arg := "$1::oid::regclass"
	if h.fn == pagescan.RawPageFunc {
		arg += "::text"
	}
	fn := pgx.Identifier(strings.Split(h.fn, ".")).Sanitize()
	bs := make([]int64, len(blocks))
	for i, b := range blocks {
		bs[i] = int64(b)
	}
	rows, err := h.q.Query(ctx, `SELECT b, `+fn+`(`+arg+`, b::integer) FROM unnest($2::bigint[]) AS b`, h.ix.TableOID, bs)
	if err != nil {
		return nil, fmt.Errorf("heap pages of %s: %w", h.ix.Table, err)
	}
	defer rows.Close()
	out := make(map[uint32][]byte, len(blocks))
	for rows.Next() {
		var b int64
		var p []byte
		if err := rows.Scan(&b, &p); err != nil {
			return nil, fmt.Errorf("heap pages of %s: %w", h.ix.Table, err)
		}
		out[uint32(b)] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("heap pages of %s: %w", h.ix.Table, err)
	}
	return out, nil
}

// hotChain returns the members of the HOT chain rooted at line pointer root of heap page p,
// after the root itself: the redirect's target and each HOT successor on the same page.
func hotChain(p []byte, block uint32, root uint16) []TID {
	h, err := pagescan.ParseHeader(p)
	if err != nil {
		return nil
	}
	var out []TID
	cur := int(root)
	for steps := 0; steps <= pagescan.ItemCount(h); steps++ {
		lp, err := pagescan.LinePointer(p, h, cur)
		if err != nil {
			return out
		}
		next := 0
		switch lp.Flags {
		case pagescan.LPRedirect:
			next = int(lp.Off)
		case pagescan.LPNormal:
			t, err := pagescan.Item(p, h, cur)
			if err != nil || len(t) < heapHeaderMinLen {
				return out
			}
			if binary.LittleEndian.Uint16(t[heapTupleMask2:])&heapHotUpdated == 0 {
				return out
			}
			c := pagescan.DecodeTID(t[heapTupleCtid:])
			if c.Block != block || int(c.Offset) == cur {
				return out
			}
			next = int(c.Offset)
		default:
			return out
		}
		out = append(out, TID{Block: block, Offset: uint16(next)})
		cur = next
	}
	return out
}

func parseTID(s string) (TID, error) {
	b, o, ok := strings.Cut(strings.Trim(s, "()"), ",")
	if !ok {
		return TID{}, fmt.Errorf("bad tid %q", s)
	}
	bn, err1 := strconv.ParseUint(b, 10, 32)
	on, err2 := strconv.ParseUint(o, 10, 16)
	if err1 != nil || err2 != nil {
		return TID{}, fmt.Errorf("bad tid %q", s)
	}
	return TID{Block: uint32(bn), Offset: uint16(on)}, nil
}

// PacedHeap returns a HeapChecker that reads heap pages through h within the budget of p: each
// call counts the distinct heap blocks its TIDs lie on. A nil p returns h itself.
func PacedHeap(h HeapChecker, p *pagescan.Pacer) HeapChecker {
	if p == nil || h == nil {
		return h
	}
	return &pacedHeap{h: h, p: p}
}

type pacedHeap struct {
	h      HeapChecker
	p      *pagescan.Pacer
	blocks []uint32 // scratch
}

func (ph *pacedHeap) DeadTIDs(ctx context.Context, tids []TID) (int64, error) {
	bs := ph.blocks[:0]
	for _, t := range tids {
		bs = append(bs, t.Block)
	}
	slices.Sort(bs)
	ph.blocks = bs
	if err := ph.p.Wait(ctx, len(slices.Compact(bs))); err != nil {
		return 0, fmt.Errorf("heap TIDs: %w", err)
	}
	return ph.h.DeadTIDs(ctx, tids)
}
