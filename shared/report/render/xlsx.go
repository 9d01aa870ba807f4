// Package render writes the report formats whose libraries only
// build-report should link: a tasks export as an xlsx spreadsheet
// (excelize) and a status summary's charts (shared/chart, gonum/plot).
// The report package reaches them through report.Renderers, which
// build-report and the dev runner fill with Formats(); the API functions,
// which link the report package too, stay without them (about 9 MB of
// binary).
package render

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/taskfn/taskfn/shared/report"
	"github.com/taskfn/taskfn/shared/task"
)

// Formats are the renderers of this package, for report.WorkerConfig.
func Formats() report.Renderers {
	return report.Renderers{Sheet: NewSheet, Figure: Figure, Analytics: Analytics}
}

// xlsxColumns are the CSV's columns, in its order, then what the JSON lines
// add that a spreadsheet reader filters on.
var xlsxColumns = append(report.CSVColumns(), "archived", "archived_at", "recurrence", "recurrence_tz", "series_id")

// xlsxTimeFormat shows the UTC times of the date columns; the cells hold
// Excel date numbers, so they sort and filter as dates.
const xlsxTimeFormat = "yyyy-mm-dd hh:mm:ss"

// xlsxMaxRows is the most tasks one sheet holds: Excel's row limit less
// the header.
const xlsxMaxRows = excelize.TotalRows - 1

// xlsxSheet is the one sheet's name.
const xlsxSheet = "Tasks"

// tempCheckRows is how often the encoder looks at its temporary files'
// size: a directory listing per this many rows costs nothing beside them.
const tempCheckRows = 4096

// Sheet writes an export as a spreadsheet with excelize's
// StreamWriter: rows go to a temporary file (past excelize's 16 MiB
// buffer), not memory, and at the end the workbook is zipped straight into
// out, the report's chunks, so memory stays flat. The temporary files
// live in a directory of the build's own, bounded by maxTemp and removed
// by close whatever happened.
//
// Strings are written as inline strings and formulas only when asked
// (excelize.Cell.Formula, never used here): a title such as =cmd|'/C calc'!A0
// is text in the cell, so the CSV's quote prefix is not needed and not
// added.
type Sheet struct {
	out     io.Writer
	dir     string
	maxTemp int64
	f       *excelize.File
	sw      *excelize.StreamWriter
	date    int // the style of date cells
	rows    int // tasks written
	vals    []any
	release func() // of the memory limit held while building
}

// NewSheet starts an xlsx export into out, its temporary files in a
// directory of its own under tempDir ("": the system's), failing the
// export past maxTemp bytes of them.
func NewSheet(out io.Writer, tempDir string, maxTemp int64) (_ report.SheetWriter, err error) {
	dir, err := os.MkdirTemp(tempDir, "report-xlsx-")
	if err != nil {
		// A read-only or missing temporary directory: a configuration
		// error, retried by the next delivery rather than failing the
		// report (excelize would quietly keep the rows in memory).
		return nil, fmt.Errorf("report: xlsx: temporary directory: %w", err)
	}
	e := &Sheet{out: out, dir: dir, maxTemp: maxTemp, vals: make([]any, len(xlsxColumns)), release: holdMemoryLimit(xlsxMemoryLimit)}
	defer func() {
		if err != nil {
			_ = e.Close()
		}
	}()
	e.f = excelize.NewFile(excelize.Options{TmpDir: dir})
	if err := e.f.SetSheetName("Sheet1", xlsxSheet); err != nil {
		return nil, fmt.Errorf("report: xlsx: %w", err)
	}
	fmtCode := xlsxTimeFormat
	if e.date, err = e.f.NewStyle(&excelize.Style{CustomNumFmt: &fmtCode}); err != nil {
		return nil, fmt.Errorf("report: xlsx: %w", err)
	}
	head, err := e.f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}, Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"DDEBF7"}}})
	if err != nil {
		return nil, fmt.Errorf("report: xlsx: %w", err)
	}
	if e.sw, err = e.f.NewStreamWriter(xlsxSheet); err != nil {
		return nil, fmt.Errorf("report: xlsx: %w", err)
	}
	// Widths and panes come before the first row (StreamWriter's order).
	// Set from the last column back: excelize puts each new one first, and
	// Excel wants them in ascending order.
	for i, c := range slices.Backward(xlsxColumns) {
		width := 14.0
		switch c {
		case "id", "series_id":
			width = 38
		case "title", "description":
			width = 40
		case "due_at", "created_at", "updated_at", "archived_at":
			width = 20
		}
		if err := e.sw.SetColWidth(i+1, i+1, width); err != nil {
			return nil, fmt.Errorf("report: xlsx: %w", err)
		}
	}
	if err := e.sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return nil, fmt.Errorf("report: xlsx: %w", err)
	}
	header := make([]any, len(xlsxColumns))
	for i, c := range xlsxColumns {
		header[i] = excelize.Cell{StyleID: head, Value: c}
	}
	if err := e.sw.SetRow("A1", header); err != nil {
		return nil, fmt.Errorf("report: xlsx: %w", err)
	}
	return e, nil
}

