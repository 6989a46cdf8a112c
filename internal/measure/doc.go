// Package measure holds the measurements that both the exporter and the repair strategies
// take, so that a figure read by a probe, a filtered query, a repair's gate or the one-shot
// check means the same thing wherever it is read: recall of a nearest-neighbour search
// against exact search (recall.go), whether the planner scans an index for a query
// (plan.go), pgvector's advice for the lists of an IVFFlat index (lists.go) and the size of a
// relation on disk (size.go); and what a measurement of an index returns, a Reading of
// figures with their source, server and time (reading.go).
//
// It knows nothing of the exporter or of repairs and imports neither; queries are built from
// the caller's catalog-quoted SQL and constants, with every value bound as a parameter.
package measure
