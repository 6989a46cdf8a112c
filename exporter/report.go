package exporter

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
)

// DatabaseReport is a one-shot health report of every vector index of a database, with the
// exporter's figures. JSON field names are the metric names without the pgvector_ prefix;
// a figure with a state, layer, kind or k label is an object keyed by that label's value.
type DatabaseReport struct {
	Datname             string        `json:"datname"`
	PageReaderAvailable int           `json:"page_reader_available"`
	PageReaderReason    string        `json:"page_reader_reason,omitempty"`
	QueryCallsTotal     *float64      `json:"query_calls_total,omitempty"`
	QueryExecSeconds    *float64      `json:"query_exec_seconds_total,omitempty"`
	Indexes             []IndexReport `json:"indexes"`
}

// IndexReport holds the figures of one index; absent figures are nil (omitted in JSON).
type IndexReport struct {
	Schemaname   string    `json:"schemaname"`
	Relname      string    `json:"relname"`
	Indexrelname string    `json:"indexrelname"`
	IndexInfo    IndexInfo `json:"index_info"`
	SizeBytes    *float64  `json:"index_size_bytes,omitempty"`
	Valid        float64   `json:"index_valid"`

	HNSWElements      map[string]float64 `json:"hnsw_elements,omitempty"`
	HNSWHeapTIDs      map[string]float64 `json:"hnsw_heap_tids,omitempty"`
	HNSWLayerElements map[string]float64 `json:"hnsw_layer_elements,omitempty"`
	HNSWUnreachable   *float64           `json:"hnsw_unreachable_elements,omitempty"`
	HNSWConnectivity  *float64           `json:"hnsw_connectivity_ratio,omitempty"`
	HNSWOrphans       *float64           `json:"hnsw_orphan_elements,omitempty"`
	HNSWEntryQuality  *float64           `json:"hnsw_entry_point_quality_ratio,omitempty"`
	HNSWNeighborFill  map[string]float64 `json:"hnsw_neighbor_fill_ratio,omitempty"`
	Fragmentation     *float64           `json:"index_fragmentation_ratio,omitempty"`
	StructuralFaults  map[string]float64 `json:"index_structural_faults,omitempty"`

	IVFLists            *float64 `json:"ivfflat_lists,omitempty"`
	IVFRecommendedLists *float64 `json:"ivfflat_recommended_lists,omitempty"`
	IVFListSizeCV       *float64 `json:"ivfflat_list_size_cv,omitempty"`
	IVFEmptyLists       *float64 `json:"ivfflat_empty_lists,omitempty"`
	IVFCentroidQuality  *float64 `json:"ivfflat_centroid_quality_ratio,omitempty"`

	Recall              map[string]float64 `json:"recall_ratio,omitempty"`
	ProbeLatencySeconds map[string]float64 `json:"probe_latency_seconds,omitempty"` // count, sum, max
	ProbeIndexUsed      *float64           `json:"probe_index_used,omitempty"`

	ScansTotal     *float64 `json:"index_scans_total,omitempty"`
	TuplesRead     *float64 `json:"index_tuples_read_total,omitempty"`
	BlocksHit      *float64 `json:"index_blocks_hit_total,omitempty"`
	BlocksRead     *float64 `json:"index_blocks_read_total,omitempty"`
	DeadTuples     *float64 `json:"table_dead_tuples,omitempty"`
	LiveTuples     *float64 `json:"table_live_tuples,omitempty"`
	LastVacuumAge  *float64 `json:"table_last_vacuum_age_seconds,omitempty"`
	LastAnalyzeAge *float64 `json:"table_last_analyze_age_seconds,omitempty"`
	BuildProgress  *float64 `json:"index_build_progress_ratio,omitempty"`
	Errors         []string `json:"errors,omitempty"`
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

// Report measures every vector index of the database behind pool once: structure (when pages
// can be read), recall probe and statistics, within cfg's budgets. A failing figure is listed
// in the index's Errors; only a database that cannot be queried at all is an error.
// Staleness and drift need build tracking over time and are not part of it.
func Report(ctx context.Context, pool *pgxpool.Pool, cfg config.Exporter) (*DatabaseReport, error) {
	var list []catalog.Index
	rep := &DatabaseReport{}
	var fn string
	err := readOnly(ctx, pool, cfg.StatisticsTimeout, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT current_database()`).Scan(&rep.Datname); err != nil {
			return err
		}
		var err error
		if list, err = catalog.List(ctx, tx); err != nil {
			return err
		}
		fn, rep.PageReaderReason, err = detectPageReader(ctx, tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	if fn != "" {
		rep.PageReaderAvailable = 1
	}
	var ioids, toids []uint32
	for _, ix := range list {
		ioids, toids = append(ioids, ix.OID), append(toids, ix.TableOID)
	}
	var ts *targetStats
	statsErr := readOnly(ctx, pool, cfg.StatisticsTimeout, func(tx pgx.Tx) error {
		var err error
		ts, err = readStats(ctx, tx, ioids, toids)
		return err
	})
	if statsErr == nil {
		rep.QueryCallsTotal, rep.QueryExecSeconds = ts.queryCalls, ts.queryExecSeconds
	}
	for _, ix := range list {
		ir := IndexReport{
			Schemaname: ix.Schema, Relname: ix.Table, Indexrelname: ix.Name, Valid: b2f(ix.Valid),
			IndexInfo: IndexInfo{ix.Method, ix.Opclass, ix.Dimensions, ix.M, ix.EfConstruction, ix.Lists},
		}
		var is *indexStats
		if statsErr != nil {
			ir.Errors = append(ir.Errors, statsErr.Error())
		} else {
			is = ts.indexes[ix.OID]
		}
		ir.fillStats(is)
		if ix.Valid && fn != "" {
			if s, err := scanStructure(ctx, pool, ix, fn, cfg.PageBatch, cfg.Structure.Timeout); err != nil {
				ir.Errors = append(ir.Errors, err.Error())
			} else if s != nil { // nil: a partitioned parent index, without pages of its own
				ir.fillStructure(s, is)
			}
		}
		if ix.Valid && !cfg.Recall.Disabled {
			r, err := probe(ctx, pool, ix, cfg.Recall.Queries, cfg.Recall.K, cfg.Recall.Timeout)
			if err != nil {
				ir.Errors = append(ir.Errors, err.Error())
			} else if r != nil {
				ir.ProbeIndexUsed = ptr(b2f(r.indexUsed))
			}
			if r != nil && r.indexUsed { // otherwise no figure of this index (see probe)
				ir.Recall = map[string]float64{strconv.Itoa(r.k): r.ratio}
				var sum, mx float64
				for _, l := range r.latencies {
					sum += l
					mx = max(mx, l)
				}
				ir.ProbeLatencySeconds = map[string]float64{"count": float64(len(r.latencies)), "sum": sum, "max": mx}
			}
		}
		rep.Indexes = append(rep.Indexes, ir)
	}
	return rep, nil
}

func ptr(v float64) *float64 { return &v }

func (ir *IndexReport) fillStats(is *indexStats) {
	if is == nil {
		return
	}
	ir.SizeBytes, ir.ScansTotal, ir.TuplesRead = ptr(is.sizeBytes), ptr(is.scans), ptr(is.tupRead)
	ir.BlocksHit, ir.BlocksRead = ptr(is.blksHit), ptr(is.blksRead)
	ir.DeadTuples, ir.LiveTuples = ptr(is.deadTup), ptr(is.liveTup)
	ir.LastVacuumAge, ir.LastAnalyzeAge, ir.BuildProgress = is.vacuumAge, is.analyzeAge, is.buildProgress
}

func (ir *IndexReport) fillStructure(s *structure, is *indexStats) {
	ir.StructuralFaults = map[string]float64{}
	if r := s.hnsw; r != nil {
		ir.HNSWElements = map[string]float64{"live": float64(r.ElementsLive), "being_deleted": float64(r.ElementsBeingDeleted), "deleted": float64(r.ElementsDeleted)}
		if r.HeapTIDsExact { // see collect.go: an upper bound is not reported
			ir.HNSWHeapTIDs = map[string]float64{"live": float64(r.HeapTIDsLive), "dead": float64(r.HeapTIDsDead)}
		}
		ir.HNSWLayerElements = map[string]float64{}
		for l, n := range r.LayerElements {
			ir.HNSWLayerElements[strconv.Itoa(l)] = float64(n)
		}
		ir.HNSWNeighborFill = map[string]float64{}
		for l, f := range r.NeighborFill {
			ir.HNSWNeighborFill[strconv.Itoa(l)] = f
		}
		ir.HNSWUnreachable, ir.HNSWConnectivity = ptr(float64(r.Unreachable)), ptr(r.ConnectivityRatio)
		ir.HNSWOrphans, ir.HNSWEntryQuality = ptr(float64(r.Orphans)), ptr(r.EntryPointQuality)
		ir.Fragmentation = ptr(r.FragmentationRatio)
		for k, n := range r.Faults {
			ir.StructuralFaults[k] = float64(n)
		}
	}
	if r := s.ivf; r != nil {
		rows := s.rows
		if is != nil {
			rows = is.liveTup
		}
		ir.IVFLists, ir.IVFRecommendedLists = ptr(float64(r.Lists)), ptr(recommendedLists(rows))
		ir.IVFListSizeCV, ir.IVFEmptyLists = ptr(r.ListSizeCV), ptr(float64(r.EmptyLists))
		ir.IVFCentroidQuality = ptr(r.CentroidQuality)
		for k, n := range r.Faults {
			ir.StructuralFaults[k] = float64(n)
		}
	}
}

// WriteText writes the report for a human: one block per index, one line per figure, named
// as in the JSON form.
func (r *DatabaseReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "database %s: %d vector index(es)\n", r.Datname, len(r.Indexes))
	if r.PageReaderAvailable == 0 {
		fmt.Fprintf(&b, "index pages cannot be read, structure figures are missing: %s\n", r.PageReaderReason)
	}
	if r.QueryCallsTotal != nil {
		fmt.Fprintf(&b, "statements with distance operators: %g calls, %.3f s executing\n", *r.QueryCallsTotal, *r.QueryExecSeconds)
	}
	for _, ir := range r.Indexes {
		valid := "valid"
		if ir.Valid == 0 {
			valid = "INVALID"
		}
		i := ir.IndexInfo
		fmt.Fprintf(&b, "\n%s.%s on %s.%s: %s %s, %d dimensions, %s", ir.Schemaname, ir.Indexrelname, ir.Schemaname, ir.Relname,
			i.Method, i.Opclass, i.Dimensions, valid)
		if i.Method == "hnsw" {
			fmt.Fprintf(&b, ", m=%d ef_construction=%d\n", i.M, i.EfConstruction)
		} else {
			fmt.Fprintf(&b, ", lists=%d\n", i.Lists)
		}
		v := reflect.ValueOf(ir)
		for k := 0; k < v.NumField(); k++ {
			name, _, _ := strings.Cut(v.Type().Field(k).Tag.Get("json"), ",")
			if line := textValue(v.Field(k)); line != "" && !strings.HasPrefix(name, "index_info") &&
				name != "schemaname" && name != "relname" && name != "indexrelname" && name != "index_valid" && name != "errors" {
				fmt.Fprintf(&b, "  %-32s %s\n", name, line)
			}
		}
		for _, e := range ir.Errors {
			fmt.Fprintf(&b, "  error: %s\n", e)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// textValue formats a figure: a number, or label=value pairs sorted by label.
func textValue(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return ""
		}
		return strconv.FormatFloat(v.Elem().Float(), 'g', 6, 64)
	case reflect.Map:
		if v.Len() == 0 {
			return ""
		}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool {
			a, b := keys[i].String(), keys[j].String()
			ai, ea := strconv.Atoi(a)
			bi, eb := strconv.Atoi(b)
			if ea == nil && eb == nil {
				return ai < bi
			}
			return a < b
		})
		var parts []string
		for _, k := range keys {
			parts = append(parts, k.String()+"="+strconv.FormatFloat(v.MapIndex(k).Float(), 'g', 6, 64))
		}
		return strings.Join(parts, " ")
	}
	return ""
}
