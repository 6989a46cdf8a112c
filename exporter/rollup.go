package exporter

import "slices"

// A rollup is one figure of a partitioned table's parent index computed from its partitions'
// indexes. The parent has no storage and no rows of its own, so its figures are those of its
// partitions: counts and sizes summed, ratios weighted by each partition's share. vectorheal
// check computes them here; the recording rules parent:<metric>:sum and
// parent:<metric>:share_weighted compute the same from /metrics (rules/partitions.yml, held to
// this table by the rules tests).
type rollup struct {
	key string // the report key of the figure (metric name without pgvector_)
	// weight, when set, makes the rollup the mean of the partitions' values weighted by that
	// figure (its weightLabel value for a labelled one); otherwise the values are summed.
	weight      string
	weightLabel string
}

// rollups are the figures rolled up, in report order. Connectivity is weighted by live
// elements, so it stays the share of the parent's live elements reachable in their own graph.
// Recall is weighted by the partitions' live rows: a query over the parent searches every
// partition and merges the results, and the rows each partition holds are its share of the
// true neighbours of a query drawn from the whole table.
var rollups = []rollup{
	{key: "index_size_bytes"},
	{key: "hnsw_elements"},
	{key: "hnsw_heap_tids"},
	{key: "hnsw_unreachable_elements"},
	{key: "hnsw_orphan_elements"},
	{key: "hnsw_connectivity_ratio", weight: "hnsw_elements", weightLabel: "live"},
	{key: "ivfflat_lists"},
	{key: "ivfflat_empty_lists"},
	{key: "recall_ratio", weight: "table_live_tuples"},
	{key: "table_dead_tuples"},
	{key: "table_live_tuples"},
	{key: "index_dead_entries_estimated"},
}

func rollupOf(key string) (rollup, bool) {
	i := slices.IndexFunc(rollups, func(r rollup) bool { return r.key == key })
	if i < 0 {
		return rollup{}, false
	}
	return rollups[i], true
}

// weightName is the weight as a figure name, e.g. hnsw_elements{state="live"}.
func (r rollup) weightName() string {
	if r.weightLabel == "" {
		return r.weight
	}
	return r.weight + "{state=\"" + r.weightLabel + "\"}"
}

// Rollup is a figure of a partitioned index rolled up from its partitions, as the recording
// rules name it.
type Rollup struct {
	// Record is the recording rule's name, e.g. parent:pgvector_hnsw_elements:sum.
	Record string
	// Metric is the partitions' metric it rolls up; Weight, for a share-weighted mean, the
	// metric weighting it and WeightLabel the state of that metric used ("" for none).
	Metric, Weight, WeightLabel string
}

// Rollups lists the figures a partitioned index gets from its partitions (vectorheal check's
// rollup), with the recording rules that must compute the same from /metrics.
func Rollups() []Rollup {
	out := make([]Rollup, len(rollups))
	for i, r := range rollups {
		ru := Rollup{Metric: "pgvector_" + r.key, Record: "parent:pgvector_" + r.key + ":sum", WeightLabel: r.weightLabel}
		if r.weight != "" {
			ru.Record = "parent:pgvector_" + r.key + ":share_weighted"
			ru.Weight = "pgvector_" + r.weight
		}
		out[i] = ru
	}
	return out
}

// rollUpPartitions gives each partitioned index of a report its partitions and their rollup.
func rollUpPartitions(indexes []IndexReport) {
	for i := range indexes {
		parent := &indexes[i]
		if !parent.Partitioned {
			continue
		}
		var parts []IndexReport
		for _, ir := range indexes {
			if p := ir.PartitionOf; p != nil && p.Schemaname == parent.Schemaname && p.Indexrelname == parent.Indexrelname {
				parts = append(parts, ir)
				parent.Partitions = append(parent.Partitions, IndexName{ir.Schemaname, ir.Relname, ir.Indexrelname})
			}
		}
		parent.Partitions = append([]IndexName{}, parent.Partitions...) // [] rather than null for none
		parent.Rollup = rollUp(parts)
	}
}

// rollUp computes the rollups of the partitions parts. A partition without a figure (not
// measured, or not of that method) adds nothing to it; a weighted figure counts only the
// partitions that have both it and its weight.
func rollUp(parts []IndexReport) []ReportFigure {
	var out []ReportFigure
	for _, ru := range rollups {
		sums, weights := map[string]float64{}, map[string]float64{}
		single, unit, found := false, "", false
		for _, ir := range parts {
			f, ok := ir.Figure(ru.key)
			if !ok {
				continue
			}
			w := 1.0
			if ru.weight != "" {
				wf, ok := ir.Figure(ru.weight)
				switch {
				case !ok:
					continue
				case ru.weightLabel != "":
					if w, ok = wf.Values[ru.weightLabel]; !ok {
						continue
					}
				case wf.Value != nil:
					w = *wf.Value
				default:
					continue
				}
			}
			found, unit = true, f.Unit
			if f.Value != nil {
				single = true
				sums[""] += w * *f.Value
				weights[""] += w
			}
			for k, v := range f.Values {
				sums[k] += w * v
				weights[k] += w
			}
		}
		if !found {
			continue
		}
		rf := ReportFigure{Key: ru.key, Unit: unit}
		for k, s := range sums {
			v := s
			if ru.weight != "" {
				if weights[k] <= 0 {
					continue
				}
				v = s / weights[k]
			}
			if single && k == "" {
				rf.Value = ptr(v)
				continue
			}
			if rf.Values == nil {
				rf.Values = map[string]float64{}
			}
			rf.Values[k] = v
		}
		if rf.Value != nil || len(rf.Values) > 0 {
			out = append(out, rf)
		}
	}
	return out
}
