// Package ivfflat reads the pages of a pgvector IVFFlat index and measures its lists: the
// centers, the number of entries per list, their balance and how well the centers separate
// their members.
//
// Definitions:
//
//   - ListSizes[i]: index tuples on the page chain of list i (the order of the list pages).
//     Entries is their sum; EmptyLists counts lists of size 0.
//   - ListSizeCV: population standard deviation of ListSizes over their mean (0 when the
//     index holds no entry). 0 is perfect balance; skewed inserts raise it.
//   - LargestListRatio: the largest of ListSizes over their mean (0 when the index holds no
//     entry). 1 is perfect balance; a query whose probes include that list reads this many
//     times the average list, so it bounds the tail of the search's work where the CV
//     describes the spread.
//   - CentroidQuality: over a uniform sample (reservoir, at most QualitySample entries, fixed
//     seed), the mean distance of an entry to the center of its own list divided by the mean
//     distance to the nearest other center. Lower is better; near 1 the centers no longer
//     separate the data. Distances are those of Options.Distance, except that "ip" (negative
//     inner product, not a metric) uses L2. NaN when there is no sample or fewer than two
//     lists, or the values are not vector, halfvec or bit.
//
// Values are decoded for vector (float32s), halfvec (float16s) and bit (bits, most
// significant first, read as 0 and 1), whose centers pgvector stores as bits too: k-means
// runs on 0/1 floats and each center coordinate is rounded to a bit.
//
// A corrupt page or tuple is counted in Report.Faults and the analysis goes on.
package ivfflat

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/vectorheal/vectorheal/exporter/pagescan"
)

// On-disk constants of pgvector 0.8 (src/ivfflat.h).
const (
	PageID      = 0xFF84
	metaMagic   = 0x014FF1A7
	metaVersion = 1
)

// Fault kinds counted in Report.Faults.
const (
	FaultBadPage  = "bad_page"  // page header, special area or page id invalid
	FaultBadMeta  = "bad_meta"  // metapage magic or version invalid
	FaultBadList  = "bad_list"  // list tuple too short or its center undecodable
	FaultBadEntry = "bad_entry" // entry tuple too short or its value undecodable
	FaultChain    = "chain"     // a chain loops, leaves the relation, or a page is on no chain
)

// Options tune Analyze.
type Options struct {
	// Distance is the opclass's distance: "l2", "cosine", "ip", "l1" or "hamming" (see
	// DistanceKind). Empty means "l2".
	Distance string
	// QualitySample bounds the number of entries sampled for CentroidQuality; 0 means 1000.
	QualitySample int
	// Batch is the number of pages read per Reader.Read call; 0 means pagescan.DefaultBatch.
	Batch int
	// Fence is the WAL position read before the scan's first page (pagescan.ReadFence): a
	// chain fault on a page written after it is counted in Report.Unconfirmed, not in Faults.
	// Nil: the pages are one state, taken as read.
	Fence *pagescan.Fence
}

// Report is the structure of one IVFFlat index.
type Report struct {
	Dimensions, Lists int
	Pages             uint32
	ListSizes         []int64
	Entries           int64
	EmptyLists        int
	ListSizeCV        float64
	LargestListRatio  float64
	CentroidQuality   float64
	Centers           [][]float32 // for drift; bits as 0 and 1; nil when the values are not vector, halfvec or bit
	// Faults counts structural faults by kind; a fault on a page written during the scan is
	// counted in Unconfirmed instead.
	Faults map[string]int64
	// Unconfirmed counts chain faults on pages written while the scan ran: an insert fills
	// a new page and links it from its list's last page in one record, so a scan that read
	// the last page before the link sees the new page on no list.
	Unconfirmed int64
	// PagesChanged is the number of pages whose LSN was past Options.Fence when read.
	PagesChanged int64
}

// DistanceKind maps a pgvector opclass to the distance it orders by ("l2", "cosine", "ip",
// "l1", "hamming", "jaccard"); unknown opclasses give "l2".
func DistanceKind(opclass string) string {
	switch opclass {
	case "bit_hamming_ops":
		return "hamming"
	case "bit_jaccard_ops":
		return "jaccard"
	case "vector_cosine_ops", "halfvec_cosine_ops", "sparsevec_cosine_ops":
		return "cosine"
	case "vector_ip_ops", "halfvec_ip_ops", "sparsevec_ip_ops":
		return "ip"
	case "vector_l1_ops", "halfvec_l1_ops", "sparsevec_l1_ops":
		return "l1"
	}
	return "l2"
}

