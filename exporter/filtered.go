package exporter

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/measure"
)

// kindFiltered is the check of a declared filtered query, followed by its name.
const kindFiltered = "filtered:"

// filteredResult is the outcome of one run of a filtered query set.
type filteredResult struct {
	k       int
	samples int
	// short counts the sampled queries that returned fewer rows through the index than the
	// exact search did (which returns k rows, or every matching row when fewer match).
	short int
	// rows and exactRows are the rows returned through the index and exactly, summed.
	rows, exactRows int
	// hits of want exact rows were returned through the index.
	hits, want int
	indexUsed  bool
	// latency is the mean duration of the searches through the index, in seconds.
	latency float64
}

func (r *filteredResult) shortRatio() float64 { return float64(r.short) / float64(r.samples) }
func (r *filteredResult) rowsRatio() float64  { return float64(r.rows) / float64(r.samples*r.k) }
func (r *filteredResult) exactRowsRatio() float64 {
	return float64(r.exactRows) / float64(r.samples*r.k)
}

// recall is the share of the exact rows returned through the index; 1 when no row matches.
func (r *filteredResult) recall() float64 {
	if r.want == 0 {
		return 1
	}
	return float64(r.hits) / float64(r.want)
}

// runFiltered runs the query set q against ix: it samples q.Samples query vectors from the
// indexed column and as many rows of the filter columns (independently: an application's
// query vector does not come from a row that matches its own filter), runs the query with
// each pair through the index with the current search settings (those a new session gets),
// then exactly with index scans off, and compares. All of it happens in one read-only
// transaction bounded by q.Timeout. The SQL is the configured text; only catalog-quoted
// identifiers are added to the sampling queries, and every value goes as a parameter. It
// returns nil without error when the table has no row to sample.
func runFiltered(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, q config.FilteredQuery) (*filteredResult, error) {
	if ix.Column == "" {
		return nil, fmt.Errorf("%s indexes an expression: no column to sample query vectors from", ix)
	}
	search := probeMarker + q.SQL
	res := &filteredResult{k: q.K}
	var empty bool
	err := readOnly(ctx, pool, q.Timeout, func(tx pgx.Tx) error {
		// Custom plans know the vector, the filter values and the LIMIT; a generic plan does
		// not and may scan the table instead of the index.
		if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_custom_plan`); err != nil {
			return fmt.Errorf("set plan_cache_mode: %w", err)
		}
		if err := currentSearchSettings(ctx, tx); err != nil {
			return err
		}
		args, err := filteredArgs(ctx, tx, ix, q)
		if err != nil {
			return err
		}
		if args == nil {
			empty = true
			return nil
		}
		if res.indexUsed, err = measure.UsesIndex(ctx, tx, ix.Name, search, args[0]...); err != nil {
			return err
		}
		return res.compare(ctx, tx, search, args)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: filtered query %s: %w", ix, q.Name, err)
	}
	if empty {
		return nil, nil
	}
	return res, nil
}

// filteredArgs samples the arguments of q's searches: q.Samples pairs of a query vector
// (from the rows the index holds, at random: a filtered query's measure is short results,
// which depend on the filter's selectivity, not on where new data lies) and filter values,
// each followed by k. It returns nil without error when there is no row to sample.
func filteredArgs(ctx context.Context, tx pgx.Tx, ix catalog.Index, q config.FilteredQuery) ([][]any, error) {
	cols, err := filterColumns(ctx, tx, ix, q.Filters)
	if err != nil {
		return nil, err
	}
	op, _, err := distanceOf(ix)
	if err != nil {
		return nil, err
	}
	vecs, err := sampleVectors(ctx, tx, ix, statementsFor(ix, op, q.K), q.Samples, 0)
	if err != nil {
		return nil, err
	}
	filters, err := sampleFilters(ctx, tx, ix, cols, q.Samples)
	if err != nil {
		return nil, err
	}
	if len(vecs) == 0 || len(filters) == 0 {
		return nil, nil
	}
	args := make([][]any, q.Samples)
	for i := range args {
		a := []any{vecs[i%len(vecs)]}
		for _, f := range filters[i%len(filters)] {
			a = append(a, f)
		}
		args[i] = append(a, q.K)
	}
	return args, nil
}

// compare runs search with each of args through the index with the transaction's settings,
// timing it, then exactly with index scans off, and counts the results.
func (r *filteredResult) compare(ctx context.Context, tx pgx.Tx, search string, args [][]any) error {
	approx := make([][]string, len(args))
	var total time.Duration
	for i, a := range args {
		start := time.Now()
		var err error
		if approx[i], err = resultRows(ctx, tx, search, a); err != nil {
			return fmt.Errorf("filtered search through the index: %w", err)
		}
		total += time.Since(start)
	}
	r.latency = total.Seconds() / float64(len(args))
	// Sequential scans on as well: with every scan disabled the planner would pick the index
	// again (e.g. on a database where enable_seqscan is off).
	if _, err := tx.Exec(ctx, `SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = on`); err != nil {
		return fmt.Errorf("turn index scans off: %w", err)
	}
	for i, a := range args {
		exact, err := resultRows(ctx, tx, search, a)
		if err != nil {
			return fmt.Errorf("exact filtered search: %w", err)
		}
		r.add(approx[i], exact)
	}
	return nil
}

// add counts one sample with measure.Hits. Rows are the query's own, without a distance, so
// they are found by their values only, as a multiset: a row counts as often as exact search
// returned an equal one.
func (r *filteredResult) add(approx, exact []string) {
	r.samples++
	r.rows += len(approx)
	r.exactRows += len(exact)
	if len(approx) < len(exact) {
		r.short++
	}
	hits, want := measure.Hits(byValue(approx), byValue(exact))
	r.hits += hits
	r.want += want
}

// byValue returns the rows of resultRows as rows found by their values alone.
func byValue(rows []string) []measure.Row {
	out := make([]measure.Row, len(rows))
	for i, row := range rows {
		out[i] = measure.Row{ID: row, Dist: math.NaN()}
	}
	return out
}

// filterColumns returns the filter columns of ix's table, quoted from the catalog, in order.
func filterColumns(ctx context.Context, tx pgx.Tx, ix catalog.Index, names []string) ([]string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		var attname string
		err := tx.QueryRow(ctx, `SELECT attname FROM pg_attribute
			WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped`, ix.TableOID, n).Scan(&attname)
		if err == pgx.ErrNoRows {
			return nil, fmt.Errorf("filter column %q is not a column of %s", n, ix.QuotedTable())
		}
		if err != nil {
			return nil, fmt.Errorf("filter column %q: %w", n, err)
		}
		out[i] = pgx.Identifier{attname}.Sanitize()
	}
	return out, nil
}

// sampleFilters returns up to n rows of the filter columns, each value in text form (the
// server converts it to the parameter's type), from rows where none of them is NULL.
func sampleFilters(ctx context.Context, tx pgx.Tx, ix catalog.Index, cols []string, n int) ([][]string, error) {
	text := make([]string, len(cols))
	notNull := make([]string, len(cols))
	for i, c := range cols {
		text[i] = c + "::text"
		notNull[i] = c + " IS NOT NULL"
	}
	q := probeMarker + `SELECT ` + strings.Join(text, ", ") + ` FROM ` + ix.QuotedTable() +
		` WHERE ` + strings.Join(notNull, " AND ") + ` ORDER BY random() LIMIT $1`
	rows, err := tx.Query(ctx, q, n)
	if err != nil {
		return nil, fmt.Errorf("sample filter values: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]string, error) {
		vals := make([]string, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		return vals, r.Scan(ptrs...)
	})
	if err != nil {
		return nil, fmt.Errorf("sample filter values: %w", err)
	}
	return out, nil
}

// resultRows runs the query and returns each row as the bytes of its values, so rows of any
// column types compare by value.
func resultRows(ctx context.Context, tx pgx.Tx, sql string, args []any) ([]string, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var b strings.Builder
		for _, v := range rows.RawValues() {
			var n [8]byte
			if v == nil {
				binary.BigEndian.PutUint64(n[:], math.MaxUint64) // NULL differs from every value
			} else {
				binary.BigEndian.PutUint64(n[:], uint64(len(v)))
			}
			b.Write(n[:])
			b.Write(v)
		}
		out = append(out, b.String())
	}
	return out, rows.Err()
}

// filteredQueriesOf returns the declared query sets of ix on the target called target ("" for
// any target, as the Measurer, which is not told the target, asks).
func filteredQueriesOf(qs []config.FilteredQuery, target string, ix catalog.Index) []config.FilteredQuery {
	var out []config.FilteredQuery
	for _, q := range qs {
		if q.Schema != ix.Schema || q.Index != ix.Name {
			continue
		}
		if target != "" && len(q.Targets) > 0 && !containsString(q.Targets, target) {
			continue
		}
		out = append(out, q)
	}
	return out
}

func containsString(list []string, s string) bool { return slices.Contains(list, s) }

// filteredCheck returns the run of one declared filtered query on t. Its result belongs to the
// index the query names; a failure drops that index's previous result of the query.
func (e *Exporter) filteredCheck(t *target, q config.FilteredQuery, j *job) func(context.Context) {
	return func(ctx context.Context) {
		defer t.finish(j, q.Interval)
		release, ok := e.acquire(ctx, t, t.dueAt(j))
		if !ok {
			return
		}
		defer release()
		t.mu.Lock()
		st := t.indexNamed(q.Schema, q.Index)
		t.mu.Unlock()
		start := time.Now()
		var res *filteredResult
		var err error
		if st == nil {
			err = fmt.Errorf("filtered query %s: %s.%s is not a watched, valid vector index of the target", q.Name, q.Schema, q.Index)
		} else {
			err = e.onReads(ctx, t, func(pool *pgxpool.Pool) (err error) {
				res, err = runFiltered(ctx, pool, st.ix, q)
				return err
			})
		}
		if ctx.Err() != nil {
			return
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if st != nil && t.indexes[st.ix.OID] == st {
			if st.filtered == nil {
				st.filtered = map[string]*filteredResult{}
			}
			if err != nil || res == nil {
				delete(st.filtered, q.Name)
			} else {
				st.filtered[q.Name] = res
			}
		}
		t.noteOutcome(kindFiltered+q.Name, "", err)
		t.record(kindFiltered+q.Name, 0, start, err)
	}
}

// indexNamed returns the watched, valid index schema.name, or nil. t.mu must be held.
func (t *target) indexNamed(schema, name string) *index {
	for _, st := range t.indexes {
		if st.ix.Schema == schema && st.ix.Name == name && st.ix.Valid {
			return st
		}
	}
	return nil
}

// filteredJobs returns the due runs of the declared filtered queries of t. t.mu must be held.
func (e *Exporter) filteredJobs(t *target, now time.Time) []func(context.Context) {
	var out []func(context.Context)
	for _, q := range e.cfg.FilteredQueries {
		if len(q.Targets) > 0 && !containsString(q.Targets, t.Name) {
			continue
		}
		if t.elsewhere[q.Schema+"."+q.Index] {
			// Another shard measures the index and runs its queries; run here, the query would
			// only report the index missing. An outcome from before discovery said so goes too.
			delete(t.collectors, kindFiltered+q.Name)
			continue
		}
		if t.filteredJobs == nil {
			t.filteredJobs = map[string]*job{}
		}
		j, ok := t.filteredJobs[q.Name]
		if !ok {
			j = &job{next: now.Add(jitter(q.Interval / 4))}
			t.filteredJobs[q.Name] = j
		}
		if j.running || now.Before(j.next) {
			continue
		}
		j.running = true
		out = append(out, e.filteredCheck(t, q, j))
	}
	return out
}

// readFiltered runs every query set declared for ix, for the Measurer.
func readFiltered(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, qs []config.FilteredQuery) (map[string]*filteredResult, error) {
	mine := filteredQueriesOf(qs, "", ix)
	if len(mine) == 0 {
		return nil, fmt.Errorf("no filtered query is declared for %s (exporter.filtered_queries)", ix)
	}
	out := map[string]*filteredResult{}
	for _, q := range mine {
		r, err := runFiltered(ctx, pool, ix, q)
		if err != nil {
			return nil, err
		}
		if r != nil {
			out[q.Name] = r
		}
	}
	return out, nil
}

// withFiltered computes a figure per declared query set of the index, labelled by its name.
func withFiltered(f func(r *filteredResult) float64) func(*readings) []sample {
	return func(r *readings) []sample {
		if len(r.filtered) == 0 {
			return nil
		}
		names := make(map[string]bool, len(r.filtered))
		for n := range r.filtered {
			names[n] = true
		}
		var out []sample
		for _, n := range sortedKeys(names) {
			out = append(out, sample{labels: []string{n}, v: f(r.filtered[n])})
		}
		return out
	}
}

// filteredFigures are the figures of the declared filtered queries: one series per query set
// (label query), none for an index without one. The Measurer's value of each is the worst
// query set's, so a repair is judged by every filtered query of the index.
func filteredFigures() []figure {
	g, q := gaugeType, []string{"query"}
	return []figure{
		{name: "pgvector_filtered_short_ratio", typ: g, unit: "ratio", labels: q, source: fromFiltered, estimated: true,
			measured: []string{""}, worst: math.Max,
			help:   "Share of the sampled filtered queries of the query set that returned fewer rows through the index than exact search (k, or every matching row when fewer match).",
			values: withFiltered((*filteredResult).shortRatio)},
		{name: "pgvector_filtered_rows_ratio", typ: g, unit: "ratio", labels: q, source: fromFiltered, estimated: true,
			measured: []string{""}, worst: math.Min,
			help:   "Mean rows returned through the index over k, for the sampled filtered queries of the query set.",
			values: withFiltered((*filteredResult).rowsRatio)},
		{name: "pgvector_filtered_exact_rows_ratio", typ: g, unit: "ratio", labels: q, source: fromFiltered, estimated: true,
			measured: []string{""}, worst: math.Min,
			help:   "Mean rows returned by exact search (index scans off) over k, for the same queries: below 1 when filters match fewer than k rows, which no setting can change.",
			values: withFiltered((*filteredResult).exactRowsRatio)},
		{name: "pgvector_filtered_recall_ratio", typ: g, unit: "ratio", labels: q, source: fromFiltered, estimated: true,
			measured: []string{""}, worst: math.Min,
			help:   "Share of the rows exact filtered search returns (index scans off) that the search through the index returns, over the sampled queries of the query set.",
			values: withFiltered((*filteredResult).recall)},
		{name: "pgvector_filtered_latency_seconds", typ: g, unit: "seconds", labels: q, source: fromFiltered, estimated: true,
			measured: []string{""}, worst: math.Max,
			help:   "Mean duration of the sampled filtered queries of the query set through the index, with the search settings a new session gets.",
			values: withFiltered(func(r *filteredResult) float64 { return r.latency })},
		{name: "pgvector_filtered_index_used", typ: g, labels: q, source: fromFiltered,
			measured: []string{""}, worst: math.Min,
			help:   "Whether the plan of the query set's first sampled query scans the index (1) or not (0), from EXPLAIN.",
			values: withFiltered(func(r *filteredResult) float64 { return b2f(r.indexUsed) })},
		{name: "pgvector_filtered_samples", typ: g, labels: q, source: fromFiltered,
			unmeasured: "the sample size of the other filtered figures",
			help:       "Filtered queries the last run of the query set issued (exporter.filtered_queries[].samples when the table has rows).",
			values:     withFiltered(func(r *filteredResult) float64 { return float64(r.samples) })},
	}
}
