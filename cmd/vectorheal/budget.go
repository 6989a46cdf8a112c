package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/vectorheal/vectorheal/remediation/engine"
)

// indexBudgets is the budget state of the indexes the API knows, to look up by index.
type indexBudgets struct {
	list []engine.IndexBudget
	by   map[[3]string]engine.BudgetState
}

// budgets reads GET /budgets.
func (o *clientOptions) budgets(ctx context.Context) (indexBudgets, error) {
	var bs indexBudgets
	if err := o.call(ctx, "GET", "/budgets", nil, &bs.list); err != nil {
		return bs, fmt.Errorf("budgets: %w", err)
	}
	bs.by = make(map[[3]string]engine.BudgetState, len(bs.list))
	for _, b := range bs.list {
		bs.by[[3]string{b.Target, b.Schema, b.Index}] = b.BudgetState
	}
	return bs, nil
}

// of says when the next automatic repair of an index may run; an index without recent
// repairs is held by nothing the budget knows.
func (bs indexBudgets) of(target, schema, index string) string {
	b, ok := bs.by[[3]string{target, schema, index}]
	if !ok {
		return "now"
	}
	return nextText(b, time.Now())
}

// nextText says when the next automatic repair may run and, when not now, what holds it back.
func nextText(b engine.BudgetState, now time.Time) string {
	switch {
	case b.Allowed:
		return "now"
	case b.HeldBy == engine.HeldByCircuit:
		return "after reset-circuit (circuit_open)"
	case b.NextAllowed == nil:
		return fmt.Sprintf("when a running repair ends (%s)", b.HeldBy)
	}
	in := b.NextAllowed.Sub(now).Round(time.Second)
	return fmt.Sprintf("%s, in %s (%s)", b.NextAllowed.UTC().Format(time.RFC3339), max(in, 0), b.HeldBy)
}

// printBudgets writes the budget state of every index repaired lately.
func printBudgets(w io.Writer, bs []engine.IndexBudget, now time.Time) error {
	if len(bs) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nnext automatic repair per index:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tINDEX\tNEXT REPAIR\tBUDGET USED\tBACKOFF")
	for _, b := range bs {
		backoff := "-"
		if b.Unhelpful > 0 {
			backoff = fmt.Sprintf("%s after %d unhelpful", b.Backoff, b.Unhelpful)
		}
		fmt.Fprintf(tw, "%s\t%s.%s\t%s\t%.1f%% of %.1f%% over %s\t%s\n", b.Target, b.Schema, b.Index, nextText(b.BudgetState, now),
			100*b.UsedRatio, 100*b.Share, b.Window, backoff)
	}
	return tw.Flush()
}
