package pagescan

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/measure"
)

// Reader reads the raw pages of one relation.
type Reader interface {
	// Blocks returns the number of blocks of the relation.
	Blocks(ctx context.Context) (uint32, error)
	// Read returns count pages starting at block start, in block order. Each page is PageSize
	// bytes; a caller may keep none of them past the next call.
	Read(ctx context.Context, start, count uint32) ([][]byte, error)
}

// RawPageFunc is pageinspect's get_raw_page(text, int8), usable by superusers.
const RawPageFunc = "get_raw_page"

// DefaultBatch is the number of pages NewSQLReader fetches per round trip when given batch <= 0:
// 64 pages are half a MiB, enough to amortise the round trip without holding much memory.
const DefaultBatch = 64

type sqlReader struct {
	q     catalog.Querier
	rel   uint32
	batch int
	query string
}

// NewSQLReader returns a Reader that fetches pages through SQL, batch pages per query. fn is
// RawPageFunc or the (optionally schema-qualified) name of a SECURITY DEFINER wrapper with the
// signature (regclass, integer) -> bytea. fn must be a constant chosen by code, never user
// input: it is quoted as an identifier, but which function runs is the caller's decision.
// relOID is the relation's oid.
func NewSQLReader(q catalog.Querier, relOID uint32, batch int, fn string) Reader {
	if batch <= 0 {
		batch = DefaultBatch
	}
	// get_raw_page takes the relation by name (text); wrappers take a regclass.
	arg := "$1::oid::regclass"
	if fn == RawPageFunc {
		arg += "::text"
	}
	name := pgx.Identifier(strings.Split(fn, ".")).Sanitize()
	query := fmt.Sprintf(`SELECT b, %s(%s, b::integer) FROM generate_series($2::bigint, $3::bigint) AS b ORDER BY b`, name, arg)
	return &sqlReader{q: q, rel: relOID, batch: batch, query: query}
}

func (r *sqlReader) Blocks(ctx context.Context) (uint32, error) {
	s, err := measure.SizeOf(ctx, r.q, r.rel)
	if err != nil {
		return 0, err
	}
	return uint32(s.Blocks), nil
}

func (r *sqlReader) Read(ctx context.Context, start, count uint32) ([][]byte, error) {
	out := make([][]byte, 0, count)
	for done := uint32(0); done < count; {
		n := min(count-done, uint32(r.batch))
		first := int64(start) + int64(done)
		rows, err := r.q.Query(ctx, r.query, r.rel, first, first+int64(n)-1)
		if err != nil {
			return nil, fmt.Errorf("read blocks %d..%d of %d: %w", first, first+int64(n)-1, r.rel, err)
		}
		for rows.Next() {
			var b int64
			var page []byte
			if err := rows.Scan(&b, &page); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read block of %d: %w", r.rel, err)
			}
			if b != first+int64(len(out))-int64(done) {
				rows.Close()
				return nil, fmt.Errorf("read blocks of %d: got block %d out of order", r.rel, b)
			}
			out = append(out, page)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read blocks %d..%d of %d: %w", first, first+int64(n)-1, r.rel, err)
		}
		done += n
		if uint32(len(out)) != done {
			return nil, fmt.Errorf("read blocks of %d: got %d pages, want %d", r.rel, len(out), done)
		}
	}
	return out, nil
}

// Scan reads every block of r in order, batch pages at a time, and calls fn for each page.
// It stops at the first error fn returns. Pages are not kept: fn must copy what it needs.
func Scan(ctx context.Context, r Reader, batch int, fn func(block uint32, page []byte) error) error {
	n, err := r.Blocks(ctx)
	if err != nil {
		return err
	}
	if batch <= 0 {
		batch = DefaultBatch
	}
	for start := uint32(0); start < n; {
		cnt := min(n-start, uint32(batch))
		pages, err := r.Read(ctx, start, cnt)
		if err != nil {
			return err
		}
		for i, p := range pages {
			if err := fn(start+uint32(i), p); err != nil {
				return err
			}
		}
		start += cnt
	}
	return nil
}

// MemReader is a Reader over pages held in memory, for tests and for pages already fetched.
type MemReader [][]byte

// Blocks implements Reader.
func (m MemReader) Blocks(context.Context) (uint32, error) { return uint32(len(m)), nil }

// Read implements Reader.
func (m MemReader) Read(_ context.Context, start, count uint32) ([][]byte, error) {
	if uint64(start)+uint64(count) > uint64(len(m)) {
		return nil, fmt.Errorf("read blocks %d..%d of %d", start, uint64(start)+uint64(count)-1, len(m))
	}
	return m[start : start+count], nil
}

