// Package hnswtest injects faults into real HNSW indexes of a test cluster, so tests of the
// analysis, the exporter and the repairs can see a damaged graph: it stops the cluster, edits
// the index file in place and starts it again.
package hnswtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/exporter/hnsw"
	"github.com/vectorheal/vectorheal/exporter/pagescan"
	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// segmentBlocks is the number of blocks per 1 GiB segment file.
const segmentBlocks = 1 << 30 / pagescan.PageSize

// Graph is an HNSW index decoded completely in memory, for tests on small indexes.
type Graph struct {
	Meta     hnsw.Meta
	Elements map[hnsw.TID]*Element
	Order    []hnsw.TID // elements in block order
}

// Element is one element tuple and its neighbour tuple.
type Element struct {
	hnsw.Element
	TID TID
	// Neighbors lists the valid slots of its neighbour tuple when the versions match, top
	// layer first; Slots gives where each sits in the index (neighbour tuple TID, slot index).
	Neighbors []hnsw.TID
	Slots     []Slot
	Live      bool
}

// TID is hnsw.TID.
type TID = hnsw.TID

// Slot is the place of one neighbour slot: the neighbour tuple and the slot index in it.
type Slot struct {
	Tuple    hnsw.TID
	Index    int
	Position int64 // byte offset of the slot in the relation
}