// Distance returns the distance of kind between a and b as pgvector orders it: "l2"
// Euclidean, "cosine" 1 - cosine similarity, "ip" the negative inner product, "l1" Manhattan;
// on bits given as 0 and 1, "hamming" the number of differing bits and "jaccard" 1 - |a∧b| /
// |a∨b| (1 when no bit is set in both, as pgvector has it). Vectors of different lengths are
// compared on their common prefix.
func Distance(kind string, a, b []float32) float64 {
	n := min(len(a), len(b))
	switch kind {
	case "hamming":
		var d float64
		for i := range n {
			if (a[i] != 0) != (b[i] != 0) {
				d++
			}
		}
		return d
	case "jaccard":
		var and, or float64
		for i := range n {
			x, y := a[i] != 0, b[i] != 0
			if x && y {
				and++
			}
			if x || y {
				or++
			}
		}
		if and == 0 {
			return 1
		}
		return 1 - and/or
	case "cosine":
		var dot, na, nb float64
		for i := range n {
			dot += float64(a[i]) * float64(b[i])
			na += float64(a[i]) * float64(a[i])
			nb += float64(b[i]) * float64(b[i])
		}
		if na == 0 || nb == 0 {
			return math.NaN()
		}
		return 1 - dot/math.Sqrt(na*nb)
	case "ip":
		var dot float64
		for i := range n {
			dot += float64(a[i]) * float64(b[i])
		}
		return -dot
	case "l1":
		var s float64
		for i := range n {
			s += math.Abs(float64(a[i]) - float64(b[i]))
		}
		return s
	}
	var s float64
	for i := range n {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s)
}

// NearestCenter returns the index of the center nearest to v by kind and its distance, or
// -1 when there are no centers.
func NearestCenter(centers [][]float32, kind string, v []float32) (int, float64) {
	best, bestD := -1, math.Inf(1)
	for i, c := range centers {
		if d := Distance(kind, v, c); d < bestD {
			best, bestD = i, d
		}
	}
	return best, bestD
}

// Meta is the IVFFlat metapage.
type Meta struct {
	Dimensions int
	Lists      int
}

// ParseMeta decodes block 0 of an IVFFlat index.
func ParseMeta(p []byte) (Meta, error) {
	c, err := pagescan.MetapageContent(p, PageID, metaMagic, metaVersion)
	if err != nil {
		return Meta{}, err
	}
	return Meta{Dimensions: int(binary.LittleEndian.Uint16(c[8:])), Lists: int(binary.LittleEndian.Uint16(c[10:]))}, nil
}

// List is one list tuple.
type List struct {
	StartPage, InsertPage uint32
	Center                []float32 // bits as 0 and 1; nil when the value is not vector, halfvec or bit
}

// ParseList decodes a list tuple; dim is the metapage's dimensions.
func ParseList(b []byte, dim int) (List, error) {
	if len(b) < 12 {
		return List{}, fmt.Errorf("%w: list tuple of %d bytes", pagescan.ErrBadPage, len(b))
	}
	l := List{StartPage: binary.LittleEndian.Uint32(b[0:]), InsertPage: binary.LittleEndian.Uint32(b[4:])}
	v, err := decodeValue(b[8:], dim)
	if err != nil {
		return l, err
	}
	l.Center = v
	return l, nil
}

// EntryValue decodes the vector of an entry (an ordinary index tuple); nil with no error
// when the value is not vector, halfvec or bit.
func EntryValue(b []byte, dim int) ([]float32, error) {
	if len(b) < 9 {
		return nil, fmt.Errorf("%w: entry of %d bytes", pagescan.ErrBadPage, len(b))
	}
	size := int(binary.LittleEndian.Uint16(b[6:]) & 0x1FFF)
	if size > len(b) || size < 9 {
		return nil, fmt.Errorf("%w: entry size %d in %d bytes", pagescan.ErrBadPage, size, len(b))
	}
	return decodeValue(b[8:size], dim)
}

