package main

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/workload"
)

// churner plans the seeded churn. It keeps the ids of the live rows of docs itself, so each
// tick's writes are decided before they are sent and the same writes go to both twins: a
// twin's state never feeds back into what is written.
type churner struct {
	docsGen, eventsGen *workload.Generator
	pick               *rand.Rand // which rows are written
	rate, driftRate    float64

	live    []int64         // live ids of docs
	pos     map[int64]int   // id -> index in live
	docOf   map[int64]int32 // id -> document
	members map[int32][]int64
	nextDoc int64 // next id of docs
	nextEvt int64 // next id of events

	// Fractional rows carried to the next tick, so low rates still write.
	accReembed, accReplace, accReingest, accDrift float64
}

// tick is the writes of one churn second, applied in one transaction per twin.
type tick struct {
	reembed   []docRow // same id, new vector
	deleteIDs []int64
	insert    []docRow
	events    []eventRow
}

// newChurner describes the data both twins were loaded with: docs ids 1..docsRows in
// documents of chunksPerDoc, events ids 1..eventsRows.
func newChurner(seed uint64, docsGen, eventsGen *workload.Generator, docsRows, eventsRows int, rate, driftRate float64) *churner {
	c := &churner{docsGen: docsGen, eventsGen: eventsGen, rate: rate, driftRate: driftRate,
		pick: rand.New(rand.NewPCG(seed, seed^0x5eed)),
		pos:  map[int64]int{}, docOf: map[int64]int32{}, members: map[int32][]int64{},
		nextDoc: int64(docsRows) + 1, nextEvt: int64(eventsRows) + 1}
	for id := int64(1); id <= int64(docsRows); id++ {
		c.add(id, docOfInitial(id))
	}
	return c
}

// docOfInitial is the document of a row of the initial load.
func docOfInitial(id int64) int32 { return int32((id - 1) / chunksPerDoc) }

// categoryOf is a row's category, a function of its id so loads and inserts agree.
func categoryOf(id int64) int32 { return int32(id % categories) }

func (c *churner) add(id int64, doc int32) {
	c.pos[id] = len(c.live)
	c.live = append(c.live, id)
	c.docOf[id] = doc
	c.members[doc] = append(c.members[doc], id)
}

func (c *churner) remove(id int64) {
	i, ok := c.pos[id]
	if !ok {
		return
	}
	last := c.live[len(c.live)-1]
	c.live[i], c.pos[last] = last, i
	c.live = c.live[:len(c.live)-1]
	delete(c.pos, id)
	doc := c.docOf[id]
	delete(c.docOf, id)
	ms := c.members[doc]
	for j, m := range ms {
		if m == id {
			ms[j] = ms[len(ms)-1]
			c.members[doc] = ms[:len(ms)-1]
			break
		}
	}
}

// driftPoint is a point of the events distribution at progress f in [0,1] of the churn.
func (c *churner) driftPoint(f float64) []float32 {
	return c.eventsGen.Near(driftCentre(c.eventsGen.Centers(), f))
}

// driftCentre is the centre of the drifting events distribution at progress f: it walks from
// the first original centre to the mean of all of them, the middle of the data where the
// IVFFlat lists trained on the original clusters meet. New data there (a new topic between
// the old ones) is split over several lists, so its nearest neighbours are found only by
// probing more lists than were tuned for the data the index was built on.
func driftCentre(centres [][]float32, f float64) []float32 {
	from := centres[0]
	mid := make([]float32, len(from))
	for _, c := range centres {
		for i, x := range c {
			mid[i] += x / float32(len(centres))
		}
	}
	centre := make([]float32, len(from))
	for i := range centre {
		centre[i] = from[i] + float32(f)*(mid[i]-from[i])
	}
	return centre
}

// take returns the whole rows due at rate and keeps the fraction for later.
func take(acc *float64, rate float64) int {
	*acc += rate
	n := int(*acc)
	*acc -= float64(n)
	return n
}

// next plans one second of churn at progress f of the churn period.
func (c *churner) next(f float64) tick {
	var t tick
	rng := c.docsGen
	if len(c.live) == 0 {
		return t
	}
	// Re-embeddings: a new model version or an edited chunk; the row keeps its id.
	for range take(&c.accReembed, c.rate/2) {
		id := c.live[c.pick.IntN(len(c.live))]
		v, k := rng.Point()
		t.reembed = append(t.reembed, docRow{id: id, doc: c.docOf[id], category: categoryOf(id), cluster: int32(k), vec: v})
	}
	// Deletes + inserts: a chunk removed and another one written to the same document.
	for range take(&c.accReplace, c.rate/4) {
		id := c.live[c.pick.IntN(len(c.live))]
		doc := c.docOf[id]
		c.remove(id)
		t.deleteIDs = append(t.deleteIDs, id)
		t.insert = append(t.insert, c.newDocRow(doc))
	}
	// Re-ingest of a whole document: every chunk deleted, as many written anew.
	for range take(&c.accReingest, c.rate/4/chunksPerDoc) {
		doc := c.docOf[c.live[c.pick.IntN(len(c.live))]]
		old := append([]int64(nil), c.members[doc]...)
		for _, id := range old {
			c.remove(id)
		}
		t.deleteIDs = append(t.deleteIDs, old...)
		for range old {
			t.insert = append(t.insert, c.newDocRow(doc))
		}
	}
	for range take(&c.accDrift, c.driftRate) {
		t.events = append(t.events, eventRow{id: c.nextEvt, cluster: -1, vec: c.driftPoint(f)})
		c.nextEvt++
	}
	return t
}

func (c *churner) newDocRow(doc int32) docRow {
	v, k := c.docsGen.Point()
	id := c.nextDoc
	c.nextDoc++
	c.add(id, doc)
	return docRow{id: id, doc: doc, category: categoryOf(id), cluster: int32(k), vec: v}
}

// apply writes t to one twin in one transaction.
func (t tick) apply(ctx context.Context, db beginner) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if len(t.reembed) > 0 {
			ids, ks, vecs := make([]int64, len(t.reembed)), make([]int32, len(t.reembed)), make([]string, len(t.reembed))
			for i, r := range t.reembed {
				ids[i], ks[i], vecs[i] = r.id, r.cluster, workload.Literal(r.vec)
			}
			if _, err := tx.Exec(ctx, "UPDATE "+pgx.Identifier{docsTable}.Sanitize()+` AS t SET embedding = u.e::vector, cluster = u.k
				FROM unnest($1::bigint[], $2::int[], $3::text[]) AS u(id, k, e) WHERE t.id = u.id`, ids, ks, vecs); err != nil {
				return fmt.Errorf("re-embed: %w", err)
			}
		}
		if len(t.deleteIDs) > 0 {
			if _, err := tx.Exec(ctx, "DELETE FROM "+pgx.Identifier{docsTable}.Sanitize()+" WHERE id = ANY($1)", t.deleteIDs); err != nil {
				return fmt.Errorf("delete: %w", err)
			}
		}
		if err := insertDocs(ctx, tx, t.insert); err != nil {
			return err
		}
		return insertEvents(ctx, tx, t.events)
	})
}

// beginner starts transactions: a pool or a connection.
type beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}
