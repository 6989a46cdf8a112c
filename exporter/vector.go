package exporter

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

// distanceOf returns the distance operator (the catalog's, schema-qualified: see
// catalog.Index.Operator) and the distance kind (as the ivfflat package names them) of an
// index's operator class: vector_*, halfvec_* and sparsevec_* with l2, cosine, inner product
// and l1, bit_* with hamming and jaccard.
func distanceOf(ix catalog.Index) (op, kind string, err error) {
	if kind, err = distanceKind(ix); err != nil {
		return "", "", err
	}
	op, err = ix.OrderOperator()
	return op, kind, err
}

// distanceKind returns the distance kind of an index's operator class.
func distanceKind(ix catalog.Index) (string, error) {
	oc := ix.Opclass
	switch {
	case strings.HasSuffix(oc, "_l2_ops"):
		return "l2", nil
	case strings.HasSuffix(oc, "_cosine_ops"):
		return "cosine", nil
	case strings.HasSuffix(oc, "_ip_ops"):
		return "ip", nil
	case strings.HasSuffix(oc, "_l1_ops"):
		return "l1", nil
	case strings.HasSuffix(oc, "_hamming_ops"):
		return "hamming", nil
	case strings.HasSuffix(oc, "_jaccard_ops"):
		return "jaccard", nil
	}
	return "", fmt.Errorf("%s: operator class %s is not supported (l2, cosine, ip, l1, hamming and jaccard are)", ix, oc)
}

// denseVector reports whether the indexed values print as "[x,y,...]" (vector and
// halfvec), which the drift check parses.
func denseVector(ix catalog.Index) bool {
	return strings.HasPrefix(ix.Opclass, "vector_") || strings.HasPrefix(ix.Opclass, "halfvec_")
}

// parseVector parses pgvector's text form "[1,2.5,-3]".
func parseVector(s string) ([]float32, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return nil, fmt.Errorf("parse vector %.40q: not in [..] form", s)
	}
	body := s[1 : len(s)-1]
	if body == "" {
		return nil, nil
	}
	parts := strings.Split(body, ",")
	out := make([]float32, len(parts))
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil {
			return nil, fmt.Errorf("parse vector element %d: %w", i, err)
		}
		out[i] = float32(f)
	}
	return out, nil
}
