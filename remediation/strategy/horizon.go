package strategy

import "slices"

// Capabilities that say what a step can do while something holds back the xmin horizon of the
// database (internal/horizon): a row deleted after the oldest snapshot still held is dead to
// everyone else but not yet removable, and PostgreSQL keeps it.
const (
	// RemovesDeadRows: the step's work is removing dead rows and their index entries (VACUUM).
	// While a holder older than the dead rows stays, it removes none of them and changes
	// nothing, so the engine holds it back.
	RemovesDeadRows Capability = "removes_dead_rows"
	// CopiesVisibleRows: the step builds a new index from the table, which copies every row an
	// old snapshot may still see ("recently dead" rows) along with the live ones. It still
	// repairs structure, validity and build parameters, but a step of it validated on a
	// dead-row figure (DeadRowFigures) cannot help while the horizon is held, and is held back
	// like a VACUUM.
	CopiesVisibleRows Capability = "copies_visible_rows"
)

// DeadRowFigures are the figures that count dead rows or their index entries: what neither
// VACUUM nor a rebuild can lower while the horizon is held. Fragmentation is not one of them: a
// rebuild drops deleted and being-deleted elements whatever the horizon.
func DeadRowFigures() []string {
	return []string{"pgvector_hnsw_heap_tids:dead", "pgvector_index_dead_entries_estimated", "pgvector_table_dead_tuples"}
}

// NeedsHorizon says whether a step of the strategy spec, validated on figures (its validation
// figure and fallback; none when it has no validation), can help only once nothing holds back
// the xmin horizon: a step that removes dead rows, or a rebuild judged on dead rows.
func NeedsHorizon(spec Spec, figures ...string) bool {
	if spec.Has(RemovesDeadRows) {
		return true
	}
	if !spec.Has(CopiesVisibleRows) {
		return false
	}
	dead := DeadRowFigures()
	for _, f := range figures {
		if f != "" && slices.Contains(dead, f) {
			return true
		}
	}
	return false
}