// Load decodes the whole index through get_raw_page.
func Load(ctx context.Context, q catalog.Querier, ix catalog.Index) (*Graph, error) {
	r := pagescan.NewSQLReader(q, ix.OID, 0, pagescan.RawPageFunc)
	g := &Graph{Elements: map[hnsw.TID]*Element{}}
	ntuples := map[hnsw.TID]struct {
		nt  hnsw.NeighborTuple
		pos int64
	}{}
	err := pagescan.Scan(ctx, r, 0, func(block uint32, p []byte) error {
		if block == 0 {
			m, err := hnsw.ParseMeta(p)
			g.Meta = m
			return err
		}
		h, err := pagescan.ParseHeader(p)
		if err != nil {
			return fmt.Errorf("block %d: %w", block, err)
		}
		for off := 1; off <= pagescan.ItemCount(h); off++ {
			b, err := pagescan.Item(p, h, off)
			if err != nil {
				continue
			}
			lp, _ := pagescan.LinePointer(p, h, off)
			t := hnsw.TID{Block: block, Offset: uint16(off)}
			switch b[0] {
			case 1:
				e, err := hnsw.ParseElement(b)
				if err != nil {
					return fmt.Errorf("%v: %w", t, err)
				}
				g.Elements[t] = &Element{Element: e, TID: t, Live: e.NHeap > 0}
				g.Order = append(g.Order, t)
			case 2:
				nt, err := hnsw.ParseNeighborTuple(append([]byte(nil), b...))
				if err != nil {
					return fmt.Errorf("%v: %w", t, err)
				}
				ntuples[t] = struct {
					nt  hnsw.NeighborTuple
					pos int64
				}{nt, int64(block)*pagescan.PageSize + int64(lp.Off) + 4}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, e := range g.Elements {
		n, ok := ntuples[e.Neighbor]
		if !ok || n.nt.Version != e.Version || e.Deleted {
			continue
		}
		for i := range n.nt.Count {
			if s := n.nt.Slot(i); s.Valid() {
				e.Neighbors = append(e.Neighbors, s)
				e.Slots = append(e.Slots, Slot{Tuple: e.Neighbor, Index: i, Position: n.pos + int64(i)*pagescan.TIDSize})
			}
		}
	}
	return g, nil
}

// Reachable returns the elements reached from the entry point over every valid edge,
// ignoring the edges into the elements of cut.
func (g *Graph) Reachable(cut map[hnsw.TID]bool) map[hnsw.TID]bool {
	seen := map[hnsw.TID]bool{}
	if _, ok := g.Elements[g.Meta.EntryPoint]; !ok {
		return seen
	}
	queue := []hnsw.TID{g.Meta.EntryPoint}
	seen[g.Meta.EntryPoint] = true
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for _, v := range g.Elements[u].Neighbors {
			if _, ok := g.Elements[v]; !ok || seen[v] || cut[v] {
				continue
			}
			seen[v] = true
			queue = append(queue, v)
		}
	}
	return seen
}

// Orphans returns the live elements other than the entry point that no live element lists,
// ignoring the edges into the elements of cut.
func (g *Graph) Orphans(cut map[hnsw.TID]bool) map[hnsw.TID]bool {
	in := map[hnsw.TID]bool{}
	for _, e := range g.Elements {
		if !e.Live {
			continue
		}
		for _, v := range e.Neighbors {
			if v != e.TID && !cut[v] {
				in[v] = true
			}
		}
	}
	out := map[hnsw.TID]bool{}
	for t, e := range g.Elements {
		if e.Live && !in[t] && t != g.Meta.EntryPoint {
			out[t] = true
		}
	}
	return out
}

// CutInLinks chooses n live layer-0 elements of index schema.index in database dsn that are
// not the entry point and whose isolation leaves every other element reachable and listed,
// then stops the cluster, overwrites every neighbour slot that points at them with an
// invalid TID and starts the cluster again. Afterwards exactly the returned elements are
// orphans and unreachable. Connections to the cluster are broken by the restart. The cluster
// must not use data checksums (testenv clusters do not).
func CutInLinks(t testing.TB, pg *testenv.Postgres, dsn string, schema, index string, n int) []TID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	relPath, g := loadFile(ctx, t, dsn, schema, index)
	chosen := choose(g, n)
	if len(chosen) < n {
		t.Fatalf("hnswtest: found only %d of %d elements that can be cut alone", len(chosen), n)
	}
	cut := map[hnsw.TID]bool{}
	for _, c := range chosen {
		cut[c] = true
	}
	var slots []Slot
	for _, e := range g.Elements {
		for i, v := range e.Neighbors {
			if cut[v] {
				slots = append(slots, e.Slots[i])
			}
		}
	}
	pg.Stop()
	writeInvalid(t, filepath.Join(pg.DataDir(), relPath), slots)
	if err := pg.Start(ctx); err != nil {
		t.Fatalf("hnswtest: restart: %v", err)
	}
	return chosen
}

// loadFile decodes index schema.index of database dsn and returns it with the path of its
// file below the data directory.
func loadFile(ctx context.Context, t testing.TB, dsn, schema, index string) (string, *Graph) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("hnswtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	ix, err := catalog.Resolve(ctx, conn, schema, index)
	if err != nil {
		t.Fatalf("hnswtest: %v", err)
	}
	var relPath string
	if err := conn.QueryRow(ctx, `SELECT pg_relation_filepath($1::oid::regclass)`, ix.OID).Scan(&relPath); err != nil {
		t.Fatalf("hnswtest: relation file: %v", err)
	}
	g, err := Load(ctx, conn, ix)
	if err != nil {
		t.Fatalf("hnswtest: load %s: %v", ix, err)
	}
	return relPath, g
}

// choose picks up to n elements, spread over the index, whose in-links can be cut without
// making any other element unreachable or an orphan.
func choose(g *Graph, n int) []TID {
	var cands []TID
	for _, t := range g.Order {
		e := g.Elements[t]
		if e.Live && e.Level == 0 && t != g.Meta.EntryPoint {
			cands = append(cands, t)
		}
	}
	base := g.Reachable(nil)
	baseOrphans := g.Orphans(nil)
	cut := map[hnsw.TID]bool{}
	var out []TID
	if len(cands) == 0 {
		return nil
	}
	step := max(1, len(cands)/(n+1))
	for i := step / 2; i < len(cands) && len(out) < n; i += step {
		c := cands[i]
		if !base[c] || baseOrphans[c] {
			continue
		}
		cut[c] = true
		reach, orph := g.Reachable(cut), g.Orphans(cut)
		if len(reach) != len(base)-len(cut) || len(orph) != len(baseOrphans)+len(cut) {
			delete(cut, c)
			continue
		}
		out = append(out, c)
	}
	return out
}

// writeInvalid overwrites the given slots of the stopped cluster's relation file (and its
// segments) with InvalidItemPointer.
func writeInvalid(t testing.TB, path string, slots []Slot) {
	t.Helper()
	var inv [pagescan.TIDSize]byte
	pagescan.EncodeTID(inv[:], pagescan.InvalidTID)
	files := map[int64]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, s := range slots {
		seg := s.Position / (segmentBlocks * pagescan.PageSize)
		f, ok := files[seg]
		if !ok {
			p := path
			if seg > 0 {
				p = fmt.Sprintf("%s.%d", path, seg)
			}
			var err error
			if f, err = os.OpenFile(p, os.O_RDWR, 0); err != nil {
				t.Fatalf("hnswtest: %v", err)
			}
			files[seg] = f
		}
		if _, err := f.WriteAt(inv[:], s.Position%(segmentBlocks*pagescan.PageSize)); err != nil {
			t.Fatalf("hnswtest: write %s: %v", path, err)
		}
	}
	for _, f := range files {
		if err := f.Sync(); err != nil {
			t.Fatalf("hnswtest: sync %s: %v", path, err)
		}
	}
}

// MismatchVersions chooses n live elements of index schema.index in database dsn, other than
// the entry point, whose neighbour tuple lies on another page than the element when
// crossPage is set (on the same page otherwise), then stops the cluster, adds one to the
// version of each one's neighbour tuple and starts the cluster again. Afterwards each of them
// is a version_mismatch fault: pgvector ignores a neighbour tuple whose version is not its
// element's, so its searches and inserts step over them rather than fail. Connections to the
// cluster are broken by the restart.
func MismatchVersions(t testing.TB, pg *testenv.Postgres, dsn string, schema, index string, n int, crossPage bool) []TID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	relPath, g := loadFile(ctx, t, dsn, schema, index)
	var chosen []TID
	var positions []int64
	for _, tid := range g.Order {
		e := g.Elements[tid]
		if len(chosen) == n {
			break
		}
		if !e.Live || tid == g.Meta.EntryPoint || len(e.Slots) == 0 || (e.Neighbor.Block != tid.Block) != crossPage {
			continue
		}
		chosen = append(chosen, tid)
		// The slots start 4 bytes into the tuple; its version is byte 1.
		positions = append(positions, e.Slots[0].Position-int64(e.Slots[0].Index)*pagescan.TIDSize-3)
	}
	if len(chosen) < n {
		t.Fatalf("hnswtest: found only %d of %d elements to damage", len(chosen), n)
	}
	pg.Stop()
	f, err := os.OpenFile(filepath.Join(pg.DataDir(), relPath), os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("hnswtest: %v", err)
	}
	for _, pos := range positions {
		var b [1]byte
		if _, err := f.ReadAt(b[:], pos); err != nil {
			t.Fatalf("hnswtest: read %s: %v", relPath, err)
		}
		b[0]++
		if _, err := f.WriteAt(b[:], pos); err != nil {
			t.Fatalf("hnswtest: write %s: %v", relPath, err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatalf("hnswtest: close %s: %v", relPath, err)
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatalf("hnswtest: restart: %v", err)
	}
	return chosen
}
