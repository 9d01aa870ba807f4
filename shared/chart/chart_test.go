package chart_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taskfn/taskfn/shared/chart"
)

var update = flag.Bool("update", false, "rewrite the golden images in testdata")

// figure is a fixed figure of days days from 2026-01-01: tasks by status
// growing and flowing to done, and what was created and completed.
func figure(days int, empty bool) chart.Figure {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := chart.Figure{
		Title:  "Status summary",
		Period: start.Format(time.DateOnly) + " to " + start.AddDate(0, 0, days-1).Format(time.DateOnly) + " (UTC days)",
		Stacked: chart.Panel{Title: "Cumulative flow: tasks by status at the end of each day", YLabel: "tasks", Series: []chart.Series{
			{Name: "done", Color: color.RGBA{0x22, 0xc5, 0x5e, 0xff}},
			{Name: "cancelled", Color: color.RGBA{0xa8, 0xa2, 0x9e, 0xff}},
			{Name: "blocked", Color: color.RGBA{0xef, 0x44, 0x44, 0xff}},
			{Name: "in_progress", Color: color.RGBA{0x3b, 0x82, 0xf6, 0xff}},
			{Name: "todo", Color: color.RGBA{0xfa, 0xcc, 0x15, 0xff}},
		}},
		Bars: chart.Panel{Title: "Created and completed per day", YLabel: "tasks", Series: []chart.Series{
			{Name: "created", Color: color.RGBA{0x63, 0x66, 0xf1, 0xff}},
			{Name: "completed", Color: color.RGBA{0x22, 0xc5, 0x5e, 0xff}},
		}},
	}
	for i := range days {
		f.Days = append(f.Days, start.AddDate(0, 0, i))
		x := float64(i)
		vals := []float64{x * 3, math.Floor(x / 4), float64(i % 3), 5 + float64(i%7), 20 + x/2, 3 + float64(i%5), 2 + float64(i%4)}
		if empty {
			vals = make([]float64, len(vals))
		}
		for s := range f.Stacked.Series {
			f.Stacked.Series[s].Values = append(f.Stacked.Series[s].Values, vals[s])
		}
		for s := range f.Bars.Series {
			f.Bars.Series[s].Values = append(f.Bars.Series[s].Values, vals[5+s])
		}
	}
	return f
}

var cases = []struct {
	name  string
	days  int
	empty bool
}{
	{"month", 31, false},
	{"year", 366, false},
	{"one-day", 1, false},
	{"empty", 30, true},
}

// The PNG of each fixed figure matches its golden image in testdata, but
// for a few pixels (font rasterisation may differ by a shade across
// versions); go test -run TestPNG -update rewrites them.
func TestPNG(t *testing.T) {
	t.Parallel()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := figure(tc.days, tc.empty).PNG(&buf); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.name, buf.Bytes())
		})
	}
}

// checkGolden compares PNG image b with testdata/<name>.png, but for a few
// pixels (font rasterisation may differ by a shade across versions); with
// -update it rewrites the golden image first.
func checkGolden(t *testing.T, name string, b []byte) {
	t.Helper()
	golden := filepath.Join("testdata", name+".png")
	if *update {
		if err := os.WriteFile(golden, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	defer f.Close()
	want, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if got.Bounds() != want.Bounds() {
		t.Fatalf("size %v, want %v", got.Bounds(), want.Bounds())
	}
	if n, total := differing(got, want), got.Bounds().Dx()*got.Bounds().Dy(); n > total/1000 {
		t.Errorf("%d of %d pixels differ from %s (at most %d may)", n, total, golden, total/1000)
	}
}

// differing counts the pixels of a and b whose channels differ by more
// than a shade.
func differing(a, b image.Image) int {
	var n int
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			if far(r1, r2) || far(g1, g2) || far(b1, b2) {
				n++
			}
		}
	}
	return n
}

func far(x, y uint32) bool { return max(x, y)-min(x, y) > 0x1000 }

// The SVG is well-formed XML and carries the title, the period, the
// panels' titles and every legend entry as text.
func TestSVG(t *testing.T) {
	t.Parallel()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := figure(tc.days, tc.empty)
			var buf bytes.Buffer
			if err := f.SVG(&buf); err != nil {
				t.Fatal(err)
			}
			all := svgTexts(t, &buf)
			want := []string{f.Title, f.Period, f.Stacked.Title, f.Bars.Title, "day (UTC)"}
			for _, s := range append(f.Stacked.Series, f.Bars.Series...) {
				want = append(want, s.Name)
			}
			for _, w := range want {
				if !strings.Contains(all, w) {
					t.Errorf("no text %q in the SVG", w)
				}
			}
		})
	}
}

// svgTexts returns the text of every <text> element of the SVG document r
// holds, a line each, failing t if it is not well-formed XML.
func svgTexts(t *testing.T, r io.Reader) string {
	t.Helper()
	var texts []string
	dec := xml.NewDecoder(r)
	var inText bool
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			inText = tok.Name.Local == "text"
		case xml.CharData:
			if inText {
				texts = append(texts, string(tok))
			}
		case xml.EndElement:
			inText = false
		}
	}
	return strings.Join(texts, "\n")
}

// A figure the charts cannot show is refused, not drawn wrong.
func TestRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*chart.Figure)
	}{
		{"no days", func(f *chart.Figure) { f.Days = nil }},
		{"too many days", func(f *chart.Figure) { *f = figure(chart.MaxDays+1, false) }},
		{"a series short of days", func(f *chart.Figure) { f.Bars.Series[0].Values = f.Bars.Series[0].Values[1:] }},
		{"a negative count", func(f *chart.Figure) { f.Stacked.Series[2].Values[3] = -1 }},
		{"a panel without series", func(f *chart.Figure) { f.Bars.Series = nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := figure(10, false)
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
