package strategy

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/vectorheal/vectorheal/internal/pgvector"
)

// This file is the cost model of a repair, as pure logic: which of the repairs that heal an
// index costs the least on it, given its size, its dead entries, the pgvector installed and
// what earlier runs on it took. It knows nothing of runbooks, parameters or the engine; the
// strategies and the engine ask it.

// Need is what a repair must achieve; it decides which repairs heal.
type Need string

const (
	// NeedDeadEntries: remove the entries of deleted rows from the index. VACUUM does it, and
	// so does a rebuild (which leaves them out) followed by VACUUM of the heap.
	NeedDeadEntries Need = "dead_entries"
	// NeedSpace: give back the space of deleted entries. VACUUM keeps it for reuse (HNSW
	// keeps deleted elements, IVFFlat free tuple space), so only a rebuild shrinks the index.
	NeedSpace Need = "space"
	// NeedCenters: new IVFFlat centers for today's data. Only a retrain moves them.
	NeedCenters Need = "centers"
)

// Path is one way to repair an index, named as the reason and the impact show it.
type Path string

const (
	PathVacuum        Path = "vacuum"
	PathReindexVacuum Path = "reindex+vacuum" // REINDEX INDEX CONCURRENTLY, then VACUUM
	PathRetrainVacuum Path = "retrain+vacuum" // IVFFlat rebuilt with new centers, then VACUUM
)

// CostRates are the model's rates, in seconds per byte of index.
type CostRates struct {
	// VacuumScan is VACUUM's pass over the heap and the index pages, per byte of index.
	VacuumScan float64
	// HNSWRepair is HNSW VACUUM's repair of one live element that lost a neighbour (a new
	// neighbour search, single-threaded), per byte of element.
	HNSWRepair float64
	// HNSWBuild is REINDEX INDEX CONCURRENTLY of an HNSW index, per byte of the new index.
	HNSWBuild float64
	// IVFFlatVacuum is VACUUM of a table with an IVFFlat index, per byte of index: a pass over
	// the lists, nothing to repair.
	IVFFlatVacuum float64
	// IVFFlatBuild is REINDEX INDEX CONCURRENTLY of an IVFFlat index (sampling, k-means, one
	// pass assigning rows to lists), per byte of the new index.
	IVFFlatBuild float64
}

// The measurements the default rates come from. HNSW: 200k × 128-d, default m = 16, 20 % of
// rows deleted, PostgreSQL 15, pgvector 0.8.0, 2 cores (see the "pgvector in production"
// facts of the design). IVFFlat: 200k × 128-d uniform random, lists = 200, same server:
// CREATE INDEX 3.25 s (105 MiB); VACUUM with 20 % deleted 0.57 s; with 40 % deleted REINDEX
// INDEX CONCURRENTLY 2.24 s (63 MiB) then VACUUM 0.21 s.
const (
	calHNSWElements       = 200_000
	calHNSWDeadShare      = 0.2
	calHNSWM              = 16
	calHNSWBytes          = 166 << 20
	calHNSWRebuiltBytes   = 133 << 20
	calHNSWVacuumSecs     = 449.6
	calHNSWReindexSecs    = 29.1
	calHNSWAfterVacSecs   = 0.3
	calIVFBytes           = 110_116_864
	calIVFVacuumSecs      = 0.57
	calIVFRebuiltBytes    = 66_404_352
	calIVFReindexSecs     = 2.24
	defaultHNSWM          = 16
	historyRunsConsidered = 5
)

// DefaultRates are rates calibrated on the measurements above: the model reproduces them.
// They describe one server; history of the index itself replaces them when there is some.
func DefaultRates() CostRates {
	scan := calHNSWAfterVacSecs / calHNSWRebuiltBytes
	perElement := float64(calHNSWBytes) / calHNSWElements
	repaired := repairedElements(calHNSWElements, calHNSWDeadShare, calHNSWM)
	return CostRates{
		VacuumScan:    scan,
		HNSWRepair:    (calHNSWVacuumSecs - scan*calHNSWBytes) / (repaired * perElement),
		HNSWBuild:     calHNSWReindexSecs / calHNSWRebuiltBytes,
		IVFFlatVacuum: calIVFVacuumSecs / calIVFBytes,
		IVFFlatBuild:  calIVFReindexSecs / calIVFRebuiltBytes,
	}
}

