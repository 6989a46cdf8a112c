package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vectorheal/vectorheal/internal/figure"
)

// Twins.
const (
	tended   = "tended"
	untended = "untended"
)

// Phases of a run.
const (
	phaseQuiet = "quiet"
	phaseChurn = "churn"
)

// sample is one measurement of one index of one twin.
type sample struct {
	At        time.Time
	Elapsed   time.Duration // since the quiet period began
	Phase     string
	Twin      string
	Index     string
	Recall    float64
	Short     int // probe queries with fewer than k rows
	Probes    int
	Setting   string
	AppN      int
	AppErrors int
	P50, P99  float64 // seconds
	Filtered  int
	FiltShort int
	Size      int64
	Live      int64
	Dead      int64
	Autovac   int64
	Vacuuming bool
}

// repairMark is one repair of vectorheal's state store.
type repairMark struct {
	ID         int64
	Index      string
	Alert      string
	Entry      string
	State      string
	Strategies string
	Created    time.Time
	Started    *time.Time
	Finished   *time.Time
}

// Duration is how long the repair ran (0 when it did not start or finish).
func (r repairMark) Duration() time.Duration {
	if r.Started == nil || r.Finished == nil {
		return 0
	}
	return r.Finished.Sub(*r.Started)
}

// alertMark is an alert seen firing in Prometheus.
type alertMark struct {
	At       time.Time
	Alert    string
	Index    string
	Severity string
}

// structuralAlert is the alert of faults found in the index pages: on indexes nothing
// corrupted, every one is a false alert.
const structuralAlert = "PgvectorIndexStructuralFaults"

// failedRepair reports whether state is a repair that did harm or could not finish its job.
func failedRepair(state string) bool {
	return state == "failed" || state == "rolled_back" || state == "rollback_failed"
}

// stats summarises one index of one twin.
type stats struct {
	Twin, Index                        string
	AsBuilt, Mean, Final, Min          float64
	MedianP99, MedianP50               float64
	SizeBuilt, SizeFinal, SizeMax      int64
	MaxDead, LiveFinal                 int64
	Short, Probes, FiltShort, Filtered int
	Repairs                            map[string]int // by state
	Alerts                             map[string]int // by alertname
	ChurnSamples                       int
}

// summarise computes the stats of every (twin, index) pair in samples. The as-built recall is
// the mean over the quiet period (the index as built, before any churn; the first sample when
// there is no quiet period); the as-built size is the first sample's.
func summarise(samples []sample, repairs []repairMark, alerts []alertMark) []stats {
	type key struct{ twin, index string }
	by := map[key][]sample{}
	var keys []key
	for _, s := range samples {
		k := key{s.Twin, s.Index}
		if _, ok := by[k]; !ok {
			keys = append(keys, k)
		}
		by[k] = append(by[k], s)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].index != keys[j].index {
			return keys[i].index < keys[j].index
		}
		return keys[i].twin < keys[j].twin
	})
	var out []stats
	for _, k := range keys {
		st := summariseOne(by[k])
		st.Twin, st.Index = k.twin, k.index
		if k.twin == tended {
			for _, r := range repairs {
				if r.Index == k.index {
					st.Repairs[r.State]++
				}
			}
			for _, a := range alerts {
				if a.Index == k.index {
					st.Alerts[a.Alert]++
				}
			}
		}
		out = append(out, st)
	}
	return out
}

