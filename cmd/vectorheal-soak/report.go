package main

import (
	"bytes"
	"context"
	"fmt"
	"github.com/vectorheal/vectorheal/internal/benchdoc"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vectorheal/vectorheal/internal/e2e"
)

// Markers of the generated part of the soak section in docs/BENCHMARKS.md.
const (
	docsBegin = "<!-- soak:begin (written by vectorheal-soak -write-docs) -->"
	docsEnd   = "<!-- soak:end -->"
)

// report reads the repairs, summarises the run and writes every output.
func (s *soak) report(ctx context.Context) error {
	rs, err := e2e.Repairs(ctx, s.state, "vectorheal")
	if err != nil {
		return err
	}
	var repairs []repairMark
	for _, r := range rs {
		var strategies []string
		for _, st := range r.Steps {
			strategies = append(strategies, st.Strategy+":"+st.State)
		}
		repairs = append(repairs, repairMark{ID: r.ID, Index: r.Index, Alert: r.Alertname, Entry: r.Entry, State: r.State,
			Strategies: strings.Join(strategies, ","), Created: r.CreatedAt, Started: r.StartedAt, Finished: r.FinishedAt})
	}
	s.mu.Lock()
	samples, alerts, notes := append([]sample(nil), s.samples...), append([]alertMark(nil), s.alerts...), append([]string(nil), s.notes...)
	s.mu.Unlock()
	sts := summarise(samples, repairs, alerts)
	info := runInfo{QuietStart: s.quietStart, ChurnStart: s.churnStart, End: s.end, ConstantRows: map[string]bool{docsIndex: true}}
	crit := evaluate(sts, repairs, alerts, info)

	var md bytes.Buffer
	failed := s.writeSummary(&md, sts, crit, repairs, alerts)
	var csvBuf, svg, events bytes.Buffer
	if err := writeCSV(&csvBuf, samples); err != nil {
		return err
	}
	if err := writeSVG(&svg, samples, repairs, []string{docsIndex, eventsIndex}, s.quietStart, s.churnStart); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(&events, n)
	}
	for _, e := range s.watch.Events() {
		fmt.Fprintln(&events, e.String())
	}
	files := map[string][]byte{"summary.md": md.Bytes(), "samples.csv": csvBuf.Bytes(), "soak.svg": svg.Bytes(), "events.txt": events.Bytes()}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(s.o.out, name), data, 0o644); err != nil {
			return err
		}
	}
	s.printf("\n%s\nwritten to %s: summary.md, samples.csv, events.txt, soak.svg\n", md.String(), s.o.out)
	if s.o.writeDocs {
		if err := os.WriteFile(s.o.plotPath, svg.Bytes(), 0o644); err != nil {
			return err
		}
		if err := (benchdoc.Markers{Begin: docsBegin, End: docsEnd}).Update(s.o.docsPath, md.String()); err != nil {
			return err
		}
		s.printf("updated %s and %s\n", s.o.docsPath, s.o.plotPath)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d criteria failed", failed, len(crit))
	}
	return nil
}

// writeSummary writes the generated part of the docs: command, run, table, criteria,
// repairs and alerts. It returns how many criteria failed.
func (s *soak) writeSummary(w *bytes.Buffer, sts []stats, crit []criterion, repairs []repairMark, alerts []alertMark) int {
	o := s.o
	fmt.Fprintf(w, "Run of %s (UTC): quiet %s, churn %s, %d × %d-d docs rows (HNSW) and %d events rows (IVFFlat), seed %d, "+
		"churn %.0f docs rows/s and %.0f events rows/s, %.0f application queries/s per index and twin, a sample every %s.\n\n",
		s.quietStart.UTC().Format("2006-01-02 15:04"), o.quiet, s.end.Sub(s.churnStart).Round(time.Second), o.rows, o.dims, o.rows/5,
		o.seed, o.churnRate, o.driftRate, o.qps, o.sampleEvery)
	fmt.Fprintf(w, "```sh\n%s\n```\n\n", o.commandForDocs)
	writeTable(w, sts)
	fmt.Fprintf(w, "\nAcceptance criteria:\n\n")
	failed := writeCriteria(w, crit)
	fmt.Fprintf(w, "\nRepairs of the tended twin (start after the quiet period began, duration, outcome):\n\n")
	if len(repairs) == 0 {
		fmt.Fprintln(w, "none")
	}
	for _, r := range repairs {
		start := "not started"
		if r.Started != nil {
			start = "+" + fmtElapsed(r.Started.Sub(s.quietStart))
		}
		fmt.Fprintf(w, "- #%d %s: %s (entry %s) %s, %s, %s [%s]\n", r.ID, r.Index, r.Alert, r.Entry, start,
			r.Duration().Round(100*time.Millisecond), r.State, r.Strategies)
	}
	fmt.Fprintf(w, "\nAlerts seen firing (tended twin; the untended one is not watched):\n\n")
	if len(alerts) == 0 {
		fmt.Fprintln(w, "none")
	}
	for _, a := range alerts {
		fmt.Fprintf(w, "- +%s %s %s (%s)\n", fmtElapsed(a.At.Sub(s.quietStart)), a.Alert, a.Index, a.Severity)
	}
	fmt.Fprintf(w, "\n![recall and p99 over time, both twins, repairs marked](soak.svg)\n")
	return failed
}