// Encode writes t as the next row.
func (e *Sheet) Encode(t *task.Task) error {
	if e.rows == xlsxMaxRows {
		return report.CannotBuild(fmt.Sprintf("a spreadsheet holds at most %d tasks; narrow the filters or ask for csv", xlsxMaxRows))
	}
	if e.rows%tempCheckRows == 0 {
		if err := e.checkTemp(); err != nil {
			return err
		}
	}
	labels, err := json.Marshal(nonNil(t.Labels))
	if err != nil {
		return err
	}
	v := e.vals
	v[0] = t.ID.String()
	v[1] = t.Title
	v[2] = t.Description
	v[3] = string(t.Status)
	v[4] = string(t.Priority)
	v[5] = e.time(t.DueAt)
	v[6] = t.OwnerID
	v[7] = nilOr(t.AssigneeID)
	v[8] = string(labels)
	v[9] = e.time(&t.CreatedAt)
	v[10] = e.time(&t.UpdatedAt)
	v[11] = t.Version
	v[12] = t.Project
	v[13] = t.Archived
	v[14] = e.time(t.ArchivedAt)
	v[15] = nilOr(t.Recurrence)
	v[16] = t.RecurrenceTZ
	v[17] = nil
	if t.SeriesID != nil {
		v[17] = t.SeriesID.String()
	}
	cell, err := excelize.CoordinatesToCellName(1, e.rows+2)
	if err != nil {
		return err
	}
	if err := e.sw.SetRow(cell, v); err != nil {
		return fmt.Errorf("report: xlsx: %w", err)
	}
	e.rows++
	return nil
}

// time is an instant as a date cell (a nil one leaves the cell empty).
func (e *Sheet) time(t *time.Time) any {
	if t == nil {
		return nil
	}
	return excelize.Cell{StyleID: e.date, Value: t.UTC()}
}

func nilOr(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// checkTemp fails the export once its temporary files outgrow maxTemp.
func (e *Sheet) checkTemp() error {
	entries, err := os.ReadDir(e.dir)
	if err != nil {
		return fmt.Errorf("report: xlsx: %w", err)
	}
	var size int64
	for _, d := range entries {
		if info, err := d.Info(); err == nil {
			size += info.Size()
		}
	}
	if size > e.maxTemp {
		return report.CannotBuild(fmt.Sprintf("the spreadsheet needs more than %d MiB of temporary disk, the most a build may use; narrow the filters or ask for csv", e.maxTemp>>20))
	}
	return nil
}

// Flush ends the sheet (autofilter over every row written) and writes the
// workbook into out. excelize zips into a buffer it holds whole; its
// SetZipWriter hook gives it a zip writer on out instead, so the buffer
// stays empty and the zip streams into the chunks.
func (e *Sheet) Flush() error {
	last, err := excelize.CoordinatesToCellName(len(xlsxColumns), e.rows+1)
	if err != nil {
		return err
	}
	if err := e.f.AutoFilter(xlsxSheet, "A1:"+last, nil); err != nil {
		return fmt.Errorf("report: xlsx: %w", err)
	}
	if err := e.sw.Flush(); err != nil {
		return fmt.Errorf("report: xlsx: %w", err)
	}
	if err := e.checkTemp(); err != nil {
		return err
	}
	e.f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return zip.NewWriter(e.out) })
	if _, err := e.f.WriteTo(io.Discard); err != nil {
		return fmt.Errorf("report: xlsx: %w", err)
	}
	return nil
}

// Close removes the temporary files.
func (e *Sheet) Close() error {
	defer e.release()
	var err error
	if e.f != nil {
		err = e.f.Close()
	}
	return errors.Join(err, os.RemoveAll(e.dir))
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