// SplitPages cuts b into PageSize pages, dropping a short tail: a MemReader over raw bytes.
func SplitPages(b []byte) MemReader {
	var m MemReader
	for len(b) >= PageSize {
		m = append(m, b[:PageSize:PageSize])
		b = b[PageSize:]
	}
	return m
}

// Pacer spreads the page reads of one scan over time: no more than its rate of pages per
// second on average. A scan that reads more than one relation (an HNSW index and, for its
// heap check, the table) shares one Pacer among them, so the budget covers all it reads.
// A Tuner may change the rate while the scan runs (NewTunedPacer). A nil Pacer does not wait.
type Pacer struct {
	mu   sync.Mutex
	rate float64
	now  func() time.Time
	next time.Time // when the pages granted so far have had their share of time

	tuner     Tuner
	every     time.Duration
	lastTuned time.Time // zero until the first grant
}

// Tuner sets the rate of a Pacer while its scan runs: an adaptive budget.
type Tuner interface {
	// Tune returns the rate from now on, given the rate so far. The Pacer calls it from Wait,
	// on the goroutine that is about to read, between two reads of the scan: Tune may use the
	// scan's own connection. An error stops the scan.
	Tune(ctx context.Context, rate float64) (float64, error)
}

// NewPacer returns a Pacer of pagesPerSecond, or nil (no pacing) when pagesPerSecond <= 0.
func NewPacer(pagesPerSecond float64) *Pacer {
	if pagesPerSecond <= 0 {
		return nil
	}
	return &Pacer{rate: pagesPerSecond, now: time.Now}
}

// NewTunedPacer returns a Pacer that starts at pagesPerSecond (> 0) and asks t for its rate
// before a grant once every has passed since the first grant or the last time it asked.
func NewTunedPacer(pagesPerSecond float64, t Tuner, every time.Duration) *Pacer {
	p := NewPacer(pagesPerSecond)
	if p != nil {
		p.tuner, p.every = t, every
	}
	return p
}

// Rate returns the pacer's current rate in pages per second; 0 for a nil Pacer (no pacing).
func (p *Pacer) Rate() float64 {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rate
}

// Wait returns once the pages granted before have had their share of time, then grants pages
// more: a batch is read at once and the next one waits. It returns early with ctx's error.
func (p *Pacer) Wait(ctx context.Context, pages int) error {
	if p == nil {
		return nil
	}
	if err := p.tune(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	now := p.now()
	if p.next.IsZero() {
		p.next = now
	}
	due := p.next
	p.next = p.next.Add(time.Duration(float64(pages) / p.rate * float64(time.Second)))
	wait := due.Sub(now)
	p.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tune asks the tuner for the rate when it is due. A new rate starts from now: time the scan
// left unused before (it read slower than its budget) is not spent as a burst at the new
// rate, which after a back-off would hit the application just when it is slow.
func (p *Pacer) tune(ctx context.Context) error {
	if p.tuner == nil {
		return nil
	}
	p.mu.Lock()
	now := p.now()
	if p.lastTuned.IsZero() {
		p.lastTuned = now
	}
	due := now.Sub(p.lastTuned) >= p.every && now.After(p.lastTuned)
	rate := p.rate
	p.mu.Unlock()
	if !due {
		return nil
	}
	r, err := p.tuner.Tune(ctx, rate)
	if err != nil {
		return fmt.Errorf("page budget: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastTuned = p.now()
	if r > 0 && r != p.rate {
		p.rate = r
		if p.next.Before(p.lastTuned) {
			p.next = p.lastTuned
		}
	}
	return nil
}

// Paced returns a Reader that fetches pages from r within the budget of p, so that a scan of a
// large index spends a bounded share of the server's I/O and CPU while the application queries
// it. A nil p returns r itself.
func Paced(r Reader, p *Pacer) Reader {
	if p == nil {
		return r
	}
	return &pacedReader{r: r, p: p}
}

type pacedReader struct {
	r Reader
	p *Pacer
}

func (p *pacedReader) Blocks(ctx context.Context) (uint32, error) { return p.r.Blocks(ctx) }

func (p *pacedReader) Read(ctx context.Context, start, count uint32) ([][]byte, error) {
	if err := p.p.Wait(ctx, int(count)); err != nil {
		return nil, fmt.Errorf("read blocks from %d: %w", start, err)
	}
	return p.r.Read(ctx, start, count)
}
