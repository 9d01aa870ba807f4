package chart

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Weekly is a figure of three panels: a count per week as bars
// (Throughput), a duration per week as a line with its points (Cycle, NaN
// for a week without one), both over the same weeks, and below them
// counts per category stacked by series (Open: one bar per category).
type Weekly struct {
	Title      string
	Period     string
	Weeks      []string // the x axis's labels, one per week
	Throughput Panel    // one series: bars
	Cycle      Panel    // one series: a line, NaN where there is no value
	Open       Panel    // series stacked in their order, a value per category
	Categories []string // Open's x axis
	// XLabel names the weeks' axis, CategoryLabel the categories'.
	XLabel, CategoryLabel string
}

// MaxWeeks bounds a Weekly figure: the ISO weeks a 366-day period
// overlaps.
const MaxWeeks = 54

// MaxCategories bounds Open: more bars would not be readable.
const MaxCategories = 16

func (f Weekly) check() error {
	n := len(f.Weeks)
	if n == 0 || n > MaxWeeks {
		return fmt.Errorf("chart: %d weeks, want 1 to %d", n, MaxWeeks)
	}
	if len(f.Categories) > MaxCategories {
		return fmt.Errorf("chart: %d categories, want at most %d", len(f.Categories), MaxCategories)
	}
	if len(f.Throughput.Series) != 1 || len(f.Cycle.Series) != 1 || len(f.Open.Series) == 0 {
		return errors.New("chart: a weekly figure has one throughput series, one cycle series and open series")
	}
	for _, p := range []struct {
		panel Panel
		n     int
		nan   bool
	}{{f.Throughput, n, false}, {f.Cycle, n, true}, {f.Open, len(f.Categories), false}} {
		for _, s := range p.panel.Series {
			if len(s.Values) != p.n {
				return fmt.Errorf("chart: series %q has %d values for %d", s.Name, len(s.Values), p.n)
			}
			for _, v := range s.Values {
				if math.IsNaN(v) && p.nan {
					continue
				}
				if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
					return fmt.Errorf("chart: series %q has the value %v", s.Name, v)
				}
			}
		}
	}
	return nil
}

// PNG writes the figure as a PNG image, the size of Figure's.
func (f Weekly) PNG(w io.Writer) error { return writePNG(w, f.draw) }

// SVG writes the figure as an SVG document, its text as text.
func (f Weekly) SVG(w io.Writer) error { return writeSVG(w, f.draw) }

