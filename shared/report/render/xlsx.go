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
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/xuri/excelize/v2"

	"github.com/taskfn/taskfn/shared/field"
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

// Sheet writes an export as a spreadsheet: excelize makes the workbook
// (styles, the sheet's columns, frozen header and autofilter, every part
// but the rows), and the rows are written here, as the sheet's XML, to a
// temporary file; at the end the workbook is zipped straight into out, the
// report's chunks, with the rows spliced into the sheet's part on the way
// (sheetSplicer). So memory holds a row and a 64 KiB buffer whatever the
// size: excelize's StreamWriter, used before, kept the sheet's last 16 MiB
// in a buffer that grew to 32 MiB, which put a million tasks at 104 MiB of
// RSS against the 64 (docs/reports.md). The temporary file lives
// in a directory of the build's own, bounded by maxTemp and removed by
// Close whatever happened.
//
// Strings are written as inline strings and never as formulas: a title
// such as =cmd|'/C calc'!A0 is text in the cell, so the CSV's quote prefix
// is not needed and not added.
type Sheet struct {
	out     io.Writer
	dir     string
	maxTemp int64
	f       *excelize.File
	tmp     *os.File           // the rows, as <row> elements
	w       *bufio.Writer      // on tmp
	date    int                // the style of date cells
	rows    int                // tasks written
	row     []byte             // the row being written, reused
	fields  []field.Definition // a column each, after xlsxColumns
}

// sheetPart is the one sheet's part in the package, as excelize names it.
const sheetPart = "xl/worksheets/sheet1.xml"

// NewSheet starts an xlsx export into out, its temporary files in a
// directory of its own under tempDir ("": the system's), failing the
// export past maxTemp bytes of them.
func NewSheet(out io.Writer, tempDir string, maxTemp int64, fields []field.Definition) (_ report.SheetWriter, err error) {
	if len(fields) > len(columnNames)-len(xlsxColumns) {
		return nil, report.CannotBuild(fmt.Sprintf("a spreadsheet export holds at most %d custom fields; narrow it to fewer projects or ask for csv", len(columnNames)-len(xlsxColumns)))
	}
	dir, err := os.MkdirTemp(tempDir, "report-xlsx-")
	if err != nil {
		// A read-only or missing temporary directory: a configuration
		// error, retried by the next delivery rather than failing the
		// report.
		return nil, fmt.Errorf("report: xlsx: temporary directory: %w", err)
	}
	e := &Sheet{out: out, dir: dir, maxTemp: maxTemp, fields: fields}
	defer func() {
		if err != nil {
			_ = e.Close()
		}
	}()
	if e.tmp, err = os.CreateTemp(dir, "rows-"); err != nil {
		return nil, fmt.Errorf("report: xlsx: temporary file: %w", err)
	}
	e.w = bufio.NewWriterSize(e.tmp, 64<<10)
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
	for i, c := range xlsxColumns {
		width := 14.0
		switch c {
		case "id", "series_id":
			width = 38
		case "title", "description":
			width = 40
		case "due_at", "created_at", "updated_at", "archived_at":
			width = 20
		}
		if err := e.f.SetColWidth(xlsxSheet, columnNames[i], columnNames[i], width); err != nil {
			return nil, fmt.Errorf("report: xlsx: %w", err)
		}
	}
	if err := e.f.SetPanes(xlsxSheet, &excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return nil, fmt.Errorf("report: xlsx: %w", err)
	}
	e.row = append(e.row[:0], `<row r="1">`...)
	for i, c := range xlsxColumns {
		e.row = appendText(e.row, i, 1, head, c)
	}
	for i, d := range fields {
		e.row = appendText(e.row, len(xlsxColumns)+i, 1, head, d.Name)
	}
	e.row = append(e.row, `</row>`...)
	if _, err := e.w.Write(e.row); err != nil {
		return nil, fmt.Errorf("report: xlsx: %w", err)
	}
	return e, nil
}

