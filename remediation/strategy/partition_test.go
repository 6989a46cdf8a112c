package strategy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// TestRepairsActOnOnePartition: on a partitioned table, reindex rebuilds one partition's index
// and leaves it attached to the parent with its sibling untouched; vacuum names the partition,
// not the parent; hnsw_rebuild and ivfflat_retrain, which would drop the index for a new build,
// refuse a partition's index with the reason.
func TestRepairsActOnOnePartition(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.exec(t, `SELECT setseed(0.3)`,
		`CREATE TABLE parts (id int, emb vector(8)) PARTITION BY RANGE (id)`,
		`CREATE TABLE parts_a PARTITION OF parts FOR VALUES FROM (0) TO (1000)`,
		`CREATE TABLE parts_b PARTITION OF parts FOR VALUES FROM (1000) TO (2000)`,
		`INSERT INTO parts SELECT i, (SELECT array_agg(random()::real) FROM generate_series(1, 8) WHERE i > 0)::vector FROM generate_series(0, 1999) i`,
		`CREATE INDEX parts_hnsw ON parts USING hnsw (emb vector_l2_ops)`,
		`CREATE INDEX parts_ivf ON parts USING ivfflat (emb vector_l2_ops) WITH (lists = 4)`,
		`ANALYZE parts`)
	parent := b.resolve(t, "public", "parts_hnsw")
	if !parent.Partitioned {
		t.Fatalf("%s is not partitioned: %+v", parent, parent)
	}
	parts, err := catalog.Partitions(ctx, b.pool, parent)
	if err != nil || len(parts) != 2 {
		t.Fatalf("partitions of %s: %v, %v", parent, parts, err)
	}
	a, sibling := parts[0], parts[1]
	if a.Table != "parts_a" || sibling.Table != "parts_b" || a.ParentIndex != "parts_hnsw" {
		t.Fatalf("partitions %+v", parts)
	}

	im, err := b.strategy(t, "vacuum").Plan(ctx, b.env, a, nil)
	if err != nil || len(im.Statements) != 1 || !strings.HasSuffix(im.Statements[0], ` "public"."parts_a"`) {
		t.Errorf("vacuum of %s plans %v (%v), want a VACUUM of the partition parts_a", a, im.Statements, err)
	}

	if _, err := b.strategy(t, "reindex").Run(ctx, b.env, a, nil); err != nil {
		t.Fatalf("reindex %s: %v", a, err)
	}
	after, err := catalog.Partitions(ctx, b.pool, parent)
	if err != nil || len(after) != 2 {
		t.Fatalf("partitions after the reindex: %v, %v", after, err)
	}
	if got := after[0]; got.Name != a.Name || got.Relfilenode == a.Relfilenode || !got.Valid || got.ParentIndex != "parts_hnsw" {
		t.Errorf("reindexed partition index %+v, want %s rebuilt (relfilenode was %d), valid and still attached to parts_hnsw", got, a.Name, a.Relfilenode)
	}
	if got := after[1]; got.OID != sibling.OID || got.Relfilenode != sibling.Relfilenode {
		t.Errorf("sibling %s: OID %d relfilenode %d, was %d %d: the reindex touched it", got, got.OID, got.Relfilenode, sibling.OID, sibling.Relfilenode)
	}
	if p := b.resolve(t, "public", "parts_hnsw"); p.OID != parent.OID || !p.Valid {
		t.Errorf("parent after the reindex: %+v, was OID %d", p, parent.OID)
	}

	cur := b.resolve(t, "public", a.Name)
	for _, c := range []struct {
		strategy string
		ix       catalog.Index
	}{{"hnsw_rebuild", cur}, {"ivfflat_retrain", ivfPartition(t, b, "parts_ivf")}, {"hnsw_rebuild", parent}} {
		_, err := b.strategy(t, c.strategy).Plan(ctx, b.env, c.ix, nil)
		if err == nil || !strings.Contains(err.Error(), "partition") {
			t.Errorf("%s of %s: %v, want a refusal naming the partitioning", c.strategy, c.ix, err)
		}
	}
}

// ivfPartition returns the index of partition parts_a attached to the partitioned index name.
func ivfPartition(t *testing.T, b *bundle, name string) catalog.Index {
	t.Helper()
	parts, err := catalog.Partitions(context.Background(), b.pool, b.resolve(t, "public", name))
	if err != nil || len(parts) == 0 {
		t.Fatalf("partitions of %s: %v, %v", name, parts, err)
	}
	return parts[0]
}