func (f Weekly) draw(dc draw.Canvas) error {
	if err := f.check(); err != nil {
		return err
	}
	header(dc, f.Title, f.Period)
	n := len(f.Weeks)
	labels := labelTicks(f.Weeks)

	// Throughput: one bar a week.
	tp := f.Throughput.Series[0]
	through := panelPlot(f.Throughput, f.XLabel, n, maxOf(tp.Values), labels, "nothing done in this period")
	bars, err := plotter.NewBarChart(plotter.Values(tp.Values), barWidth(n, 0.6))
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	bars.Color, bars.LineStyle.Width = tp.Color, 0
	through.Add(bars)
	throughLegend := newLegend()
	throughLegend.Add(tp.Name, bars)

	// Cycle time: a point for each week that has one, joined by a line
	// to the next week's only: a week without one is a gap, not a slope.
	cs := f.Cycle.Series[0]
	var highest float64
	var all plotter.XYs
	var runs []plotter.XYs
	for i, v := range cs.Values {
		if math.IsNaN(v) {
			continue
		}
		p := plotter.XY{X: float64(i), Y: v}
		if i == 0 || math.IsNaN(cs.Values[i-1]) {
			runs = append(runs, nil)
		}
		runs[len(runs)-1] = append(runs[len(runs)-1], p)
		all = append(all, p)
		highest = math.Max(highest, v)
	}
	cycle := panelPlot(f.Cycle, f.XLabel, n, highest, labels, "no task with a known start done in this period")
	cycle.Y.Tick.Marker = plot.DefaultTicks{}
	cycleLegend := newLegend()
	style := draw.LineStyle{Color: cs.Color, Width: 1.5}
	for _, run := range runs {
		line, err := plotter.NewLine(run)
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		line.LineStyle = style
		cycle.Add(line)
	}
	points, err := plotter.NewScatter(all)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	points.Color, points.Shape, points.Radius = cs.Color, draw.CircleGlyph{}, 2.5
	cycle.Add(points)
	cycleLegend.Add(cs.Name, &plotter.Line{LineStyle: style}, points)

	// Open work: a bar per category, its series stacked.
	nc := max(len(f.Categories), 1)
	tops := make([]float64, len(f.Categories))
	for _, s := range f.Open.Series {
		for i, v := range s.Values {
			tops[i] += v
		}
	}
	open := panelPlot(f.Open, f.CategoryLabel, nc, maxOf(tops), labelTicks(f.Categories), "no open tasks")
	openLegend := newLegend()
	var below *plotter.BarChart
	var stacked []*plotter.BarChart
	for _, s := range f.Open.Series {
		if len(s.Values) == 0 {
			break // no categories: the panel says so
		}
		b, err := plotter.NewBarChart(plotter.Values(s.Values), barWidth(nc, 0.6))
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		b.Color, b.LineStyle.Width = s.Color, 0
		if below != nil {
			b.StackOn(below)
		}
		below = b
		stacked = append(stacked, b)
		open.Add(b)
	}
	for i := len(f.Open.Series) - 1; i >= 0; i-- { // listed top first, as stacked
		s := f.Open.Series[i]
		if i < len(stacked) {
			openLegend.Add(s.Name, stacked[i])
		} else {
			openLegend.Add(s.Name, &plotter.BarChart{Color: s.Color})
		}
	}

	body := draw.Crop(dc, 0, -legendW, 0, -headerH)
	tiles := draw.Tiles{Rows: 3, Cols: 1, PadTop: 0.1 * vg.Inch, PadBottom: 0.15 * vg.Inch, PadLeft: 0.15 * vg.Inch, PadRight: 0.1 * vg.Inch, PadY: 0.3 * vg.Inch}
	plots := []*plot.Plot{through, cycle, open}
	canvases := plot.Align([][]*plot.Plot{{through}, {cycle}, {open}}, tiles, body)
	for i, l := range []*plot.Legend{throughLegend, cycleLegend, openLegend} {
		pc := canvases[i][0]
		plots[i].Draw(pc)
		legendBeside(dc, pc, l)
	}
	return nil
}

// panelPlot is a panel over n slots (weeks or categories) labelled by
// ticks, counts from 0 to a little above max; an empty one says empty.
func panelPlot(p Panel, xLabel string, n int, max float64, ticks plot.Ticker, empty string) *plot.Plot {
	pl := plot.New()
	pl.Title.Text = p.Title
	pl.Title.TextStyle.Font = sans(14)
	pl.Title.Padding = 0.1 * vg.Inch
	pl.X.Label.Text = xLabel
	pl.Y.Label.Text = p.YLabel
	for _, a := range []*plot.Axis{&pl.X, &pl.Y} {
		a.Label.TextStyle.Font = sans(12)
		a.Tick.Label.Font = sans(10)
	}
	pl.X.Min, pl.X.Max = -0.5, float64(n)-0.5
	pl.X.Tick.Marker = ticks
	pl.Y.Min, pl.Y.Max = 0, math.Max(1, max)*1.05
	pl.Y.Tick.Marker = countTicks{}
	grid := plotter.NewGrid()
	grid.Vertical.Width = 0
	grid.Horizontal.Color = color.Gray{Y: 0xdd}
	pl.Add(grid)
	if max == 0 {
		emptyNote(pl, float64(n-1)/2, empty)
	}
	return pl
}

// barWidth is the width of one bar of n slots filling fill of its slot.
func barWidth(n int, fill float64) vg.Length {
	slot := (width - legendW - 1.1*vg.Inch) / vg.Length(n)
	return max(slot*vg.Length(fill), 0.5)
}

// labelTicks labels slot i with labels[i] (which may hold a line break),
// thinned to at most 14 labels so that labels of a dozen characters never
// touch: the other slots keep a tick, unlabelled.
func labelTicks(labels []string) plot.ConstantTicks {
	step := (len(labels) + 13) / 14
	ticks := make(plot.ConstantTicks, len(labels))
	for i, l := range labels {
		ticks[i] = plot.Tick{Value: float64(i)}
		if i%step == 0 {
			ticks[i].Label = l
		}
	}
	return ticks
}
