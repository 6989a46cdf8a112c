package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// Plot geometry: one panel per index, each a recall chart above a p99 chart.
const (
	plotWidth   = 960
	chartHeight = 170
	marginLeft  = 70
	marginRight = 20
	panelGap    = 60
	chartGap    = 40
	plotTop     = 50
)

// colourOf is a twin's line colour.
func colourOf(twin string) string {
	if twin == tended {
		return "#1f77b4"
	}
	return "#d62728"
}

// chart is one set of axes: x in seconds since the quiet period began, y in the value's unit.
type chart struct {
	top              float64
	xMax, yMin, yMax float64
}

func (c chart) x(sec float64) float64 {
	return marginLeft + sec/c.xMax*float64(plotWidth-marginLeft-marginRight)
}

func (c chart) y(v float64) float64 {
	return c.top + chartHeight - (v-c.yMin)/(c.yMax-c.yMin)*chartHeight
}

// writeSVG draws recall@10 and the application's p99 over time for both twins, one panel per
// index, with the quiet period shaded and every repair of the tended twin as a vertical line
// labelled with its runbook entry and outcome.
func writeSVG(w io.Writer, samples []sample, repairs []repairMark, indexes []string, quietStart, churnStart time.Time) error {
	var xMax float64
	for _, s := range samples {
		xMax = max(xMax, s.Elapsed.Seconds())
	}
	xMax = max(xMax, 1)
	height := plotTop + len(indexes)*(2*chartHeight+chartGap+panelGap)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		plotWidth, height, plotWidth, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotWidth, height)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">vectorheal soak: tended (vectorheal) against untended (autovacuum only); shaded: quiet period; dashed: repairs that ran (green: succeeded)</text>`+"\n", marginLeft)
	legend(&b, marginLeft, 38)
	quiet := churnStart.Sub(quietStart).Seconds()
	for i, idx := range indexes {
		top := float64(plotTop + i*(2*chartHeight+chartGap+panelGap) + 20)
		var ss []sample
		for _, s := range samples {
			if s.Index == idx {
				ss = append(ss, s)
			}
		}
		lo, hi := rangeOf(ss, func(s sample) float64 { return s.Recall })
		rc := chart{top: top, xMax: xMax, yMin: math.Max(0, math.Min(lo, 0.9)-0.02), yMax: math.Max(hi, 1)}
		_, pHi := rangeOf(ss, func(s sample) float64 { return s.P99 * 1000 })
		pc := chart{top: top + chartHeight + chartGap, xMax: xMax, yMin: 0, yMax: math.Max(pHi*1.1, 1)}
		for _, c := range []struct {
			ch    chart
			title string
			val   func(sample) float64
			unit  string
		}{
			{rc, idx + ": recall@10 at a new session's settings", func(s sample) float64 { return s.Recall }, ""},
			{pc, idx + ": application p99 per sample window", func(s sample) float64 { return s.P99 * 1000 }, " ms"},
		} {
			axes(&b, c.ch, c.title, c.unit, quiet)
			for _, twin := range []string{untended, tended} {
				series(&b, c.ch, ss, twin, c.val)
			}
			marks(&b, c.ch, repairs, idx, quietStart)
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func legend(b *strings.Builder, x, y int) {
	for i, twin := range []string{tended, untended} {
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/><text x="%d" y="%d">%s</text>`+"\n",
			x+i*120, y, x+i*120+20, y, colourOf(twin), x+i*120+25, y+4, twin)
	}
}

// rangeOf is the smallest and largest finite value of f over ss (0, 1 when there is none).
func rangeOf(ss []sample, f func(sample) float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		if v := f(s); !math.IsNaN(v) && !math.IsInf(v, 0) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		return 0, 1
	}
	return lo, hi
}

func axes(b *strings.Builder, c chart, title, unit string, quiet float64) {
	x0, x1, y0, y1 := c.x(0), c.x(c.xMax), c.y(c.yMin), c.y(c.yMax)
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#eeeeee"/>`+"\n", x0, y1, c.x(quiet)-x0, y0-y1)
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="12">%s</text>`+"\n", x0, y1-6, html.EscapeString(title))
	fmt.Fprintf(b, `<path d="M%.1f %.1fV%.1fH%.1f" fill="none" stroke="black"/>`+"\n", x0, y1, y0, x1)
	for i := 0; i <= 4; i++ {
		v := c.yMin + float64(i)/4*(c.yMax-c.yMin)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%.3g%s</text>`+"\n", x0-4, c.y(v)+4, v, unit)
	}
	step := 60.0 // a label a minute on short runs, every 5 or 30 minutes on long ones
	if c.xMax > 15*60 {
		step = 5 * 60
	}
	if c.xMax > 3*3600 {
		step = 30 * 60
	}
	for s := 0.0; s <= c.xMax; s += step {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%.0f min</text>`+"\n", c.x(s), y0+14, s/60)
	}
}

func series(b *strings.Builder, c chart, ss []sample, twin string, val func(sample) float64) {
	var pts []string
	for _, s := range ss {
		if v := val(s); s.Twin == twin && !math.IsNaN(v) {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", c.x(s.Elapsed.Seconds()), c.y(v)))
		}
	}
	if len(pts) == 0 {
		return
	}
	fmt.Fprintf(b, `<polyline class="%s" fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n",
		twin, colourOf(twin), strings.Join(pts, " "))
}

// marks draws the tended twin's repairs of index that ran as vertical lines from their start;
// those skipped or cancelled before they ran (cooldown, alert resolved) changed nothing and
// are left to the list of repairs.
func marks(b *strings.Builder, c chart, repairs []repairMark, index string, quietStart time.Time) {
	for _, r := range repairs {
		if r.Index != index || r.Started == nil {
			continue
		}
		x := c.x(r.Started.Sub(quietStart).Seconds())
		colour := "#2ca02c"
		if r.State != "succeeded" {
			colour = "#ff7f0e"
		}
		fmt.Fprintf(b, `<line class="repair" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="3,2"/>`+"\n",
			x, c.y(c.yMax), x, c.y(c.yMin), colour)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="9" transform="rotate(-90 %.1f %.1f)" text-anchor="end" fill="%s">%s</text>`+"\n",
			x-2, c.y(c.yMax)+2, x-2, c.y(c.yMax)+2, colour, html.EscapeString(fmt.Sprintf("#%d %s %s", r.ID, r.Entry, r.State)))
	}
}