// repairedElements is how many live HNSW elements VACUUM repairs: each one with at least one
// deleted neighbour among its 2m on layer 0, about 1 - (1 - dead)^(2m) of them when deletes are
// spread over the graph. That is why a few percent deleted already makes VACUUM touch most of
// the graph (5 % deleted, m = 16: 81 % of elements).
func repairedElements(elements int64, dead float64, m int) float64 {
	live := float64(elements) * (1 - dead)
	return live * (1 - math.Pow(1-dead, float64(2*m)))
}

// PastRun is an earlier run of a repair on this index, from history.
type PastRun struct {
	Seconds   float64 // how long it took
	SizeBytes int64   // size of the index when it started
	Elements  int64   // entries of the index then; 0: unknown, the index's density now is used
	DeadShare float64 // share of entries whose rows were deleted then
}

// CostHistory holds the earlier runs of this index, most recent first.
type CostHistory struct {
	Vacuum  []PastRun // VACUUMs that had dead entries to remove
	Rebuild []PastRun // REINDEX INDEX CONCURRENTLY (or retrain) steps
}

// CostInput is what the model knows of one index.
type CostInput struct {
	Method    string  // "hnsw" or "ivfflat"
	SizeBytes int64   // size of the index now
	Elements  int64   // its entries (HNSW elements, IVFFlat tuples), live and dead
	DeadShare float64 // share of Elements whose rows are deleted, 0..1
	M         int     // HNSW m; 0 means pgvector's default, 16
	// PgvectorVersion is pg_extension.extversion of the target; empty or unreadable means
	// unknown, and every gate is treated as closed.
	PgvectorVersion string
	Need            Need
	History         CostHistory
	// RebuildRefused, when set, says why no rebuild may run (e.g. the disk guard refused it).
	RebuildRefused string
	// DuplicateNeighbors is the number of HNSW elements that list one neighbour twice
	// (pgvector_hnsw_duplicate_neighbor_elements): VACUUM leaves them, a rebuild removes them,
	// so while a rebuild may run VACUUM does not count as healing.
	DuplicateNeighbors int64
	// Rates replaces DefaultRates, e.g. with rates measured on the operator's server.
	Rates *CostRates
}

// Estimate is the model's view of one path.
type Estimate struct {
	Path     Path          `json:"path"`
	Duration time.Duration `json:"duration"`
	// FromHistory is how many earlier runs of this index scaled the estimate (0: default rates).
	FromHistory int    `json:"from_history"`
	Heals       bool   `json:"heals"`             // whether the path achieves the need
	Refused     string `json:"refused,omitempty"` // why the path may not run (a version gate, the disk guard); empty if it may
}

// Choice is the path chosen and why.
type Choice struct {
	Path      Path
	Estimates []Estimate // every path considered, in a fixed order
	// Reason says in one line what was compared and what closed a path, for the repair's
	// impact and `vectorheal runbook test`.
	Reason string
}

// Chosen returns the estimate of the chosen path.
func (c Choice) Chosen() Estimate {
	for _, e := range c.Estimates {
		if e.Path == c.Path {
			return e
		}
	}
	return Estimate{}
}

// ErrNoRepair is returned (wrapped) when no path that heals may run.
var ErrNoRepair = errors.New("no repair that heals may run")

