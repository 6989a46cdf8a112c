package exporter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/horizon"
	"github.com/vectorheal/vectorheal/internal/standby"
)

// DatabaseReport is a one-shot health report of every vector index of a database, with the
// exporter's figures. JSON field names are the metric names without the pgvector_ prefix;
// a figure with a state, layer, kind or k label is an object keyed by that label's value.
type DatabaseReport struct {
	Datname             string `json:"datname"`
	PageReaderAvailable int    `json:"page_reader_available"`
	PageReaderReason    string `json:"page_reader_reason,omitempty"`
	// HeapReaderAvailable says whether dead heap TIDs can be counted exactly (HOT chains
	// followed on the heap pages); without it hnsw_heap_tids is absent where a chain needs
	// following and index_dead_entries_estimated stands in.
	HeapReaderAvailable int    `json:"heap_reader_available"`
	HeapReaderReason    string `json:"heap_reader_reason,omitempty"`
	// IndexReadsOn is the server the figures read from the index itself (pages, recall and
	// filtered probes) were read on: "primary", or "standby" once it had replayed the
	// primary's position at the start; statistics always come from the primary.
	// IndexReadsReason says why a standby that was given was not used.
	IndexReadsOn     string        `json:"index_reads"`
	IndexReadsReason string        `json:"index_reads_reason,omitempty"`
	QueryCallsTotal  *float64      `json:"query_calls_total,omitempty"`
	QueryExecSeconds *float64      `json:"query_exec_seconds_total,omitempty"`
	Indexes          []IndexReport `json:"indexes"`

	// XminHorizon is the oldest holder of the database's xmin horizon
	// (pgvector_xmin_horizon_age_*); absent when none holds.
	XminHorizon *XminHorizonReport `json:"xmin_horizon,omitempty"`
}

// XminHorizonReport names the oldest holder of a database's xmin horizon: while it holds, no
// VACUUM removes the rows deleted after it.
type XminHorizonReport struct {
	Kind       string   `json:"kind"`
	Holder     string   `json:"holder"`
	AgeSeconds *float64 `json:"age_seconds,omitempty"`
	AgeXIDs    float64  `json:"age_xids"`
}

// xminHorizonReport is the report of holder h; nil when none holds.
func xminHorizonReport(h *horizon.Holder) *XminHorizonReport {
	if h == nil {
		return nil
	}
	r := &XminHorizonReport{Kind: h.Kind, Holder: h.Name, AgeXIDs: h.AgeXIDs}
	if h.Age != nil {
		s := h.Age.Seconds()
		r.AgeSeconds = &s
	}
	return r
}

// IndexReport holds the figures of one index, in the order of the figure table; figures not
// known for the index are left out.
type IndexReport struct {
	Schemaname   string
	Relname      string
	Indexrelname string
	IndexInfo    IndexInfo
	// PartitionOf names, for the index of a partition, the partitioned index it is attached to.
	PartitionOf *IndexName
	// Partitioned is set for the index of a partitioned table: it has no figures of its own;
	// Partitions lists its partitions' indexes and Rollup their figures rolled up (rollups).
	Partitioned bool
	Partitions  []IndexName
	Rollup      []ReportFigure
	Figures     []ReportFigure
	Errors      []string
}

// IndexName names an index and its table.
type IndexName struct {
	Schemaname   string `json:"schemaname"`
	Relname      string `json:"relname"`
	Indexrelname string `json:"indexrelname"`
}

// ReportFigure is one figure of an index: a single value, or values by label value (for a
// histogram: count, sum and max of the observations).
type ReportFigure struct {
	Key    string // the metric name without the pgvector_ prefix
	Unit   string // seconds, bytes, ratio, or "" for a count
	Value  *float64
	Values map[string]float64
}

// Figure returns the figure of the index with the given key, and whether it is known.
func (ir IndexReport) Figure(key string) (ReportFigure, bool) {
	for _, f := range ir.Figures {
		if f.Key == key {
			return f, true
		}
	}
	return ReportFigure{}, false
}

