package loadgen

import (
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// Report is the printed outcome of a load run: what ran where, one row
// per scenario with its ratio to its ceiling, and the targets.
type Report struct {
	Title string
	// About are "label: text" lines describing the machine and the run.
	About [][2]string
	// CPUGroups orders the columns of the CPU table, printed when the
	// results carry CPU times.
	CPUGroups []string
	rows      []row
	targets   []target
}

type row struct {
	Result
	ceiling *Result
}

type target struct {
	name, got string
	pass      bool
}

// Add appends a scenario; ceiling, if not nil, is what its rate is
// divided by.
func (r *Report) Add(res Result, ceiling *Result) { r.rows = append(r.rows, row{res, ceiling}) }

// Check records a target and whether it was met; got is the figure.
func (r *Report) Check(name string, pass bool, got string) {
	r.targets = append(r.targets, target{name: name, got: got, pass: pass})
}

// Passed reports whether every target was met.
func (r *Report) Passed() bool {
	for _, t := range r.targets {
		if !t.pass {
			return false
		}
	}
	return true
}

// Ratio is res's rate over ceiling's, 0 if the ceiling did nothing.
func Ratio(res, ceiling Result) float64 {
	if c := ceiling.Rate(); c > 0 {
		return res.Rate() / c
	}
	return 0
}

// Ms formats a duration in milliseconds with two decimals.
func Ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}

// cpuTable is one row per scenario with CPU times: its CPU per request
// in each group, then in all. Nil when no result has CPU times.
func (r *Report) cpuTable() [][]string {
	var cells [][]string
	for _, rw := range r.rows {
		if rw.CPU == nil {
			continue
		}
		if cells == nil {
			cells = [][]string{append(append([]string{"scenario"}, r.CPUGroups...), "all")}
		}
		line := []string{rw.Name}
		var all time.Duration
		for _, g := range r.CPUGroups {
			d := rw.CPUPerRequest(g)
			all += d
			line = append(line, strconv.FormatInt(d.Microseconds(), 10))
		}
		cells = append(cells, append(line, strconv.FormatInt(all.Microseconds(), 10)))
	}
	return cells
}

// writeTable aligns names left and figures right; with lastLeft the last
// column is a name too.
func writeTable(b *strings.Builder, cells [][]string, lastLeft bool) {
	width := make([]int, len(cells[0]))
	for _, c := range cells {
		for i, v := range c {
			width[i] = max(width[i], utf8.RuneCountInString(v))
		}
	}
	for _, c := range cells {
		line := fmt.Sprintf("%-*s", width[0], c[0])
		last := len(c)
		if lastLeft {
			last--
		}
		for i := 1; i < last; i++ {
			line += fmt.Sprintf("  %*s", width[i], c[i])
		}
		if lastLeft {
			line += "  " + c[len(c)-1]
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
}

// WriteTo prints the report: the title, the About lines, the table, the
// first error of each scenario that had errors, then one PASS or FAIL line
// per target.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	b.WriteString(r.Title + "\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, a := range r.About {
		fmt.Fprintf(tw, "%s\t%s\n", a[0], a[1])
	}
	tw.Flush()
	b.WriteString("\n")
	// Names align left, figures right.
	cells := [][]string{{"scenario", "req/s", "p50", "p99", "errors", "ratio", "of ceiling"}}
	for _, rw := range r.rows {
		ratio, of := "", ""
		if rw.ceiling != nil {
			ratio, of = strconv.FormatFloat(Ratio(rw.Result, *rw.ceiling), 'f', 2, 64), rw.ceiling.Name
		}
		cells = append(cells, []string{rw.Name, strconv.FormatFloat(rw.Rate(), 'f', 0, 64),
			Ms(rw.Latency.Quantile(0.50)), Ms(rw.Latency.Quantile(0.99)), strconv.FormatInt(rw.Errors, 10), ratio, of})
	}
	writeTable(&b, cells, true)
	if cpu := r.cpuTable(); cpu != nil {
		b.WriteString("\nCPU per request, µs, by process (the machine has " + strconv.Itoa(runtime.NumCPU()) + " CPUs)\n")
		writeTable(&b, cpu, false)
	}
	for _, rw := range r.rows {
		if rw.FirstError != nil {
			fmt.Fprintf(&b, "first error of %s: %v\n", rw.Name, rw.FirstError)
		}
	}
	if len(r.targets) > 0 {
		b.WriteString("\ntargets\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, t := range r.targets {
			verdict := "FAIL"
			if t.pass {
				verdict = "PASS"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", verdict, t.name, t.got)
		}
		tw.Flush()
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}
