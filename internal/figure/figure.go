// Package figure writes named figures for people: name=value pairs sorted by name, each value
// in the unit its name states. Figures are named the Prometheus way (pgvector_index_size_bytes,
// pgvector_recall_ratio, a ":kind" after the name for one series of a family), so the unit is
// the name's suffix: _seconds as a duration, _bytes in IEC units, _ratio as a percentage;
// other figures are counts or plain numbers. Machine-readable output (JSON) keeps the exact
// values; this is for text meant to be read.
package figure

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Unit is what a figure's name says it measures.
type Unit int

// The units a figure's name can state.
const (
	None Unit = iota
	Seconds
	Bytes
	Ratio
)

// UnitOf reads the unit from a figure's name; a ":kind" suffix is not part of the name.
func UnitOf(name string) Unit {
	base, _, _ := strings.Cut(name, ":")
	switch {
	case strings.HasSuffix(base, "_seconds"):
		return Seconds
	case strings.HasSuffix(base, "_bytes"):
		return Bytes
	case strings.HasSuffix(base, "_ratio"):
		return Ratio
	}
	return None
}

// Value formats v in the unit name states: "1.5s", "12.3ms", "2.4MiB", "512B", "94.1%", "1200".
func Value(name string, v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	switch UnitOf(name) {
	case Seconds:
		return seconds(v)
	case Bytes:
		return byteSize(v)
	case Ratio:
		return number(v*100) + "%"
	}
	return number(v)
}

// Pairs formats m as name=value pairs separated by spaces, sorted by name; "none" when empty.
func Pairs(m map[string]float64) string {
	if len(m) == 0 {
		return "none"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(Value(k, m[k]))
	}
	return b.String()
}

// number writes whole numbers exactly and others to three significant digits (whole above 100).
func number(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	if math.Abs(v) >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func seconds(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0s"
	case a >= 60:
		return time.Duration(v * float64(time.Second)).Round(time.Second).String()
	case a >= 1:
		return number(v) + "s"
	case a >= 1e-3:
		return number(v*1e3) + "ms"
	}
	return number(v*1e6) + "µs"
}

func byteSize(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for math.Abs(v) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return number(v) + units[i]
}