// columnNames are the sheet's column letters: A to R for the built-in
// columns, then room for the custom fields of a few projects.
var columnNames = func() []string {
	names := make([]string, len(xlsxColumns)+4*field.MaxPerProject)
	for i := range names {
		names[i], _ = excelize.ColumnNumberToName(i + 1)
	}
	return names
}()

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
	r := e.rows + 2
	b := append(e.row[:0], `<row r="`...)
	b = strconv.AppendInt(b, int64(r), 10)
	b = append(b, `">`...)
	b = appendText(b, 0, r, 0, t.ID.String())
	b = appendText(b, 1, r, 0, t.Title)
	b = appendText(b, 2, r, 0, t.Description)
	b = appendText(b, 3, r, 0, string(t.Status))
	b = appendText(b, 4, r, 0, string(t.Priority))
	b = e.appendTime(b, 5, r, t.DueAt)
	b = appendText(b, 6, r, 0, t.OwnerID)
	b = appendText(b, 7, r, 0, deref(t.AssigneeID))
	b = appendText(b, 8, r, 0, string(labels))
	b = e.appendTime(b, 9, r, &t.CreatedAt)
	b = e.appendTime(b, 10, r, &t.UpdatedAt)
	b = appendValue(b, 11, r, 0, "", strconv.FormatInt(t.Version, 10))
	b = appendText(b, 12, r, 0, t.Project)
	archived := "0"
	if t.Archived {
		archived = "1"
	}
	b = appendValue(b, 13, r, 0, "b", archived)
	b = e.appendTime(b, 14, r, t.ArchivedAt)
	b = appendText(b, 15, r, 0, deref(t.Recurrence))
	b = appendText(b, 16, r, 0, t.RecurrenceTZ)
	if t.SeriesID != nil {
		b = appendText(b, 17, r, 0, t.SeriesID.String())
	}
	for i, d := range e.fields {
		b = e.appendField(b, len(xlsxColumns)+i, r, d, report.FieldValue(t, d))
	}
	b = append(b, `</row>`...)
	e.row = b
	if _, err := e.w.Write(b); err != nil {
		return fmt.Errorf("report: xlsx: %w", err)
	}
	e.rows++
	return nil
}

// appendCellStart appends the start of cell (col, row): its reference,
// style (0: none) and type ("": a number).
func appendCellStart(b []byte, col, row, style int, typ string) []byte {
	b = append(b, `<c r="`...)
	b = append(b, columnNames[col]...)
	b = strconv.AppendInt(b, int64(row), 10)
	b = append(b, '"')
	if style != 0 {
		b = append(b, ` s="`...)
		b = strconv.AppendInt(b, int64(style), 10)
		b = append(b, '"')
	}
	if typ != "" {
		b = append(b, ` t="`...)
		b = append(b, typ...)
		b = append(b, '"')
	}
	return append(b, '>')
}

// appendValue appends a cell of type typ holding v, which needs no
// escaping (a number or a boolean's 0 or 1).
func appendValue(b []byte, col, row, style int, typ, v string) []byte {
	b = appendCellStart(b, col, row, style, typ)
	b = append(b, `<v>`...)
	b = append(b, v...)
	return append(b, `</v></c>`...)
}

// appendText appends an inline string cell holding s, escaped for XML
// (characters XML cannot hold become U+FFFD), cut at a cell's 32,767
// characters as Excel counts them (UTF-16 units), with its leading or
// trailing white space kept; an empty s is an empty cell, left out.
func appendText(b []byte, col, row, style int, s string) []byte {
	if s == "" {
		return b
	}
	s = cutCell(s)
	b = appendCellStart(b, col, row, style, "inlineStr")
	b = append(b, `<is><t`...)
	if strings.ContainsAny(s[:1], " \t\n\r") || strings.ContainsAny(s[len(s)-1:], " \t\n\r") {
		b = append(b, ` xml:space="preserve"`...)
	}
	b = append(b, '>')
	b = appendEscaped(b, s)
	return append(b, `</t></is></c>`...)
}

// cutCell cuts s to excelize.TotalCellChars UTF-16 units.
func cutCell(s string) string {
	if len(s) <= excelize.TotalCellChars { // never more units than bytes
		return s
	}
	units := 0
	for i, r := range s {
		n := utf16.RuneLen(r)
		if n < 0 {
			n = 1
		}
		if units+n > excelize.TotalCellChars {
			return s[:i]
		}
		units += n
	}
	return s
}

// escapeBuf is where appendEscaped has xml.EscapeText write.
type escapeBuf struct{ b []byte }

func (w *escapeBuf) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

// appendEscaped appends s escaped as XML text, as encoding/xml does:
// markup escaped, bytes that are not UTF-8 and characters XML cannot hold
// as U+FFFD. Printable ASCII without markup, most text, goes as it is.
func appendEscaped(b []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c >= 0x20 && c < 0x7f && c != '<' && c != '>' && c != '&' && c != '\'' && c != '"'
	}
	if plain {
		return append(b, s...)
	}
	w := escapeBuf{b}
	_ = xml.EscapeText(&w, []byte(s)) // cannot fail on escapeBuf
	return w.b
}

// appendTime appends an instant as a date cell: an Excel date number (days
// since 1899-12-30, UTC) in the date style; nil leaves the cell empty.
func (e *Sheet) appendTime(b []byte, col, row int, t *time.Time) []byte {
	if t == nil {
		return b
	}
	serial := float64(t.UTC().UnixMicro())/(24*3600*1e6) + excelUnixEpoch
	if serial < 61 { // before 1900-03-01, where Excel's calendar is off by its 1900 leap day
		serial = 0
	}
	return appendValue(b, col, row, e.date, "", strconv.FormatFloat(serial, 'f', -1, 64))
}

