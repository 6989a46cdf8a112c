package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/measure"
	"github.com/vectorheal/vectorheal/internal/standby"
	"github.com/vectorheal/vectorheal/internal/targets"
)

// Measurer re-measures one figure of one index directly in its database, for the repair
// engine's before/after validation (it implements remediation/strategy.Measurer). Each call
// measures afresh; nothing is cached, so a figure read right after a repair sees the repair.
type Measurer struct {
	cfg   config.Exporter
	state *pgxpool.Pool // where as-built baselines are read; nil without a state store
	// targets are how the engine's pools (repair and read pools alike) map to the pools a
	// figure is read with; empty without MeasureOnTargets.
	targets map[*pgxpool.Pool]readsOf
	log     *slog.Logger
}

// readsOf is where the Measurer reads a target's figures.
type readsOf struct {
	target  string
	read    *pgxpool.Pool // the exporter's connection (read_dsn, else dsn)
	standby *pgxpool.Pool // nil without a standby
	wait    time.Duration // standby.replay_wait
}

// MeasureOnTargets reads the figures of each target of ts as the exporter reads them, whatever
// pool a measurement is asked on (the engine asks on the repair connection):
//   - with the target's reading connection (read_dsn), whose role holds pg_monitor and the
//     page readers: a repair role that may not read pages still gets its steps judged on the
//     exact figure the alert fired on, not on an estimate that lags behind it;
//   - figures read from the index itself (source.readsIndex) on the target's standby, when it
//     has one, once the standby has replayed the primary's WAL position at the time of the
//     measurement: after a repair step, that is past the step's end, so the standby shows the
//     repaired index. A standby that has not replayed it within standby.replay_wait, or cannot
//     be asked, is passed over for the primary, and log says why.
func MeasureOnTargets(ts *targets.Set, log *slog.Logger) MeasurerOption {
	return func(m *Measurer) {
		m.log = log
		m.targets = map[*pgxpool.Pool]readsOf{}
		for _, t := range ts.Reading().All() {
			r := readsOf{target: t.Name, read: t.Pool, standby: t.Standby}
			if t.Standby != nil {
				r.wait = t.Target.Standby.ReplayWait
			}
			m.targets[t.Pool] = r
			if rep, ok := ts.Get(t.Name); ok {
				m.targets[rep.Pool] = r
			}
		}
	}
}

// readPool is the pool a measurement asked on pool reads with (MeasureOnTargets): its target's
// reading connection, else pool.
func (m *Measurer) readPool(pool *pgxpool.Pool) *pgxpool.Pool {
	if r, ok := m.targets[pool]; ok {
		return r.read
	}
	return pool
}

// indexPool is where the figures read from the index itself are measured for a measurement
// asked on pool: its target's standby once replayed, else its reading connection.
func (m *Measurer) indexPool(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index) *pgxpool.Pool {
	r, ok := m.targets[pool]
	if !ok {
		return pool
	}
	if r.standby == nil {
		return r.read
	}
	if err := standby.AwaitPrimary(ctx, r.read, r.standby, r.wait, 100*time.Millisecond); err != nil {
		m.log.Warn("measuring on the primary: the standby cannot show the index as it is now", "target", r.target, "index", ix.String(), "err", err)
		return r.read
	}
	return r.standby
}

// MeasurerOption changes how NewMeasurer builds the Measurer.
type MeasurerOption func(*Measurer)

// MeasureWithStateStore reads as-built baselines (AsBuilt) from the state store behind pool,
// where an exporter started WithStateStore records them.
func MeasureWithStateStore(pool *pgxpool.Pool) MeasurerOption {
	return func(m *Measurer) { m.state = pool }
}

