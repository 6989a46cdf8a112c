// Package pgvector knows the pgvector releases vectorheal meets: it parses and orders the
// extension's version strings (pg_extension.extversion), holds the known issues of each range
// of releases with their source in pgvector's CHANGELOG, and says which repairs vectorheal gates
// on a given version. Apart from Installed, the one query that reads the version from a
// database (for the exporter and the strategies alike), it is pure logic; acting on a gate is
// the strategies' job.
package pgvector

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a pgvector release: major.minor.patch and an optional pre-release tag.
type Version struct {
	Major, Minor, Patch int
	// Pre is the pre-release tag of a development build ("dev" in "0.8.3-dev"), empty for a
	// release. A pre-release sorts before its release: a build from before 0.8.3 was tagged
	// may not hold 0.8.3's fixes, so it is treated as affected by what 0.8.3 fixed.
	Pre string
}

// V returns the release major.minor.patch.
func V(major, minor, patch int) Version { return Version{Major: major, Minor: minor, Patch: patch} }

// ParseVersion reads a version as pg_extension.extversion, pgvector's tags or its CHANGELOG
// write it: "0.8.0", "0.8" (patch 0), "v0.7.4", "0.8.3-dev", "0.9.0rc1" or "0.8.0+build.1"
// (build metadata is ignored). Surrounding space is ignored; anything else is an error naming
// the string and what is wrong with it.
func ParseVersion(s string) (Version, error) {
	in := s
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "v")
	if s == "" {
		return Version{}, fmt.Errorf("pgvector version %q: empty", in)
	}
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i] // build metadata does not order versions
	}
	// The numeric part ends at the first character that is neither a digit nor a dot.
	end := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, pre := s, ""
	if end >= 0 {
		num, pre = s[:end], strings.TrimPrefix(s[end:], "-")
		if pre == "" || strings.ContainsAny(pre, " \t") {
			return Version{}, fmt.Errorf("pgvector version %q: bad pre-release tag %q", in, s[end:])
		}
	}
	parts := strings.Split(num, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Version{}, fmt.Errorf("pgvector version %q: want major.minor or major.minor.patch", in)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || p == "" || v < 0 {
			return Version{}, fmt.Errorf("pgvector version %q: component %d (%q) is not a number", in, i+1, p)
		}
		n[i] = v
	}
	return Version{Major: n[0], Minor: n[1], Patch: n[2], Pre: pre}, nil
}

// String writes v as pgvector does: "0.8.0", or "0.8.3-dev" for a pre-release.
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	return s
}

// Compare returns -1, 0 or +1 as v is older than, the same as, or newer than w.
func (v Version) Compare(w Version) int {
	for _, d := range [][2]int{{v.Major, w.Major}, {v.Minor, w.Minor}, {v.Patch, w.Patch}} {
		switch {
		case d[0] < d[1]:
			return -1
		case d[0] > d[1]:
			return 1
		}
	}
	switch {
	case v.Pre == w.Pre:
		return 0
	case v.Pre == "": // a release is newer than its pre-releases
		return 1
	case w.Pre == "":
		return -1
	case v.Pre < w.Pre:
		return -1
	}
	return 1
}

// Less reports whether v is older than w.
func (v Version) Less(w Version) bool { return v.Compare(w) < 0 }
