// Package chart draws the pictures of reports with gonum.org/v1/plot: a
// figure of two panels over the same run of UTC days, one of stacked
// areas (a cumulative-flow chart) above one of grouped bars (a count per
// day), each with its title, axes and legend, under the figure's title and
// period, as PNG or SVG. It knows nothing of tasks: callers name and color
// their series.
package chart

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Series is a named run of numbers, one per day.
type Series struct {
	Name   string
	Color  color.Color
	Values []float64
}

// Panel is one chart of a figure.
type Panel struct {
	Title  string
	YLabel string
	Series []Series
}

// Figure is two panels over the same days: Stacked draws its series as
// areas stacked in their order, the first at the bottom; Bars draws its
// series as bars side by side for each day (as step lines past 92 days,
// where bars would be a pixel wide).
type Figure struct {
	Title   string
	Period  string // under the title, e.g. "2026-01-01 to 2026-01-31 (UTC days)"
	Days    []time.Time
	Stacked Panel
	Bars    Panel
}

// The figure's size: readable on a laptop screen and in a document
// without scaling, 1056 × 960 pixels as PNG.
const (
	width   = 11 * vg.Inch
	height  = 10 * vg.Inch
	dpi     = 96
	legendW = 1.6 * vg.Inch // the legends' column, right of the panels
	headerH = 0.75 * vg.Inch
)

// maxBarDays is the longest run of days drawn as bars; longer ones are
// drawn as lines.
const maxBarDays = 92

// MaxDays bounds a figure, as reports bound their periods.
const MaxDays = 366

// The figure's text: Liberation Sans (gonum/plot's own fonts, compiled in,
// so output is the same on every machine).
func sans(size vg.Length) font.Font {
	return font.Font{Typeface: "Liberation", Variant: "Sans", Size: size}
}

// PNG writes the figure as a PNG image.
func (f Figure) PNG(w io.Writer) error { return writePNG(w, f.draw) }

// SVG writes the figure as an SVG document, its text as text (fonts named,
// not embedded: a viewer uses its own Liberation Sans or a fallback).
func (f Figure) SVG(w io.Writer) error { return writeSVG(w, f.draw) }

// writePNG draws a figure of the one size with fn and writes it as PNG.
func writePNG(w io.Writer, fn func(draw.Canvas) error) error {
	c := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(color.White))
	if err := fn(draw.New(c)); err != nil {
		return err
	}
	_, err := vgimg.PngCanvas{Canvas: c}.WriteTo(w)
	return err
}

// writeSVG draws a figure of the one size with fn and writes it as SVG.
func writeSVG(w io.Writer, fn func(draw.Canvas) error) error {
	c := vgsvg.NewWith(vgsvg.UseWH(width, height))
	if err := fn(draw.New(c)); err != nil {
		return err
	}
	_, err := c.WriteTo(w)
	return err
}

func (f Figure) check() error {
	n := len(f.Days)
	if n == 0 || n > MaxDays {
		return fmt.Errorf("chart: %d days, want 1 to %d", n, MaxDays)
	}
	for _, p := range []Panel{f.Stacked, f.Bars} {
		if len(p.Series) == 0 {
			return errors.New("chart: a panel without series")
		}
		for _, s := range p.Series {
			if len(s.Values) != n {
				return fmt.Errorf("chart: series %q has %d values for %d days", s.Name, len(s.Values), n)
			}
			for _, v := range s.Values {
				if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
					return fmt.Errorf("chart: series %q has the value %v", s.Name, v)
				}
			}
		}
	}
	return nil
}

