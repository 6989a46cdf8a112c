package strategy

import (
	"fmt"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

// replaceable returns an error when ix cannot be replaced by a new index built beside it and
// swapped in (ivfflat_retrain, hnsw_rebuild). The index of a partition is attached to its
// partitioned table's index: PostgreSQL refuses to drop it while attached, has no way to
// detach it, and attaches no second index of the partition in its place. REINDEX INDEX
// CONCURRENTLY rebuilds it in place and keeps it attached (strategy reindex); new build
// parameters go on the parent's definition, which vectorheal does not change, as that would
// rebuild every partition at once.
func replaceable(ix catalog.Index, strategy string) error {
	switch {
	case ix.Partitioned:
		return fmt.Errorf("%s is the index of a partitioned table: it has no storage of its own; %s acts on each partition's index", ix, strategy)
	case ix.ParentIndex != "":
		return fmt.Errorf("%s is attached to %s.%s, the index of partitioned table %s.%s: PostgreSQL cannot drop or detach it for a new build, so %s cannot replace it (reindex rebuilds it in place; new build parameters belong on the parent's definition)",
			ix, ix.ParentSchema, ix.ParentIndex, ix.ParentSchema, ix.ParentTable, strategy)
	}
	return nil
}