func summariseOne(ss []sample) stats {
	st := stats{Repairs: map[string]int{}, Alerts: map[string]int{}, Min: math.NaN(), Final: math.NaN()}
	var quiet, churn, p99s, p50s []float64
	for i, s := range ss {
		if i == 0 {
			st.SizeBuilt = s.Size
		}
		if s.Phase == phaseQuiet {
			if !math.IsNaN(s.Recall) {
				quiet = append(quiet, s.Recall)
			}
			continue
		}
		st.ChurnSamples++
		if !math.IsNaN(s.Recall) {
			churn = append(churn, s.Recall)
			st.Final = s.Recall
			if math.IsNaN(st.Min) || s.Recall < st.Min {
				st.Min = s.Recall
			}
		}
		if !math.IsNaN(s.P99) {
			p99s, p50s = append(p99s, s.P99), append(p50s, s.P50)
		}
		st.SizeFinal, st.LiveFinal = s.Size, s.Live
		st.SizeMax = max(st.SizeMax, s.Size)
		st.MaxDead = max(st.MaxDead, s.Dead)
		st.Short += s.Short
		st.Probes += s.Probes
		st.FiltShort += s.FiltShort
		st.Filtered += s.Filtered
	}
	st.AsBuilt = mean(quiet)
	if len(quiet) == 0 && len(ss) > 0 {
		st.AsBuilt = ss[0].Recall
	}
	st.Mean = mean(churn)
	st.MedianP99, st.MedianP50 = quantile(p99s, 0.5), quantile(p50s, 0.5)
	return st
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// criterion is one acceptance check of the soak.
type criterion struct {
	Name   string
	Pass   bool
	Detail string
}

// runInfo is what the criteria need besides the stats.
type runInfo struct {
	QuietStart, ChurnStart, End time.Time
	// ConstantRows names the indexes whose table keeps its row count under the churn.
	ConstantRows map[string]bool
}

// evaluate checks the soak's acceptance criteria on the summary, each with its numbers.
func evaluate(sts []stats, repairs []repairMark, alerts []alertMark, info runInfo) []criterion {
	var out []criterion
	add := func(name string, pass bool, format string, args ...any) {
		out = append(out, criterion{Name: name, Pass: pass, Detail: fmt.Sprintf(format, args...)})
	}
	churn := info.End.Sub(info.ChurnStart)
	add("churn lasted at least 30 minutes", churn >= 30*time.Minute, "%s of churn", churn.Round(time.Second))
	by := map[string]map[string]stats{}
	for _, s := range sts {
		if by[s.Index] == nil {
			by[s.Index] = map[string]stats{}
		}
		by[s.Index][s.Twin] = s
	}
	var idxs []string
	for i := range by {
		idxs = append(idxs, i)
	}
	sort.Strings(idxs)
	for _, i := range idxs {
		out = append(out, indexCriteria(i, by[i][tended], by[i][untended], info.ConstantRows[i])...)
	}
	var bad []string
	quietRepairs := 0
	for _, r := range repairs {
		if failedRepair(r.State) {
			bad = append(bad, fmt.Sprintf("#%d %s %s", r.ID, r.Index, r.State))
		}
		if r.Created.Before(info.ChurnStart) {
			quietRepairs++
		}
	}
	add("0 failed or rolled-back repairs", len(bad) == 0, "%d of %d repairs%s", len(bad), len(repairs), listed(bad))
	add("0 repairs in the quiet period", quietRepairs == 0, "%d", quietRepairs)
	var quietAlerts, structural []string
	for _, a := range alerts {
		if a.At.Before(info.ChurnStart) {
			quietAlerts = append(quietAlerts, a.Alert+" "+a.Index)
		}
		if a.Alert == structuralAlert {
			structural = append(structural, a.Index+" at "+a.At.Sub(info.QuietStart).Round(time.Second).String())
		}
	}
	add("0 alerts in the quiet period", len(quietAlerts) == 0, "%d%s", len(quietAlerts), listed(quietAlerts))
	add("0 structural-fault alerts on healthy indexes", len(structural) == 0, "%d%s", len(structural), listed(structural))
	return out
}

// indexCriteria are the checks of one index: decay of the untended twin, recall, latency and
// size of the tended one.
func indexCriteria(index string, t, u stats, constantRows bool) []criterion {
	var out []criterion
	add := func(name string, pass bool, format string, args ...any) {
		out = append(out, criterion{Name: index + ": " + name, Pass: pass, Detail: fmt.Sprintf(format, args...)})
	}
	uDrop := u.AsBuilt - u.Mean
	uGrowth := ratio(u.SizeMax, u.SizeBuilt)
	decayed := uDrop >= 0.01 || u.AsBuilt-u.Final >= 0.01 || constantRows && uGrowth >= 1.5
	add("untended twin decays measurably (recall -0.01 or, rows constant, size 1.5x)", decayed,
		"as-built %.3f, mean %.3f, final %.3f, max size %.2fx as-built, max dead rows %d",
		u.AsBuilt, u.Mean, u.Final, uGrowth, u.MaxDead)
	add("tended mean recall >= as-built - 0.01", t.Mean >= t.AsBuilt-0.01, "mean %.3f, as-built %.3f", t.Mean, t.AsBuilt)
	add("tended final recall >= as-built - 0.01", t.Final >= t.AsBuilt-0.01, "final %.3f, as-built %.3f", t.Final, t.AsBuilt)
	add("tended median p99 <= 1.2x untended", t.MedianP99 <= 1.2*u.MedianP99, "%s vs %s (%.2fx)",
		figure.Value("_seconds", t.MedianP99), figure.Value("_seconds", u.MedianP99), t.MedianP99/u.MedianP99)
	if constantRows {
		add("tended max size <= 1.3x as-built", ratio(t.SizeMax, t.SizeBuilt) <= 1.3, "max %s = %.2fx of %s (final %.2fx)",
			figure.Value("_bytes", float64(t.SizeMax)), ratio(t.SizeMax, t.SizeBuilt), figure.Value("_bytes", float64(t.SizeBuilt)), ratio(t.SizeFinal, t.SizeBuilt))
	}
	return out
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

func listed(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	if len(xs) > 8 {
		xs = append(slices.Clone(xs[:8]), fmt.Sprintf("and %d more", len(xs)-8))
	}
	return ": " + strings.Join(xs, ", ")
}

// writeTable writes the summary as a Markdown table.
func writeTable(w io.Writer, sts []stats) {
	fmt.Fprintln(w, "| index | twin | recall as-built | mean | final | min | short results | app p50 (median) | app p99 (median) | size as-built | final | max | max dead rows | repairs | alerts |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range sts {
		fmt.Fprintf(w, "| %s | %s | %.3f | %.3f | %.3f | %.3f | %d/%d probes, %d/%d filtered | %s | %s | %s | %s (%.2fx) | %s (%.2fx) | %d | %s | %s |\n",
			s.Index, s.Twin, s.AsBuilt, s.Mean, s.Final, s.Min, s.Short, s.Probes, s.FiltShort, s.Filtered,
			figure.Value("_seconds", s.MedianP50), figure.Value("_seconds", s.MedianP99),
			figure.Value("_bytes", float64(s.SizeBuilt)), figure.Value("_bytes", float64(s.SizeFinal)), ratio(s.SizeFinal, s.SizeBuilt),
			figure.Value("_bytes", float64(s.SizeMax)), ratio(s.SizeMax, s.SizeBuilt), s.MaxDead, counts(s.Repairs), counts(s.Alerts))
	}
}

func counts(m map[string]int) string {
	if len(m) == 0 {
		return "—"
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
	}
	return strings.Join(parts, ", ")
}

// writeCriteria writes each criterion as a line: pass or FAIL, name, numbers.
func writeCriteria(w io.Writer, cs []criterion) (failed int) {
	for _, c := range cs {
		mark := "pass"
		if !c.Pass {
			mark, failed = "FAIL", failed+1
		}
		fmt.Fprintf(w, "- **%s** %s: %s\n", mark, c.Name, c.Detail)
	}
	return failed
}

// writeCSV writes the samples, one row each.
func writeCSV(w io.Writer, samples []sample) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"time", "elapsed_seconds", "phase", "twin", "index", "recall_at_10", "probe_short", "probe_queries", "search_setting",
		"app_queries", "app_errors", "app_p50_seconds", "app_p99_seconds", "filtered_queries", "filtered_short",
		"index_size_bytes", "live_tuples", "dead_tuples", "autovacuum_count", "vacuum_running"})
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }
	for _, s := range samples {
		_ = cw.Write([]string{s.At.UTC().Format(time.RFC3339), f(s.Elapsed.Seconds()), s.Phase, s.Twin, s.Index, f(s.Recall),
			strconv.Itoa(s.Short), strconv.Itoa(s.Probes), s.Setting, strconv.Itoa(s.AppN), strconv.Itoa(s.AppErrors), f(s.P50), f(s.P99),
			strconv.Itoa(s.Filtered), strconv.Itoa(s.FiltShort), strconv.FormatInt(s.Size, 10), strconv.FormatInt(s.Live, 10),
			strconv.FormatInt(s.Dead, 10), strconv.FormatInt(s.Autovac, 10), strconv.FormatBool(s.Vacuuming)})
	}
	cw.Flush()
	return cw.Error()
}