func (f Figure) draw(dc draw.Canvas) error {
	if err := f.check(); err != nil {
		return err
	}
	header(dc, f.Title, f.Period)

	stacked, stackedLegend, err := f.stacked()
	if err != nil {
		return err
	}
	bars, barsLegend, err := f.bars()
	if err != nil {
		return err
	}
	// Both panels share the x axis: Align gives them the same left edge,
	// so a day is at the same place in each.
	body := draw.Crop(dc, 0, -legendW, 0, -headerH)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: 0.1 * vg.Inch, PadBottom: 0.15 * vg.Inch, PadLeft: 0.15 * vg.Inch, PadRight: 0.1 * vg.Inch, PadY: 0.35 * vg.Inch}
	canvases := plot.Align([][]*plot.Plot{{stacked}, {bars}}, tiles, body)
	for i, l := range []*plot.Legend{stackedLegend, barsLegend} {
		pc := canvases[i][0]
		[]*plot.Plot{stacked, bars}[i].Draw(pc)
		legendBeside(dc, pc, l)
	}
	return nil
}

// header writes a figure's title and period, centered at its top.
func header(dc draw.Canvas, title, period string) {
	st := text.Style{Color: color.Black, Font: sans(18), XAlign: draw.XCenter, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
	sub := st
	sub.Font, sub.Color = sans(12), color.Gray{Y: 0x44}
	mid := (dc.Min.X + dc.Max.X) / 2
	dc.FillText(st, vg.Point{X: mid, Y: dc.Max.Y - 0.2*vg.Inch}, title)
	dc.FillText(sub, vg.Point{X: mid, Y: dc.Max.Y - 0.5*vg.Inch}, period)
}

// legendBeside draws l in the legends' column of dc, level with the
// plotting area of panel pc (below the panel's title).
func legendBeside(dc, pc draw.Canvas, l *plot.Legend) {
	lc := draw.Canvas{Canvas: dc.Canvas, Rectangle: vg.Rectangle{
		Min: vg.Point{X: dc.Max.X - legendW + 0.1*vg.Inch, Y: pc.Min.Y},
		Max: vg.Point{X: dc.Max.X - 0.1*vg.Inch, Y: pc.Max.Y - 0.45*vg.Inch},
	}}
	l.Draw(lc)
}

// emptyNote writes note (such as "nothing in this period") across pl at
// x, rather than leave an empty frame to puzzle over.
func emptyNote(pl *plot.Plot, x float64, note string) {
	l, err := plotter.NewLabels(plotter.XYLabels{
		XYs:    plotter.XYs{{X: x, Y: 0.5}},
		Labels: []string{note},
	})
	if err == nil {
		l.TextStyle[0].Font = sans(14)
		l.TextStyle[0].Color = color.Gray{Y: 0x77}
		l.TextStyle[0].XAlign = draw.XCenter
		pl.Add(l)
	}
}

// newPlot is a panel's plot: title, axes over the days, counts from 0 to
// a little above max.
func (f Figure) newPlot(p Panel, max float64) *plot.Plot {
	return panelPlot(p, "day (UTC)", len(f.Days), max, dayTicks(f.Days), "nothing in this period")
}

func newLegend() *plot.Legend {
	l := plot.NewLegend()
	l.Top, l.Left = true, true
	l.TextStyle.Font = sans(11)
	l.ThumbnailWidth = 0.25 * vg.Inch
	l.Padding = 0.04 * vg.Inch
	return &l
}

// stacked is the areas panel: each series a band from the sum of those
// before it to that plus its own, a step per day (each day's count holds
// for the whole day, so one day alone is still a visible block).
func (f Figure) stacked() (*plot.Plot, *plot.Legend, error) {
	n := len(f.Days)
	base := make([]float64, n)
	top := make([]float64, n)
	var bands []*plotter.Polygon
	for _, s := range f.Stacked.Series {
		for i, v := range s.Values {
			top[i] = base[i] + v
		}
		ring := make(plotter.XYs, 0, 4*n)
		for i := range n {
			ring = append(ring, plotter.XY{X: float64(i) - 0.5, Y: top[i]}, plotter.XY{X: float64(i) + 0.5, Y: top[i]})
		}
		for i := n - 1; i >= 0; i-- {
			ring = append(ring, plotter.XY{X: float64(i) + 0.5, Y: base[i]}, plotter.XY{X: float64(i) - 0.5, Y: base[i]})
		}
		band, err := plotter.NewPolygon(ring)
		if err != nil {
			return nil, nil, fmt.Errorf("chart: %w", err)
		}
		band.Color = s.Color
		band.LineStyle.Width = 0
		bands = append(bands, band)
		copy(base, top)
	}
	pl := f.newPlot(f.Stacked, maxOf(top))
	l := newLegend()
	// Drawn bottom first; listed top first, as they are stacked.
	for _, b := range bands {
		pl.Add(b)
	}
	for i := len(bands) - 1; i >= 0; i-- {
		l.Add(f.Stacked.Series[i].Name, bands[i])
	}
	return pl, l, nil
}

// bars is the bars panel: for each day, a bar per series side by side.
func (f Figure) bars() (*plot.Plot, *plot.Legend, error) {
	n := len(f.Days)
	var highest float64
	for _, s := range f.Bars.Series {
		highest = math.Max(highest, maxOf(s.Values))
	}
	pl := f.newPlot(f.Bars, highest)
	l := newLegend()
	if n > maxBarDays {
		// Bars of a pixel, side by side, blend into one colour: past a
		// quarter, each series is a step line over the days instead.
		for _, s := range f.Bars.Series {
			pts := make(plotter.XYs, n)
			for i, v := range s.Values {
				pts[i] = plotter.XY{X: float64(i), Y: v}
			}
			line, err := plotter.NewLine(pts)
			if err != nil {
				return nil, nil, fmt.Errorf("chart: %w", err)
			}
			line.StepStyle = plotter.MidStep
			line.Color = s.Color
			line.Width = 1.2
			pl.Add(line)
			l.Add(s.Name, line)
		}
		return pl, l, nil
	}
	// A day's slot of the plotting area's width (the figure's less the
	// legends, the y axis and padding), 80% of it filled by the group.
	slot := (width - legendW - 1.1*vg.Inch) / vg.Length(n)
	w := max(slot*0.8/vg.Length(len(f.Bars.Series)), 0.5)
	for i, s := range f.Bars.Series {
		b, err := plotter.NewBarChart(plotter.Values(s.Values), w)
		if err != nil {
			return nil, nil, fmt.Errorf("chart: %w", err)
		}
		b.Color = s.Color
		b.LineStyle.Width = 0
		b.Offset = (vg.Length(i) - vg.Length(len(f.Bars.Series)-1)/2) * w
		pl.Add(b)
		l.Add(s.Name, b)
	}
	return pl, l, nil
}

func maxOf(v []float64) float64 {
	var m float64
	for _, x := range v {
		m = math.Max(m, x)
	}
	return m
}

// dayTicks labels the x axis (day i at i) with dates: every day for two
// weeks at most, then every second day, every Monday, and past 14 weeks
// the first of each month; unlabelled ticks mark the days between while
// they are few enough to tell apart.
type dayTicks []time.Time

func (d dayTicks) Ticks(lo, hi float64) []plot.Tick {
	n := len(d)
	var ticks []plot.Tick
	for i, day := range d {
		x := float64(i)
		if x < lo || x > hi {
			continue
		}
		var label string
		switch {
		case n <= 14:
			label = day.Format("Jan 2")
		case n <= 31:
			if i%2 == 0 {
				label = day.Format("Jan 2")
			}
		case n <= 98:
			if day.Weekday() == time.Monday {
				label = day.Format("Jan 2")
			}
		default:
			if day.Day() == 1 {
				label = day.Format("Jan")
				if day.Month() == time.January {
					label = day.Format("Jan 2006")
				}
			}
		}
		if label == "" && n > 98 {
			continue // no minor tick per day on a long period: a blur
		}
		ticks = append(ticks, plot.Tick{Value: x, Label: label})
	}
	return ticks
}

// countTicks are gonum/plot's default ticks labelled as whole numbers,
// fractions left unlabelled: counts are whole numbers.
type countTicks struct{}

func (countTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		ticks[i].Label = ""
		if t.Value == math.Trunc(t.Value) && (i == 0 || t.Label != "") {
			ticks[i].Label = strconv.FormatFloat(t.Value, 'f', 0, 64)
		}
	}
	return ticks
}