// ChooseRepair estimates each path that could repair the index and chooses the cheapest one
// that heals and may run; on a tie VACUUM wins (no extra disk, no new index to validate).
func ChooseRepair(in CostInput) (Choice, error) {
	if err := in.check(); err != nil {
		return Choice{}, err
	}
	rates := DefaultRates()
	if in.Rates != nil {
		rates = *in.Rates
	}
	m := in.M
	if m <= 0 {
		m = defaultHNSWM
	}
	rebuild := PathReindexVacuum
	if in.Method == "ivfflat" {
		rebuild = PathRetrainVacuum
	}
	model := func(p Path, size, elements int64, dead float64) float64 {
		return modelSeconds(rates, in.Method, p, size, elements, dead, m)
	}
	var ests []Estimate
	for _, p := range []Path{PathVacuum, rebuild} {
		secs := model(p, in.SizeBytes, in.Elements, in.DeadShare)
		runs := in.History.Vacuum
		if p != PathVacuum {
			runs = in.History.Rebuild
		}
		factor, n := historyFactor(runs, in, func(r PastRun, elements int64) float64 {
			return model(p, r.SizeBytes, elements, r.DeadShare)
		})
		est := Estimate{Path: p, Duration: seconds(secs * factor), FromHistory: n,
			Heals: p != PathVacuum || in.Need == NeedDeadEntries}
		if p == PathVacuum && in.Method == "hnsw" {
			est.Refused = hnswVacuumGate(in.PgvectorVersion)
			est.Heals = est.Heals && (in.DuplicateNeighbors == 0 || in.RebuildRefused != "")
		}
		if p != PathVacuum {
			est.Refused = in.RebuildRefused
		}
		ests = append(ests, est)
	}
	c := Choice{Estimates: ests}
	best := -1
	for i, e := range ests {
		if e.Heals && e.Refused == "" && (best < 0 || e.Duration < ests[best].Duration) {
			best = i
		}
	}
	c.Reason = reason(in, ests, best)
	if best < 0 {
		return c, fmt.Errorf("%s index (%s): %w: %s", in.Method, sizeText(in), ErrNoRepair, c.Reason)
	}
	c.Path = ests[best].Path
	return c, nil
}

func (in CostInput) check() error {
	switch {
	case in.Method != "hnsw" && in.Method != "ivfflat":
		return fmt.Errorf("cost model: method %q: want hnsw or ivfflat", in.Method)
	case in.SizeBytes < 0 || in.Elements < 0:
		return fmt.Errorf("cost model: size %d bytes, %d elements: must not be negative", in.SizeBytes, in.Elements)
	case !(in.DeadShare >= 0 && in.DeadShare <= 1):
		return fmt.Errorf("cost model: dead share %v: want 0 to 1", in.DeadShare)
	case in.Need != NeedDeadEntries && in.Need != NeedSpace && in.Need != NeedCenters:
		return fmt.Errorf("cost model: need %q: want %s, %s or %s", in.Need, NeedDeadEntries, NeedSpace, NeedCenters)
	case in.Need == NeedCenters && in.Method != "ivfflat":
		return fmt.Errorf("cost model: need %s applies to ivfflat indexes, not %s", NeedCenters, in.Method)
	}
	return nil
}

// modelSeconds is the default-rate duration of path p on an index of size bytes and elements
// entries, dead of them deleted.
func modelSeconds(r CostRates, method string, p Path, size, elements int64, dead float64, m int) float64 {
	rebuilt := float64(size) * (1 - dead) // a rebuild leaves the dead entries out
	switch {
	case method == "hnsw" && p == PathVacuum:
		perElement := 0.0
		if elements > 0 {
			perElement = float64(size) / float64(elements)
		}
		return float64(size)*r.VacuumScan + repairedElements(elements, dead, m)*perElement*r.HNSWRepair
	case method == "hnsw":
		return rebuilt*r.HNSWBuild + rebuilt*r.VacuumScan
	case p == PathVacuum:
		return float64(size) * r.IVFFlatVacuum
	default:
		return rebuilt*r.IVFFlatBuild + rebuilt*r.IVFFlatVacuum
	}
}

