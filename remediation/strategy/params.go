package strategy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// intParam reads an integer parameter within [lo, hi]; def when absent. YAML and JSON hand
// numbers over as int, int64, uint64 or float64, and quoted numbers as strings.
func intParam(p Params, name string, def, lo, hi int) (int, error) {
	v, ok := p[name]
	if !ok || v == nil {
		return def, nil
	}
	var n int
	switch x := v.(type) {
	case int:
		n = x
	case int64:
		n = int(x)
	case int32:
		n = int(x)
	case uint64:
		if x > math.MaxInt32 {
			return 0, fmt.Errorf("parameter %q: %d is out of range [%d, %d]", name, x, lo, hi)
		}
		n = int(x)
	case float64:
		if x != math.Trunc(x) || math.IsInf(x, 0) || math.IsNaN(x) {
			return 0, fmt.Errorf("parameter %q: %v is not a whole number", name, x)
		}
		n = int(x)
	case string:
		i, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return 0, fmt.Errorf("parameter %q: %q is not a whole number", name, x)
		}
		n = i
	default:
		return 0, fmt.Errorf("parameter %q: want a whole number, got %T", name, v)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("parameter %q: %d is out of range [%d, %d]", name, n, lo, hi)
	}
	return n, nil
}

// floatParam reads a number within [lo, hi]; def when absent.
func floatParam(p Params, name string, def, lo, hi float64) (float64, error) {
	v, ok := p[name]
	if !ok || v == nil {
		return def, nil
	}
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case float32:
		f = float64(x)
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case uint64:
		f = float64(x)
	case string:
		g, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, fmt.Errorf("parameter %q: %q is not a number", name, x)
		}
		f = g
	default:
		return 0, fmt.Errorf("parameter %q: want a number, got %T", name, v)
	}
	if math.IsNaN(f) || f < lo || f > hi {
		return 0, fmt.Errorf("parameter %q: %v is out of range [%v, %v]", name, f, lo, hi)
	}
	return f, nil
}

// boolParam reads a boolean; def when absent.
func boolParam(p Params, name string, def bool) (bool, error) {
	v, ok := p[name]
	if !ok || v == nil {
		return def, nil
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		b, err := strconv.ParseBool(x)
		if err != nil {
			return false, fmt.Errorf("parameter %q: %q is not true or false", name, x)
		}
		return b, nil
	}
	return false, fmt.Errorf("parameter %q: want true or false, got %T", name, v)
}

// stringParam reads a string; def when absent.
func stringParam(p Params, name, def string) (string, error) {
	v, ok := p[name]
	if !ok || v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("parameter %q: want a string, got %T", name, v)
	}
	return s, nil
}

// durationParam reads a duration ("90s", "5m") within [lo, hi]; def when absent.
func durationParam(p Params, name string, def, lo, hi time.Duration) (time.Duration, error) {
	v, ok := p[name]
	if !ok || v == nil {
		return def, nil
	}
	var d time.Duration
	switch x := v.(type) {
	case time.Duration:
		d = x
	case string:
		var err error
		d, err = time.ParseDuration(strings.TrimSpace(x))
		if err != nil {
			return 0, fmt.Errorf("parameter %q: %q is not a duration such as 30s or 5m", name, x)
		}
	default:
		return 0, fmt.Errorf("parameter %q: want a duration such as 30s or 5m, got %T", name, v)
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("parameter %q: %s is out of range [%s, %s]", name, d, lo, hi)
	}
	return d, nil
}

// stringsParam reads a list of strings; nil when absent.
func stringsParam(p Params, name string) ([]string, error) {
	v, ok := p[name]
	if !ok || v == nil {
		return nil, nil
	}
	switch x := v.(type) {
	case []string:
		return x, nil
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("parameter %q[%d]: want a string, got %T", name, i, e)
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, fmt.Errorf("parameter %q: want a list of strings, got %T", name, v)
}

// sizeParam reads a byte size written as PostgreSQL writes memory settings ("512MB", "2GB",
// "65536kB") or as a plain number of bytes; def when absent.
func sizeParam(p Params, name string, def, lo, hi int64) (int64, error) {
	v, ok := p[name]
	if !ok || v == nil {
		return def, nil
	}
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case uint64:
		n = int64(x)
	case float64:
		n = int64(x)
	case string:
		b, err := ParseSize(x)
		if err != nil {
			return 0, fmt.Errorf("parameter %q: %w", name, err)
		}
		n = b
	default:
		return 0, fmt.Errorf("parameter %q: want a size such as 512MB, got %T", name, v)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("parameter %q: %d bytes is out of range [%d, %d]", name, n, lo, hi)
	}
	return n, nil
}

// SizeText writes n bytes in the units ParseSize reads, to one decimal (10GB, 1.5MB).
func SizeText(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}} {
		if n >= u.mult {
			return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/float64(u.mult)), ".0") + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// ParseSize reads a size as PostgreSQL writes memory settings: a whole number of B, kB, MB, GB
// or TB (powers of 1024), or of bytes without a unit.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("%q is not a size such as 512MB", s)
			}
			return n * u.mult, nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size such as 512MB", s)
	}
	return n, nil
}