// decodeValue decodes a varlena vector, halfvec or bit of dim dimensions from the start of b.
// It returns nil, nil for other types of a plausible size.
//
// After the varlena header, vector and halfvec (src/vector.h, src/halfvec.h) hold dim as an
// int16, an unused int16, then dim float32s or float16s; bit (PostgreSQL's VarBit) holds
// its length in bits as an int32, then the bits, most significant first, padded with zeros
// to a whole byte. The lengths differ for every dim > 0, so the payload size says which
// it is.
func decodeValue(b []byte, dim int) ([]float32, error) {
	if len(b) < 1 {
		return nil, fmt.Errorf("%w: empty value", pagescan.ErrBadPage)
	}
	var data []byte
	if b[0]&1 == 1 { // 1-byte header: short varlena
		n := int(b[0] >> 1)
		if n < 1 || n > len(b) {
			return nil, fmt.Errorf("%w: short varlena of %d bytes in %d", pagescan.ErrBadPage, n, len(b))
		}
		data = b[1:n]
	} else if b[0]&3 != 0 {
		return nil, nil // compressed inline or a TOAST pointer: not decoded
	} else {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: varlena header cut", pagescan.ErrBadPage)
		}
		n := int(binary.LittleEndian.Uint32(b) >> 2)
		if n < 4 || n > len(b) {
			return nil, fmt.Errorf("%w: varlena of %d bytes in %d", pagescan.ErrBadPage, n, len(b))
		}
		data = b[4:n]
	}
	if len(data) < 4 {
		return nil, fmt.Errorf("%w: value of %d bytes", pagescan.ErrBadPage, len(data))
	}
	d := int(int16(binary.LittleEndian.Uint16(data)))
	body := data[4:]
	switch {
	case int(binary.LittleEndian.Uint32(data)) == dim && len(body) == (dim+7)/8:
		v := make([]float32, dim)
		for i := range v {
			v[i] = float32(body[i/8] >> (7 - i%8) & 1)
		}
		return v, nil
	case d == dim && len(body) == 4*dim:
		v := make([]float32, dim)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
		}
		return v, nil
	case d == dim && len(body) == 2*dim:
		v := make([]float32, dim)
		for i := range v {
			v[i] = halfToFloat(binary.LittleEndian.Uint16(body[2*i:]))
		}
		return v, nil
	}
	return nil, nil
}

