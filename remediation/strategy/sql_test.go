package strategy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/vectorheal/vectorheal/remediation/strategy"
)

func TestSQLBindsLabelsValidatesAndRollsBack(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.loadVectors(t, "items", 4, 50, 0.11)
	b.exec(t, "CREATE INDEX items_emb ON items USING hnsw (emb vector_l2_ops)",
		"CREATE TABLE patterns (idx text, weight int)",
		"INSERT INTO patterns VALUES ('items_emb', 7), ('other', 7)")
	ix := b.resolve(t, "public", "items_emb")
	evil := `items_emb'; DROP TABLE patterns; --`
	b.env.Labels = map[string]string{"indexrelname": "items_emb", "weight": "0", "evil": evil}
	s := b.strategy(t, "sql")

	reset := strategy.Params{
		"statements": []any{
			map[string]any{"sql": "UPDATE patterns SET weight = $2::int WHERE idx = $1", "args": []any{"indexrelname", "weight"}},
		},
		"rollback": []any{
			map[string]any{"sql": "UPDATE patterns SET weight = 7 WHERE idx = $1", "args": []any{"indexrelname"}},
		},
		"validate": map[string]any{"sql": "SELECT count(*) = 0 FROM patterns WHERE idx = $1 AND weight <> 0", "args": []any{"indexrelname"}},
	}
	if err := s.CheckParams(reset); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Plan(ctx, b.env, ix, reset); err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(ctx, b.env, ix, reset)
	if err != nil {
		t.Fatal(err)
	}
	if n := b.count(t, "SELECT weight FROM patterns WHERE idx = 'items_emb'"); n != 0 {
		t.Errorf("weight = %d after reset", n)
	}
	if n := b.count(t, "SELECT weight FROM patterns WHERE idx = 'other'"); n != 7 {
		t.Errorf("other row touched: %d", n)
	}
	// Idempotent.
	if _, err := s.Run(ctx, b.env, ix, reset); err != nil {
		t.Errorf("second run: %v", err)
	}
	// The engine's rollback after a later step failed.
	if err := s.Rollback(ctx, b.env, ix, reset, out.Undo); err != nil {
		t.Fatal(err)
	}
	if n := b.count(t, "SELECT weight FROM patterns WHERE idx = 'items_emb'"); n != 7 {
		t.Errorf("weight = %d after rollback", n)
	}

	t.Run("failing statement runs rollback", func(t *testing.T) {
		p := strategy.Params{
			"statements": []any{
				map[string]any{"sql": "UPDATE patterns SET weight = 0 WHERE idx = $1", "args": []any{"indexrelname"}},
				map[string]any{"sql": "INSERT INTO no_such_table VALUES ($1)", "args": []any{"indexrelname"}},
			},
			"rollback": reset["rollback"],
		}
		_, err := s.Run(ctx, b.env, ix, p)
		if err == nil || !strings.Contains(err.Error(), "statements[1]") {
			t.Fatalf("err = %v", err)
		}
		if n := b.count(t, "SELECT weight FROM patterns WHERE idx = 'items_emb'"); n != 7 {
			t.Errorf("weight = %d, the rollback statements did not run", n)
		}
	})
	t.Run("failing validation runs rollback", func(t *testing.T) {
		p := strategy.Params{
			"statements": reset["statements"],
			"rollback":   reset["rollback"],
			"validate":   map[string]any{"sql": "SELECT count(*) FROM patterns WHERE weight = 99", "min": 1},
		}
		_, err := s.Run(ctx, b.env, ix, p)
		if err == nil || !strings.Contains(err.Error(), "validate") {
			t.Fatalf("err = %v", err)
		}
		if n := b.count(t, "SELECT weight FROM patterns WHERE idx = 'items_emb'"); n != 7 {
			t.Errorf("weight = %d, the rollback statements did not run", n)
		}
	})
	t.Run("label text is data", func(t *testing.T) {
		p := strategy.Params{"statements": []any{
			map[string]any{"sql": "INSERT INTO patterns VALUES ($1, 1)", "args": []any{"evil"}},
		}}
		if _, err := s.Run(ctx, b.env, ix, p); err != nil {
			t.Fatal(err)
		}
		if n := b.count(t, "SELECT count(*) FROM patterns WHERE idx = $1", evil); n != 1 {
			t.Errorf("label stored %d times, want once, verbatim", n)
		}
	})
	t.Run("missing label", func(t *testing.T) {
		p := strategy.Params{"statements": []any{
			map[string]any{"sql": "SELECT $1", "args": []any{"tenant"}},
		}}
		_, err := s.Run(ctx, b.env, ix, p)
		if err == nil || !strings.Contains(err.Error(), `"tenant"`) || !strings.Contains(err.Error(), "statements[0]") {
			t.Errorf("err = %v", err)
		}
	})
}