// appendField appends a custom field's value typed: a number as a
// number cell, a date or datetime as a date cell, a checkbox as a
// boolean, the rest as text (report.FieldText: options by name).
func (e *Sheet) appendField(b []byte, col, row int, d field.Definition, v json.RawMessage) []byte {
	if v == nil {
		return b
	}
	switch d.Type {
	case field.Number:
		if _, err := strconv.ParseFloat(string(v), 64); err == nil {
			return appendValue(b, col, row, 0, "", string(v))
		}
	case field.Checkbox:
		switch string(v) {
		case "true":
			return appendValue(b, col, row, 0, "b", "1")
		case "false":
			return appendValue(b, col, row, 0, "b", "0")
		}
	case field.Date, field.DateTime:
		var s string
		layout := field.DateLayout
		if d.Type == field.DateTime {
			layout = field.DateTimeLayout
		}
		if json.Unmarshal(v, &s) == nil {
			if t, err := time.Parse(layout, s); err == nil {
				return e.appendTime(b, col, row, &t)
			}
		}
	}
	return appendText(b, col, row, 0, report.FieldText(d, v))
}

// excelUnixEpoch is 1970-01-01 as an Excel date number.
const excelUnixEpoch = 25569

func deref(s *string) string {
	if s == nil {
		return ""
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
// workbook into out: excelize zips into a buffer it holds whole, so its
// SetZipWriter hook gives it a zip writer on out instead, which splices
// the rows into the sheet's part as it goes by.
func (e *Sheet) Flush() error {
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("report: xlsx: %w", err)
	}
	if err := e.checkTemp(); err != nil {
		return err
	}
	last := columnNames[len(xlsxColumns)+len(e.fields)-1] + strconv.Itoa(e.rows+1)
	if err := e.f.AutoFilter(xlsxSheet, "A1:"+last, nil); err != nil {
		return fmt.Errorf("report: xlsx: %w", err)
	}
	zw := &sheetSplicer{Writer: zip.NewWriter(e.out), rows: e.tmp, dimension: "A1:" + last}
	e.f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return zw })
	if _, err := e.f.WriteTo(io.Discard); err != nil {
		return fmt.Errorf("report: xlsx: %w", err)
	}
	return nil
}

// Close removes the temporary files.
func (e *Sheet) Close() error {
	var err error
	if e.tmp != nil {
		err = e.tmp.Close()
	}
	if e.f != nil {
		err = errors.Join(err, e.f.Close())
	}
	return errors.Join(err, os.RemoveAll(e.dir))
}

// sheetSplicer is the zip writer excelize writes the workbook with: every
// part goes through as excelize wrote it, but the sheet's, which excelize
// wrote with no rows, is held (a few KB) until the next part begins, and
// then written with the rows of the temporary file inside its sheetData
// and its dimension set to them.
type sheetSplicer struct {
	*zip.Writer
	rows      *os.File
	dimension string
	part      io.Writer     // the sheet's entry, once begun
	held      *bytes.Buffer // what excelize wrote of it
}

func (z *sheetSplicer) Create(name string) (io.Writer, error) {
	if err := z.splice(); err != nil {
		return nil, err
	}
	w, err := z.Writer.Create(name)
	if err != nil || name != sheetPart {
		return w, err
	}
	z.part, z.held = w, new(bytes.Buffer)
	return z.held, nil
}

func (z *sheetSplicer) Close() error {
	if err := z.splice(); err != nil {
		return err
	}
	if z.held == nil {
		return errors.New("report: xlsx: excelize wrote no sheet")
	}
	return z.Writer.Close()
}

// splice writes the held sheet with its rows, once.
func (z *sheetSplicer) splice() error {
	if z.part == nil {
		return nil
	}
	part := z.part
	z.part = nil
	x := z.held.Bytes()
	var before, after []byte
	for _, empty := range []string{"<sheetData/>", "<sheetData></sheetData>"} {
		if i := bytes.Index(x, []byte(empty)); i >= 0 {
			before, after = x[:i], x[i+len(empty):]
			break
		}
	}
	if before == nil {
		return errors.New("report: xlsx: the sheet excelize wrote has no empty sheetData")
	}
	if i := bytes.Index(before, []byte(`<dimension ref="`)); i >= 0 {
		if j := bytes.IndexByte(before[i+len(`<dimension ref="`):], '"'); j >= 0 {
			end := i + len(`<dimension ref="`) + j
			if _, err := fmt.Fprintf(part, "%s%s", before[:i+len(`<dimension ref="`)], z.dimension); err != nil {
				return err
			}
			before = before[end:]
		}
	}
	if _, err := part.Write(before); err != nil {
		return err
	}
	if _, err := io.WriteString(part, "<sheetData>"); err != nil {
		return err
	}
	if _, err := z.rows.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(part, z.rows); err != nil {
		return err
	}
	if _, err := io.WriteString(part, "</sheetData>"); err != nil {
		return err
	}
	_, err := part.Write(after)
	return err
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