// halfToFloat converts an IEEE 754 binary16 to float32.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1F
	frac := uint32(h) & 0x3FF
	switch {
	case exp == 0x1F: // inf, NaN
		return math.Float32frombits(sign | 0xFF<<23 | frac<<13)
	case exp == 0:
		if frac == 0 {
			return math.Float32frombits(sign)
		}
		f := float32(frac) / 1024 / 16384 // subnormal: frac × 2^-24
		if sign != 0 {
			return -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

type sample struct {
	block uint32
	v     []float32
}

type analyzer struct {
	opts     Options
	meta     Meta
	nblocks  uint32
	rep      *Report
	next     []uint32
	counts   []uint32 // entries per page
	isList   []bool   // list page
	changed  []bool   // written while the scan ran
	nextList uint32   // next list page expected
	lists    []List
	samples  []sample
	seen     int64 // entries offered to the reservoir
	rng      *rand.Rand
}

// Analyze streams the pages of an IVFFlat index from r and returns its structure.
func Analyze(ctx context.Context, r pagescan.Reader, opts Options) (*Report, error) {
	rep := &Report{Faults: map[string]int64{}, CentroidQuality: math.NaN()}
	n, err := r.Blocks(ctx)
	if err != nil {
		return nil, err
	}
	rep.Pages = n
	if n == 0 {
		return nil, fmt.Errorf("ivfflat: relation has no pages")
	}
	if opts.Distance == "" {
		opts.Distance = "l2"
	}
	if opts.QualitySample <= 0 {
		opts.QualitySample = 1000
	}
	if opts.Batch <= 0 {
		opts.Batch = pagescan.DefaultBatch
	}
	first, err := r.Read(ctx, 0, 1)
	if err != nil {
		return nil, err
	}
	meta, err := ParseMeta(first[0])
	if err != nil {
		if errors.Is(err, pagescan.ErrBadPage) {
			rep.Faults[FaultBadMeta]++
			return rep, nil
		}
		return nil, err
	}
	rep.Dimensions, rep.Lists = meta.Dimensions, meta.Lists
	a := &analyzer{
		opts: opts, meta: meta, nblocks: n, rep: rep,
		next: make([]uint32, n), counts: make([]uint32, n), isList: make([]bool, n), changed: make([]bool, n),
		nextList: 1, rng: rand.New(rand.NewPCG(1, 2)),
	}
	a.next[0] = pagescan.InvalidBlock
	for start := uint32(1); start < n; {
		cnt := min(n-start, uint32(opts.Batch))
		pages, err := r.Read(ctx, start, cnt)
		if err != nil {
			return nil, err
		}
		for i, p := range pages {
			a.page(start+uint32(i), p)
		}
		start += cnt
	}
	a.sizes()
	a.quality()
	return rep, nil
}

func (a *analyzer) fault(kind string) { a.rep.Faults[kind]++ }

// chainFault counts a chain fault at block b, unconfirmed when b was written during the scan.
func (a *analyzer) chainFault(b uint32) {
	if b < a.nblocks && a.changed[b] {
		a.rep.Unconfirmed++
		return
	}
	a.fault(FaultChain)
}

func (a *analyzer) page(block uint32, p []byte) {
	a.next[block] = pagescan.InvalidBlock
	if !a.opts.Fence.Holds(p) {
		a.changed[block] = true
		a.rep.PagesChanged++
	}
	if pagescan.IsNew(p) {
		return
	}
	h, sp, err := pagescan.ParseIndexPage(p, PageID)
	if err != nil {
		a.fault(FaultBadPage)
		return
	}
	a.next[block] = sp.NextBlock
	if block == a.nextList {
		a.isList[block] = true
		a.nextList = sp.NextBlock
		for off := 1; off <= pagescan.ItemCount(h); off++ {
			b, err := pagescan.Item(p, h, off)
			if err != nil {
				a.fault(FaultBadList)
				continue
			}
			l, err := ParseList(b, a.meta.Dimensions)
			if err != nil {
				a.fault(FaultBadList)
			}
			a.lists = append(a.lists, l)
		}
		return
	}
	for off := 1; off <= pagescan.ItemCount(h); off++ {
		lp, err := pagescan.LinePointer(p, h, off)
		if err != nil || lp.Flags != pagescan.LPNormal {
			continue
		}
		b, err := pagescan.Item(p, h, off)
		if err != nil || len(b) < 9 {
			a.fault(FaultBadEntry)
			continue
		}
		a.counts[block]++
		a.offer(block, b)
	}
}

// offer puts an entry into the reservoir sample (algorithm R); vectors are decoded only
// when kept.
func (a *analyzer) offer(block uint32, b []byte) {
	a.seen++
	k := a.opts.QualitySample
	slot := len(a.samples)
	if slot >= k {
		j := a.rng.Int64N(a.seen)
		if j >= int64(k) {
			return
		}
		slot = int(j)
	}
	v, err := EntryValue(b, a.meta.Dimensions)
	if err != nil {
		a.fault(FaultBadEntry)
		return
	}
	if v == nil {
		return
	}
	if slot == len(a.samples) {
		a.samples = append(a.samples, sample{block: block, v: v})
	} else {
		a.samples[slot] = sample{block: block, v: v}
	}
}

// sizes walks each list's page chain and sums its entries.
func (a *analyzer) sizes() {
	rep := a.rep
	if len(a.lists) != a.meta.Lists {
		a.fault(FaultBadList)
	}
	owner := make([]int32, a.nblocks)
	for i := range owner {
		owner[i] = -1
	}
	rep.ListSizes = make([]int64, len(a.lists))
	for i, l := range a.lists {
		for b, steps := l.StartPage, uint32(0); b != pagescan.InvalidBlock; b, steps = a.next[b], steps+1 {
			if b >= a.nblocks {
				break // a page added after the scan began
			}
			if b == 0 || a.isList[b] || owner[b] >= 0 || steps > a.nblocks {
				a.chainFault(b)
				break
			}
			owner[b] = int32(i)
			rep.ListSizes[i] += int64(a.counts[b])
		}
		rep.Entries += rep.ListSizes[i]
		if rep.ListSizes[i] == 0 {
			rep.EmptyLists++
		}
	}
	for b := uint32(1); b < a.nblocks; b++ {
		if !a.isList[b] && owner[b] < 0 && a.counts[b] > 0 {
			a.chainFault(b) // entries no list reaches
		}
	}
	if len(rep.ListSizes) > 0 && rep.Entries > 0 {
		mean := float64(rep.Entries) / float64(len(rep.ListSizes))
		var ss float64
		for _, s := range rep.ListSizes {
			d := float64(s) - mean
			ss += d * d
		}
		rep.ListSizeCV = math.Sqrt(ss/float64(len(rep.ListSizes))) / mean
		rep.LargestListRatio = float64(slices.Max(rep.ListSizes)) / mean
	}
	centers := make([][]float32, 0, len(a.lists))
	for _, l := range a.lists {
		if l.Center == nil {
			return
		}
		centers = append(centers, l.Center)
	}
	rep.Centers = centers
	// Keep only samples whose list is known, tagged by list.
	kept := a.samples[:0]
	for _, s := range a.samples {
		if o := owner[s.block]; o >= 0 {
			s.block = uint32(o)
			kept = append(kept, s)
		}
	}
	a.samples = kept
}

// quality computes CentroidQuality from the sample; sample blocks now hold list numbers.
func (a *analyzer) quality() {
	centers := a.rep.Centers
	if len(centers) < 2 || len(a.samples) == 0 {
		return
	}
	kind := a.opts.Distance
	if kind == "ip" {
		kind = "l2"
	}
	var own, other float64
	for _, s := range a.samples {
		mine, nearest := math.NaN(), math.Inf(1)
		for i, c := range centers {
			d := Distance(kind, s.v, c)
			if i == int(s.block) {
				mine = d
			} else if d < nearest {
				nearest = d
			}
		}
		// Zero vectors have no cosine distance; they say nothing about the centers.
		if math.IsNaN(mine) || math.IsNaN(nearest) || math.IsInf(nearest, 0) {
			continue
		}
		own += mine
		other += nearest
	}
	if other > 0 {
		a.rep.CentroidQuality = own / other
	}
}
