package measure

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Size is the size of a relation's main fork: what pg_relation_size reports, in bytes and in
// blocks of the server's block_size.
type Size struct {
	Bytes  int64
	Blocks int64
}

// sizesSQL reads the size of each relation of $1 that exists; a relation dropped since its OID
// was read has no row.
const sizesSQL = `
SELECT c.oid, pg_relation_size(c.oid), pg_relation_size(c.oid) / current_setting('block_size')::int8
FROM pg_class c
WHERE c.oid = ANY($1)`

// Sizes returns the size of each relation of oids that exists, by OID, in one query.
func Sizes(ctx context.Context, q Querier, oids []uint32) (map[uint32]Size, error) {
	rows, err := q.Query(ctx, sizesSQL, oids)
	if err != nil {
		return nil, fmt.Errorf("relation sizes: %w", err)
	}
	defer rows.Close()
	out := make(map[uint32]Size, len(oids))
	for rows.Next() {
		var oid uint32
		var s Size
		if err := rows.Scan(&oid, &s.Bytes, &s.Blocks); err != nil {
			return nil, fmt.Errorf("relation sizes: %w", err)
		}
		out[oid] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("relation sizes: %w", err)
	}
	return out, nil
}

// SizeOf returns the size of the relation oid; an error when it does not exist.
func SizeOf(ctx context.Context, q Querier, oid uint32) (Size, error) {
	s, err := Sizes(ctx, q, []uint32{oid})
	if err != nil {
		return Size{}, err
	}
	size, ok := s[oid]
	if !ok {
		return Size{}, fmt.Errorf("relation size: no relation with OID %d: %w", oid, pgx.ErrNoRows)
	}
	return size, nil
}
