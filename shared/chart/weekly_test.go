package chart_test

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/taskfn/taskfn/shared/chart"
)

// weekly is a fixed weekly figure of weeks weeks and categories
// assignees: a throughput that rises and falls, a cycle time with a gap
// every fifth week, open work stacked by three statuses.
func weekly(weeks, categories int, empty bool) chart.Weekly {
	f := chart.Weekly{
		Title:  "Project web",
		Period: "2026-01-05 to 2026-04-05 (UTC days)",
		XLabel: "ISO week (UTC), its Monday", CategoryLabel: "assignee",
		Throughput: chart.Panel{Title: "Throughput: tasks done per week", YLabel: "tasks", Series: []chart.Series{
			{Name: "done", Color: color.RGBA{0x22, 0xc5, 0x5e, 0xff}},
		}},
		Cycle: chart.Panel{Title: "Median cycle time", YLabel: "days", Series: []chart.Series{
			{Name: "median", Color: color.RGBA{0x63, 0x66, 0xf1, 0xff}},
		}},
		Open: chart.Panel{Title: "Open tasks now, by assignee and status", YLabel: "tasks", Series: []chart.Series{
			{Name: "blocked", Color: color.RGBA{0xef, 0x44, 0x44, 0xff}},
			{Name: "in_progress", Color: color.RGBA{0x3b, 0x82, 0xf6, 0xff}},
			{Name: "todo", Color: color.RGBA{0xfa, 0xcc, 0x15, 0xff}},
		}},
	}
	for i := range weeks {
		f.Weeks = append(f.Weeks, fmt.Sprintf("W%02d", i+1))
		done, cycle := float64(5+(i*7)%11), 1.5+float64(i%4)*0.75
		if i%5 == 4 {
			cycle = math.NaN()
		}
		if empty {
			done, cycle = 0, math.NaN()
		}
		f.Throughput.Series[0].Values = append(f.Throughput.Series[0].Values, done)
		f.Cycle.Series[0].Values = append(f.Cycle.Series[0].Values, cycle)
	}
	if empty {
		categories = 0
	}
	for i := range categories {
		f.Categories = append(f.Categories, fmt.Sprintf("person-%d", i+1))
		for s := range f.Open.Series {
			f.Open.Series[s].Values = append(f.Open.Series[s].Values, float64((i+s*3)%5+s))
		}
	}
	for s := range f.Open.Series {
		if f.Open.Series[s].Values == nil {
			f.Open.Series[s].Values = []float64{}
		}
	}
	return f
}

var weeklyCases = []struct {
	name              string
	weeks, categories int
	empty             bool
}{
	{"weekly-quarter", 13, 11, false},
	{"weekly-year", chart.MaxWeeks, 4, false},
	{"weekly-empty", 4, 0, true},
}

// Each fixed weekly figure's PNG matches its golden image.
func TestWeeklyPNG(t *testing.T) {
	t.Parallel()
	for _, tc := range weeklyCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := weekly(tc.weeks, tc.categories, tc.empty).PNG(&buf); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.name, buf.Bytes())
		})
	}
}

// The weekly SVG carries the title, period, panel titles, axes, legends
// and category names as text; an empty one says so.
func TestWeeklySVG(t *testing.T) {
	t.Parallel()
	for _, tc := range weeklyCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := weekly(tc.weeks, tc.categories, tc.empty)
			var buf bytes.Buffer
			if err := f.SVG(&buf); err != nil {
				t.Fatal(err)
			}
			all := svgTexts(t, &buf)
			want := []string{f.Title, f.Period, f.Throughput.Title, f.Cycle.Title, f.Open.Title, f.XLabel, f.CategoryLabel, "W01", "days"}
			for _, s := range append(append(f.Throughput.Series, f.Cycle.Series...), f.Open.Series...) {
				want = append(want, s.Name)
			}
			want = append(want, f.Categories...)
			if tc.empty {
				want = append(want, "nothing done in this period", "no open tasks")
			}
			for _, w := range want {
				if !strings.Contains(all, w) {
					t.Errorf("no text %q in the SVG", w)
				}
			}
		})
	}
}

// A weekly figure the charts cannot show is refused.
func TestWeeklyRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*chart.Weekly)
	}{
		{"no weeks", func(f *chart.Weekly) { *f = weekly(0, 3, false) }},
		{"too many weeks", func(f *chart.Weekly) { *f = weekly(chart.MaxWeeks+1, 3, false) }},
		{"too many categories", func(f *chart.Weekly) { *f = weekly(4, chart.MaxCategories+1, false) }},
		{"a NaN throughput", func(f *chart.Weekly) { f.Throughput.Series[0].Values[1] = math.NaN() }},
		{"a negative cycle time", func(f *chart.Weekly) { f.Cycle.Series[0].Values[0] = -1 }},
		{"a series short of categories", func(f *chart.Weekly) { f.Open.Series[1].Values = f.Open.Series[1].Values[1:] }},
		{"two throughput series", func(f *chart.Weekly) {
			f.Throughput.Series = append(f.Throughput.Series, f.Throughput.Series[0])
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := weekly(6, 3, false)
			tc.edit(&f)
			if err := f.PNG(io.Discard); err == nil {
				t.Error("drawn")
			}
			if err := f.SVG(io.Discard); err == nil {
				t.Error("drawn as SVG")
			}
		})
	}
}
