package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/remediation/engine"
	"github.com/vectorheal/vectorheal/remediation/record"
)

// indexBudgets is the budget state of the indexes the API knows, to look up by index.
type indexBudgets struct {
	list []record.IndexBudget
	by   map[[3]string]record.BudgetState
}

// budgets reads GET /budgets.
func (o *clientOptions) budgets(ctx context.Context) (indexBudgets, error) {
	var bs indexBudgets
	if err := o.call(ctx, "GET", "/budgets", nil, &bs.list); err != nil {
		return bs, fmt.Errorf("budgets: %w", err)
	}
	bs.by = make(map[[3]string]record.BudgetState, len(bs.list))
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
func nextText(b record.BudgetState, now time.Time) string {
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
func printBudgets(w io.Writer, bs []record.IndexBudget, now time.Time) error {
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

// checkNext is what check says about the next automatic repair of the indexes it reports.
type checkNext struct {
	url     string
	budgets []record.IndexBudget // of the database checked
	err     string               // why it is not known
}

// checkBudgets asks the server at --url for the budget state of the database's indexes.
func checkBudgets(ctx context.Context, o *checkOptions, rep *exporter.DatabaseReport) checkNext {
	if o.url == "" {
		return checkNext{err: "not known: check reads the database only; the budget state is in vectorheal's state store (give --url of vectorheal serve, or run vectorheal repairs)"}
	}
	c := o.server
	c.url, c.output, c.timeout, c.stdout = o.url, "text", 15*time.Second, io.Discard
	bs, err := c.budgets(ctx)
	if err != nil {
		return checkNext{url: o.url, err: "not known: " + err.Error()}
	}
	next := checkNext{url: o.url, budgets: []record.IndexBudget{}}
	for _, b := range bs.list {
		if o.target != "" && b.Target == o.target || o.target == "" && b.Datname == rep.Datname {
			next.budgets = append(next.budgets, b)
		}
	}
	return next
}

// of is the budget state of one index; an index without recent repairs is held by nothing.
func (n checkNext) of(schema, index string) (record.IndexBudget, bool) {
	for _, b := range n.budgets {
		if b.Schema == schema && b.Index == index {
			return b, true
		}
	}
	return record.IndexBudget{}, false
}

// writeText adds one line per index to check's text report.
func (n checkNext) writeText(w io.Writer, rep *exporter.DatabaseReport) error {
	if n.err != "" {
		_, err := fmt.Fprintf(w, "\nnext automatic repair: %s\n", n.err)
		return err
	}
	fmt.Fprintf(w, "\nnext automatic repair (vectorheal at %s):\n", n.url)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	now := time.Now()
	for _, ir := range rep.Indexes {
		line := "now (no recent repairs)"
		if b, ok := n.of(ir.Schemaname, ir.Indexrelname); ok {
			line = fmt.Sprintf("%s; budget used %.1f%% of %.1f%% over %s", nextText(b.BudgetState, now), 100*b.UsedRatio, 100*b.Share, b.Window)
		}
		fmt.Fprintf(tw, "  %s.%s\t%s\n", ir.Schemaname, ir.Indexrelname, line)
	}
	return tw.Flush()
}

// writeJSON writes check's JSON report with the budget state of its indexes (or why it is not
// known) beside the figures.
func (n checkNext) writeJSON(w io.Writer, rep *exporter.DatabaseReport) error {
	out := struct {
		*exporter.DatabaseReport
		RepairBudgets      []record.IndexBudget `json:"repair_budgets,omitempty"`
		RepairBudgetsError string               `json:"repair_budgets_error,omitempty"`
	}{rep, n.budgets, n.err}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