// NewMeasurer returns a Measurer that uses cfg's page batch, recall sample (queries, k) and
// check timeouts.
func NewMeasurer(cfg config.Exporter, opts ...MeasurerOption) *Measurer {
	m := &Measurer{cfg: cfg}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Figures lists the figure names Measure understands, sorted (FigureNames).
func (m *Measurer) Figures() []string { return FigureNames() }

// Settled says whether figure is read from the index itself (its pages or its catalog row):
// such a value does not lag behind a repair as statistics do, so a reading taken when the
// repair ended is the one a validation would take.
func (m *Measurer) Settled(figure string) bool {
	f, _, ok := lookupFigure(figure)
	return ok && (f.source == fromStructure || f.source == fromCatalog)
}

// Measure returns the current value of figure for the index named like ix (looked up again in
// the catalog by schema and name, since a concurrent rebuild gives the index a new OID). It
// reads only the figure's source (pages, probe or statistics). NaN means the figure cannot be
// known on this target: a structure figure where the role may not read the index pages, dead
// heap TIDs where it may not read the heap. NaN meets no validation bound; a validation with a
// fallback figure measures that one instead.
func (m *Measurer) Measure(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figure string) (float64, error) {
	return m.Read(ctx, pool, ix, figure).Get(figure)
}

// Read measures several figures of the index named like ix with one reading of each source
// they come from: the pages are read once for every structure figure, the probe run once for
// recall and latency. A structural read of a large index takes seconds, so a step that
// records six figures and its dead share must not read the pages four times. Each figure
// asked for has a value or an error, with its source, the server it was read on and when;
// values are those of Measure. The reading also holds the other figures of each source read
// (alsoRead). The sources are read side by side.
func (m *Measurer) Read(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figures ...string) measure.Reading {
	reading := measure.Reading{}
	reads := m.sourcesOf(figures, reading)
	if len(reads) == 0 {
		return reading
	}
	asked := pool
	pool = m.readPool(asked)
	cur, err := catalog.Resolve(ctx, pool, ix.Schema, ix.Name)
	var indexPool *pgxpool.Pool // where sources that read the index itself read; chosen once
	for i := range reads {
		sr := &reads[i]
		sr.on = pool
		if sr.src.readsIndex() && err == nil {
			if indexPool == nil {
				indexPool = m.indexPool(ctx, asked, cur)
			}
			sr.on = indexPool
		}
		sr.keepApplicable(cur, err, reading)
	}
	// The sources are read side by side, each on a connection of its own: a reading's time
	// is its slowest source's, not their sum (the pages and the probe of a large index take
	// seconds each, and a repair reads its index before and after).
	var wg sync.WaitGroup
	for i := range reads {
		if len(reads[i].wants) == 0 {
			continue
		}
		wg.Go(func() { reads[i].r, reads[i].err = m.readSource(ctx, reads[i].on, cur, reads[i].src) })
	}
	wg.Wait()
	for _, sr := range reads {
		sr.values(cur, m.server(asked, sr.on), reading)
	}
	return reading
}

// wantedFigure is a figure asked of a Read: its name, its definition and the key of the
// value it names (a label's value, e.g. "dead" of "pgvector_hnsw_heap_tids:dead").
type wantedFigure struct {
	name string
	f    figure
	key  string
}

// sourceRead is one source a Read reads: the figures asked of it, where it is read and what
// the read returned.
type sourceRead struct {
	src   source
	wants []wantedFigure
	on    *pgxpool.Pool
	r     *readings
	err   error
}

// sourcesOf groups figures by the source they are read from, in the order first asked; an
// unknown figure goes to reading as an error.
func (m *Measurer) sourcesOf(figures []string, reading measure.Reading) []sourceRead {
	var reads []sourceRead
	at := map[source]int{}
	for _, name := range figures {
		f, key, ok := lookupFigure(name)
		if !ok {
			reading[name] = measure.Value{Err: fmt.Errorf("unknown figure %q (known: %s)", name, strings.Join(m.Figures(), ", "))}
			continue
		}
		i, seen := at[f.source]
		if !seen {
			i = len(reads)
			at[f.source] = i
			reads = append(reads, sourceRead{src: f.source})
		}
		reads[i].wants = append(reads[i].wants, wantedFigure{name, f, key})
	}
	return reads
}

// keepApplicable keeps the figures asked of sr that can be read of cur, the index as resolved
// (resolveErr: it could not be), and gives the others their error in reading.
func (sr *sourceRead) keepApplicable(cur catalog.Index, resolveErr error, reading measure.Reading) {
	var keep []wantedFigure
	for _, w := range sr.wants {
		switch {
		case resolveErr != nil:
			reading[w.name] = measure.Value{Err: fmt.Errorf("measure %s: %w", w.name, resolveErr), Source: string(sr.src)}
		case !w.f.appliesTo(cur.Method):
			reading[w.name] = measure.Value{Err: fmt.Errorf("measure %s: %s is an %s index (the figure is for %s)", w.name, cur, cur.Method, strings.Join(w.f.methods, ", ")), Source: string(sr.src)}
		default:
			keep = append(keep, w)
		}
	}
	sr.wants = keep
}

// values puts into reading each figure asked of sr as the read of cur on server found it,
// and the other figures the source yielded (alsoRead).
func (sr sourceRead) values(cur catalog.Index, server string, reading measure.Reading) {
	r, rerr := sr.r, sr.err
	at := measure.Value{Source: string(sr.src), Server: server}
	if r != nil {
		at.At = r.now
	}
	for _, w := range sr.wants {
		v := at
		known := false
		if errors.Is(rerr, errIndexNotUsed) {
			// The probe ran through another index: whether the index is used is known,
			// its recall and latency are not.
			v.V, known = w.f.value(r, w.key)
		}
		switch {
		case errors.Is(rerr, errNoPageAccess):
			v.V = math.NaN()
		case rerr != nil && known:
		case rerr != nil:
			v.Err = fmt.Errorf("measure %s: %w", w.name, rerr)
		default:
			var ok bool
			if v.V, ok = w.f.value(r, w.key); !ok {
				v.Err = fmt.Errorf("measure %s: %s has no such value now", w.name, cur)
			}
		}
		reading[w.name] = v
	}
	if len(sr.wants) > 0 && r != nil && rerr == nil {
		alsoRead(r, sr.src, cur.Method, at, reading)
	}
}

// server names the server a read asked on asked ran on: "standby" when it was the target's
// standby, else "primary".
func (m *Measurer) server(asked, on *pgxpool.Pool) string {
	if r, ok := m.targets[asked]; ok && r.standby != nil && on == r.standby {
		return "standby"
	}
	return "primary"
}

// alsoRead adds to reading the figures of src that r holds and were not asked for: a reading
// of a source is one pass that yields all of them (every structure figure from one page
// scan), and a caller that asks for some figures now and others a moment later (the engine's
// health check before a repair, then the repair's plan) reads the source once. at carries
// the source, server and time of the read.
func alsoRead(r *readings, src source, method string, at measure.Value, reading measure.Reading) {
	for _, f := range figureTable() {
		if f.source != src || !f.appliesTo(method) {
			continue
		}
		for i, name := range f.measuredNames() {
			if _, have := reading[name]; have {
				continue
			}
			if v, ok := f.value(r, f.measured[i]); ok {
				at.V = v
				reading[name] = at
			}
		}
	}
}

// readSource reads one source of figures for ix afresh.
func (m *Measurer) readSource(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, src source) (*readings, error) {
	r := &readings{ix: ix, now: time.Now()}
	switch src {
	case fromCatalog:
		return r, nil
	case fromStructure:
		reader, err := detectPageReader(ctx, pool, pageReaderSchema(m.cfg))
		if err != nil {
			return nil, err
		}
		if reader.index == "" {
			return nil, fmt.Errorf("%w: %s", errNoPageAccess, reader.why)
		}
		r.structure, err = scanStructure(ctx, pool, ix, reader, m.cfg)
		if err == nil && r.structure == nil {
			return nil, fmt.Errorf("%s is a partitioned table's index, without pages of its own: measure its partitions' indexes", ix)
		}
		return r, err
	case fromProbe:
		p, err := probe(ctx, pool, ix, m.cfg.Recall.Queries, m.cfg.Recall.Newest(), m.cfg.Recall.K, m.cfg.Recall.Timeout)
		if err != nil {
			return nil, err
		}
		if p == nil {
			return nil, fmt.Errorf("table %s has no vector to probe with", ix.QuotedTable())
		}
		if !p.indexUsed {
			// The probe's searches ran through another index or none: no figure is this
			// index's but that it is not used.
			r.recall = p
			return r, fmt.Errorf("%w: the planner does not use %s for the probe's search, so no recall or latency is its own", errIndexNotUsed, ix)
		}
		r.recall, r.latency = p, p.histogram()
		return r, nil
	case fromFiltered:
		var err error
		r.filtered, err = readFiltered(ctx, pool, ix, m.cfg.FilteredQueries)
		return r, err
	case fromStats:
		var err error
		r.stats, err = statsOf(ctx, pool, ix, m.cfg.StatisticsTimeout)
		return r, err
	}
	return nil, fmt.Errorf("figures from %s need history kept by the exporter and cannot be re-measured", src)
}

// errIndexNotUsed is a probe whose searches the planner ran through another index, or none.
var errIndexNotUsed = errors.New("index not used")

// errNoPageAccess is the role's lack of a page reader: not a failure to measure, but a
// figure that cannot be known on the target.
var errNoPageAccess = errors.New("index pages cannot be read")

// statsOf reads the cheap statistics of one index.
func statsOf(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, timeout time.Duration) (*indexStats, error) {
	var ts *targetStats
	err := readOnly(ctx, pool, timeout, func(tx pgx.Tx) error {
		var err error
		ts, err = readStats(ctx, tx, []uint32{ix.OID}, []uint32{ix.TableOID})
		return err
	})
	if err != nil {
		return nil, err
	}
	st, ok := ts.indexes[ix.OID]
	if !ok {
		return nil, fmt.Errorf("%s: no statistics", ix)
	}
	return st, nil
}