// historyFactor is how much slower (or faster) than the model this index's earlier runs were:
// the median of observed over modelled seconds of the last few usable runs, and how many runs
// that is; 1 and 0 without history. Scaling the model, rather than averaging durations, keeps
// the history valid as the index grows and its dead share changes.
func historyFactor(runs []PastRun, in CostInput, model func(PastRun, int64) float64) (float64, int) {
	var fs []float64
	for _, r := range runs {
		if len(fs) == historyRunsConsidered {
			break
		}
		if r.Seconds <= 0 || r.SizeBytes <= 0 || r.DeadShare < 0 || r.DeadShare > 1 {
			continue
		}
		elements := r.Elements
		if elements <= 0 && in.SizeBytes > 0 {
			elements = int64(float64(r.SizeBytes) * float64(in.Elements) / float64(in.SizeBytes))
		}
		if want := model(r, elements); want > 0 {
			fs = append(fs, r.Seconds/want)
		}
	}
	if len(fs) == 0 {
		return 1, 0
	}
	slices.Sort(fs)
	mid := len(fs) / 2
	if len(fs)%2 == 0 {
		return (fs[mid-1] + fs[mid]) / 2, len(fs)
	}
	return fs[mid], len(fs)
}

// hnswVacuumGate says why HNSW VACUUM is refused as the repair on version, or "" when it may
// run. An unknown version is treated as affected: the gate protects against corruption.
func hnswVacuumGate(version string) string {
	v, err := pgvector.ParseVersion(version)
	if err != nil {
		if strings.TrimSpace(version) == "" {
			return "pgvector version unknown: HNSW vacuum gated as on an affected version"
		}
		return fmt.Sprintf("pgvector version %q not understood: HNSW vacuum gated as on an affected version", version)
	}
	return pgvector.GateReason(v, pgvector.GateHNSWVacuum)
}

// reason writes the comparison, e.g. "reindex+vacuum est. 29s vs vacuum est. 450s (dead
// share 20%, 166 MB); vacuum refused: pgvector 0.8.0 < 0.8.4: HNSW vacuum gated: …".
func reason(in CostInput, ests []Estimate, best int) string {
	order := make([]Estimate, 0, len(ests))
	if best >= 0 {
		order = append(order, ests[best])
	}
	for i, e := range ests {
		if i != best {
			order = append(order, e)
		}
	}
	parts := make([]string, len(order))
	for i, e := range order {
		parts[i] = string(e.Path) + " est. " + durationText(e.Duration)
		if e.FromHistory > 0 {
			parts[i] += fmt.Sprintf(" (from %d earlier runs)", e.FromHistory)
		}
	}
	var b strings.Builder
	b.WriteString(strings.Join(parts, " vs "))
	fmt.Fprintf(&b, " (%s)", sizeText(in))
	if best < 0 {
		b.WriteString("; none may run")
	}
	for _, e := range order {
		switch {
		case e.Refused != "":
			fmt.Fprintf(&b, "; %s refused: %s", e.Path, e.Refused)
		case !e.Heals && e.Path == PathVacuum && in.DuplicateNeighbors > 0:
			fmt.Fprintf(&b, "; %s leaves the %d elements that list a neighbour twice", e.Path, in.DuplicateNeighbors)
		case !e.Heals:
			fmt.Fprintf(&b, "; %s does not heal %s", e.Path, needText(in.Need))
		}
	}
	return b.String()
}

func sizeText(in CostInput) string {
	return fmt.Sprintf("dead share %.3g%%, %d MB", in.DeadShare*100, in.SizeBytes>>20)
}

func needText(n Need) string {
	switch n {
	case NeedSpace:
		return "space (VACUUM keeps it for reuse)"
	case NeedCenters:
		return "stale centers (only a retrain moves them)"
	}
	return string(n)
}

// durationText writes seconds below 1000 s, as operators compare them, and larger durations
// to the minute.
func durationText(d time.Duration) string {
	if d < 1000*time.Second {
		return fmt.Sprintf("%.0fs", d.Seconds())
	}
	return d.Round(time.Minute).String()
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second))
}