// MarshalJSON writes the index as one object: its names, index_info, each figure under its
// key, and errors.
func (ir IndexReport) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	field := func(key string, v any) error {
		if b.Len() > 0 {
			b.WriteByte(',')
		} else {
			b.WriteByte('{')
		}
		k, _ := json.Marshal(key)
		val, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(val)
		return nil
	}
	for _, kv := range []struct {
		k string
		v any
	}{{"schemaname", ir.Schemaname}, {"relname", ir.Relname}, {"indexrelname", ir.Indexrelname}, {"index_info", ir.IndexInfo}} {
		if err := field(kv.k, kv.v); err != nil {
			return nil, err
		}
	}
	if ir.PartitionOf != nil {
		if err := field("partition_of", ir.PartitionOf); err != nil {
			return nil, err
		}
	}
	if ir.Partitioned {
		rollup := map[string]any{}
		for _, f := range ir.Rollup {
			rollup[f.Key] = f.value()
		}
		if err := field("partitions", ir.Partitions); err != nil {
			return nil, err
		}
		if err := field("rollup", rollup); err != nil {
			return nil, err
		}
	}
	for _, f := range ir.Figures {
		if err := field(f.Key, f.value()); err != nil {
			return nil, err
		}
	}
	if len(ir.Errors) > 0 {
		if err := field("errors", ir.Errors); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// value is the figure's JSON value: its number, or its values by label value.
func (f ReportFigure) value() any {
	if f.Value != nil {
		return *f.Value
	}
	return f.Values
}

// IndexInfo is the labels of pgvector_index_info.
type IndexInfo struct {
	Method         string `json:"method"`
	Opclass        string `json:"opclass"`
	Dimensions     int    `json:"dimensions"`
	M              int    `json:"m"`
	EfConstruction int    `json:"ef_construction"`
	Lists          int    `json:"lists"`
}

// ReportOption changes where Report reads.
type ReportOption func(*reportSources)

// reportSources are the servers Report reads.
type reportSources struct {
	standby    *pgxpool.Pool
	replayWait time.Duration
}

// ReadIndexesOnStandby reads the figures that come from the index itself (pages, probes) on
// standby, a hot standby of the primary Report is given, once it has replayed the primary's
// WAL position at the start (waiting at most replayWait); a standby further behind, or not in
// recovery, is passed over for the primary and the report says why.
func ReadIndexesOnStandby(standby *pgxpool.Pool, replayWait time.Duration) ReportOption {
	return func(s *reportSources) { s.standby, s.replayWait = standby, replayWait }
}

// Report measures every vector index of the database behind pool once: structure (when pages
// can be read), recall probe and statistics, within cfg's budgets. A failing figure is listed
// in the index's Errors; only a database that cannot be queried at all is an error.
// Staleness and drift need build tracking over time and are not part of it.
func Report(ctx context.Context, pool *pgxpool.Pool, cfg config.Exporter, opts ...ReportOption) (*DatabaseReport, error) {
	var src reportSources
	for _, o := range opts {
		o(&src)
	}
	var list []catalog.Index
	rep := &DatabaseReport{}
	err := readOnly(ctx, pool, cfg.StatisticsTimeout, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT current_database()`).Scan(&rep.Datname); err != nil {
			return err
		}
		var err error
		list, err = catalog.List(ctx, tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	indexPool := pool
	rep.IndexReadsOn = onPrimary
	if src.standby != nil {
		if err := replayedStandby(ctx, pool, src.standby, src.replayWait); err != nil {
			rep.IndexReadsReason = err.Error()
		} else {
			indexPool, rep.IndexReadsOn = src.standby, onStandby
		}
	}
	var reader pageReader
	err = readOnly(ctx, indexPool, cfg.StatisticsTimeout, func(tx pgx.Tx) error {
		var err error
		reader, err = detectPageReader(ctx, tx, pageReaderSchema(cfg))
		rep.PageReaderReason, rep.HeapReaderReason = reader.why, reader.heapWhy
		return err
	})
	if err != nil {
		return nil, err
	}
	if reader.index != "" {
		rep.PageReaderAvailable = 1
	}
	if reader.heap != "" {
		rep.HeapReaderAvailable = 1
	}
	ts, statsErr := reportStats(ctx, pool, list, cfg)
	if statsErr == nil {
		rep.QueryCallsTotal, rep.QueryExecSeconds = ts.queryCalls, ts.queryExecSeconds
		rep.XminHorizon = xminHorizonReport(ts.horizon)
	}
	for _, ix := range list {
		r := &readings{ix: ix, now: time.Now()}
		var errs []string
		if statsErr != nil {
			errs = append(errs, statsErr.Error())
		} else {
			r.stats = ts.indexes[ix.OID]
		}
		if ix.Valid {
			errs = append(errs, readIndex(ctx, indexPool, r, reader, cfg)...)
		}
		ir := indexReport(r)
		ir.Errors = errs
		rep.Indexes = append(rep.Indexes, ir)
	}
	rollUpPartitions(rep.Indexes)
	return rep, nil
}

// reportStats reads the statistics of the indexes of list and their tables, and the
// database's xmin horizon, on the primary.
func reportStats(ctx context.Context, pool *pgxpool.Pool, list []catalog.Index, cfg config.Exporter) (*targetStats, error) {
	var ioids, toids []uint32
	for _, ix := range list {
		ioids, toids = append(ioids, ix.OID), append(toids, ix.TableOID)
	}
	var ts *targetStats
	err := readOnly(ctx, pool, cfg.StatisticsTimeout, func(tx pgx.Tx) error {
		var err error
		if ts, err = readStats(ctx, tx, ioids, toids); err != nil {
			return err
		}
		return ts.readHorizon(ctx, tx, cfg.XminHorizonMinAge)
	})
	return ts, err
}

// readIndex reads into r the figures that come from a valid index itself, on pool: its
// structure (when reader can read pages), the recall probe and the filtered query sets. It
// returns the errors of those that failed.
func readIndex(ctx context.Context, pool *pgxpool.Pool, r *readings, reader pageReader, cfg config.Exporter) []string {
	var errs []string
	var err error
	ix := r.ix
	if reader.index != "" {
		if r.structure, err = scanStructure(ctx, pool, ix, reader, cfg); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if !cfg.Recall.Disabled {
		if r.recall, err = probe(ctx, pool, ix, cfg.Recall.Queries, cfg.Recall.Newest(), cfg.Recall.K, cfg.Recall.Timeout); err != nil {
			errs = append(errs, err.Error())
		} else if r.recall != nil {
			r.latency = r.recall.histogram()
		}
	}
	if len(filteredQueriesOf(cfg.FilteredQueries, "", ix)) > 0 {
		if r.filtered, err = readFiltered(ctx, pool, ix, cfg.FilteredQueries); err != nil {
			errs = append(errs, err.Error())
		}
	}
	return errs
}

// replayedStandby checks that replica is in recovery and has replayed the primary's WAL
// position now, waiting at most wait; the error says why the standby is not used.
func replayedStandby(ctx context.Context, primary, replica *pgxpool.Pool, wait time.Duration) error {
	rec, err := standby.InRecovery(ctx, replica)
	switch {
	case err != nil:
		return fmt.Errorf("standby not used, index figures read on the primary: %w", err)
	case !rec:
		return errors.New("standby not used, index figures read on the primary: the server is not in recovery (not a standby)")
	}
	if err := standby.AwaitPrimary(ctx, primary, replica, wait, 100*time.Millisecond); err != nil {
		return fmt.Errorf("standby not used, index figures read on the primary: %w", err)
	}
	return nil
}

// indexReport returns the report of one index from what was read of it.
func indexReport(r *readings) IndexReport {
	ix := r.ix
	ir := IndexReport{
		Schemaname: ix.Schema, Relname: ix.Table, Indexrelname: ix.Name,
		IndexInfo:   IndexInfo{ix.Method, ix.Opclass, ix.Dimensions, ix.M, ix.EfConstruction, ix.Lists},
		Partitioned: ix.Partitioned,
	}
	if ix.ParentIndex != "" {
		ir.PartitionOf = &IndexName{Schemaname: ix.ParentSchema, Relname: ix.ParentTable, Indexrelname: ix.ParentIndex}
	}
	for _, f := range figureTable() {
		if !f.appliesTo(ix.Method) || len(f.labels) > 1 { // the info figure's labels are IndexInfo
			continue
		}
		rf := ReportFigure{Key: strings.TrimPrefix(f.name, "pgvector_"), Unit: f.unit}
		if f.typ == histogramType {
			if h := f.hist(r); h != nil && h.count > 0 {
				rf.Values = map[string]float64{"count": float64(h.count), "sum": h.sum, "max": h.max}
				ir.Figures = append(ir.Figures, rf)
			}
			continue
		}
		for _, s := range f.values(r) {
			switch {
			case math.IsNaN(s.v): // unknowable here, as on /metrics
			case len(f.labels) == 0:
				rf.Value = ptr(s.v)
			default:
				if rf.Values == nil {
					rf.Values = map[string]float64{}
				}
				rf.Values[s.labels[0]] = s.v
			}
		}
		if rf.Value != nil || len(rf.Values) > 0 {
			ir.Figures = append(ir.Figures, rf)
		}
	}
	return ir
}

func ptr(v float64) *float64 { return &v }

// WriteJSON writes the report as indented JSON, as vectorheal check --format json prints it.
func (r *DatabaseReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a human: one block per index, one line per figure, named
// as in the JSON form.
func (r *DatabaseReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "database %s: %d vector index(es)\n", r.Datname, len(r.Indexes))
	switch {
	case r.IndexReadsReason != "":
		fmt.Fprintln(&b, r.IndexReadsReason)
	case r.IndexReadsOn == onStandby:
		fmt.Fprintln(&b, "index figures (pages, probes) read on the standby, replayed to the primary's position; statistics on the primary")
	}
	if r.PageReaderAvailable == 0 {
		fmt.Fprintf(&b, "index pages cannot be read, structure figures are missing: %s\n", r.PageReaderReason)
	} else if r.HeapReaderAvailable == 0 {
		fmt.Fprintf(&b, "heap pages cannot be read, dead heap TIDs are estimated (index_dead_entries_estimated): %s\n", r.HeapReaderReason)
	}
	if r.QueryCallsTotal != nil {
		fmt.Fprintf(&b, "statements with distance operators: %g calls, %.3f s executing\n", *r.QueryCallsTotal, *r.QueryExecSeconds)
	}
	if h := r.XminHorizon; h != nil {
		age := fmt.Sprintf("%.0f transactions behind", h.AgeXIDs)
		if h.AgeSeconds != nil {
			age = fmt.Sprintf("holding for %s (%.0f transactions)", time.Duration(*h.AgeSeconds*float64(time.Second)).Round(time.Second), h.AgeXIDs)
		}
		fmt.Fprintf(&b, "xmin horizon held by %s %s, %s: VACUUM cannot remove rows deleted since\n", h.Kind, h.Holder, age)
	}
	for _, ir := range r.Indexes {
		valid := "valid"
		if f, _ := ir.Figure("index_valid"); f.Value == nil || *f.Value == 0 {
			valid = "INVALID"
		}
		i := ir.IndexInfo
		fmt.Fprintf(&b, "\n%s.%s on %s.%s: %s %s, %d dimensions, %s", ir.Schemaname, ir.Indexrelname, ir.Schemaname, ir.Relname,
			i.Method, i.Opclass, i.Dimensions, valid)
		if i.Method == "hnsw" {
			fmt.Fprintf(&b, ", m=%d ef_construction=%d", i.M, i.EfConstruction)
		} else {
			fmt.Fprintf(&b, ", lists=%d", i.Lists)
		}
		if p := ir.PartitionOf; p != nil {
			fmt.Fprintf(&b, ", partition of %s.%s on %s.%s", p.Schemaname, p.Indexrelname, p.Schemaname, p.Relname)
		}
		b.WriteByte('\n')
		for _, f := range ir.Figures {
			if f.Key != "index_valid" { // in the heading
				fmt.Fprintf(&b, "  %-32s %s\n", f.Key, f.text())
			}
		}
		if ir.Partitioned {
			names := make([]string, len(ir.Partitions))
			for i, p := range ir.Partitions {
				names[i] = p.Schemaname + "." + p.Indexrelname
			}
			fmt.Fprintf(&b, "  partitioned index: no storage of its own; %d partition index(es): %s\n", len(names), strings.Join(names, ", "))
			for _, f := range ir.Rollup {
				how := "sum"
				if ru, _ := rollupOf(f.Key); ru.weight != "" {
					how = "weighted by " + ru.weightName()
				}
				fmt.Fprintf(&b, "  %-32s %s  (partitions, %s)\n", f.Key, f.text(), how)
			}
		}
		for _, e := range ir.Errors {
			fmt.Fprintf(&b, "  error: %s\n", e)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// text formats a figure: a number, or label=value pairs sorted by label (numbers in
// numeric order).
func (f ReportFigure) text() string {
	if f.Value != nil {
		return strconv.FormatFloat(*f.Value, 'g', 6, 64)
	}
	keys := make([]string, 0, len(f.Values))
	for k := range f.Values {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		ai, ea := strconv.Atoi(a)
		bi, eb := strconv.Atoi(b)
		if ea == nil && eb == nil {
			return ai < bi
		}
		return a < b
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.FormatFloat(f.Values[k], 'g', 6, 64)
	}
	return strings.Join(parts, " ")
}
