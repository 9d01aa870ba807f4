package report_test

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/xuri/excelize/v2"

	"github.com/taskfn/taskfn/shared/apispec"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/report"
)

// An xlsx export read back with excelize: the header, one row per task,
// dates as date cells (numbers with a date format), numbers as numbers, a
// formula-looking title as plain text, the header frozen and filtered,
// and no temporary file left behind.
func TestExportXLSX(t *testing.T) {
	t.Parallel()
	cfg := smallChunks
	cfg.TempDir = t.TempDir()
	e := newEnv(t, cfg)
	ids := exportFixture(t, e)
	tok := e.token(t, "mgr", auth.RoleManager)
	id := e.request(t, tok, `{"kind":"tasks_export","format":"xlsx"}`)
	e.build(t, id)
	v := e.view(t, tok, id)
	if v.Status != report.StatusSucceeded || v.Rows == nil || *v.Rows != 5 {
		t.Fatalf("report %+v", v)
	}
	resp, body := httpxtest.Call(t, nil, "GET", e.url+v.ContentURL, tok, "")
	apispec.Check(t, "GET", v.ContentURL, resp, body)
	status, h := resp.StatusCode, resp.Header
	const xlsxType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	if status != 200 || h.Get("Content-Type") != xlsxType || v.ContentType != xlsxType ||
		h.Get("Content-Disposition") != `attachment; filename="tasks_export-`+id.String()+`.xlsx"` || *v.SizeBytes != int64(len(body)) {
		t.Fatalf("content: %d %v (%d bytes)", status, h, len(body))
	}
	if left, err := os.ReadDir(cfg.TempDir); err != nil || len(left) != 0 {
		t.Errorf("temporary files left: %v %v", left, err)
	}

	f, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); !cmp.Equal(got, []string{"Tasks"}) {
		t.Fatalf("sheets %v", got)
	}
	rows, err := f.GetRows("Tasks", excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := []string{"id", "title", "description", "status", "priority", "due_at", "owner_id", "assignee_id", "labels",
		"created_at", "updated_at", "version", "project", "archived", "archived_at", "recurrence", "recurrence_tz", "series_id"}
	if len(rows) != 6 || !cmp.Equal(rows[0], wantHeader) {
		t.Fatalf("%d rows, header %q", len(rows), rows[0])
	}
	want := fetchTasks(t, e, []uuid.UUID{ids["alice todo"], ids["alice formula"], ids["bob for alice"], ids["bob alone"], ids["carol"]})
	for i, tk := range want {
		r := i + 2
		cell := func(col string) string {
			t.Helper()
			s, err := f.GetCellValue("Tasks", col+strconv.Itoa(r), excelize.Options{RawCellValue: true})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		typ := func(col string) excelize.CellType {
			t.Helper()
			ct, err := f.GetCellType("Tasks", col+strconv.Itoa(r))
			if err != nil {
				t.Fatal(err)
			}
			return ct
		}
		if cell("A") != tk.ID.String() || cell("B") != tk.Title || cell("D") != string(tk.Status) || cell("M") != tk.Project {
			t.Errorf("row %d: %q", r, rows[i+1])
		}
		// Strings are inline strings, never formulas.
		if typ("B") != excelize.CellTypeInlineString {
			t.Errorf("row %d: title cell type %v", r, typ("B"))
		}
		if formula, err := f.GetCellFormula("Tasks", "B"+strconv.Itoa(r)); err != nil || formula != "" {
			t.Errorf("row %d: title is a formula %q (%v)", r, formula, err)
		}
		// created_at: a date number in the date format, the same instant.
		if typ("J") != excelize.CellTypeUnset && typ("J") != excelize.CellTypeNumber {
			t.Errorf("row %d: created_at cell type %v", r, typ("J"))
		}
		serial, err := strconv.ParseFloat(cell("J"), 64)
		if err != nil {
			t.Fatalf("row %d: created_at %q is not a number", r, cell("J"))
		}
		got, err := excelize.ExcelDateToTime(serial, false)
		if err != nil || got.Sub(tk.CreatedAt).Abs() > time.Millisecond {
			t.Errorf("row %d: created_at %v, want %v (%v)", r, got, tk.CreatedAt, err)
		}
		shown, err := f.GetCellValue("Tasks", "J"+strconv.Itoa(r))
		if err != nil || shown != tk.CreatedAt.UTC().Format(time.DateTime) {
			t.Errorf("row %d: created_at shown as %q, want %q", r, shown, tk.CreatedAt.UTC().Format(time.DateTime))
		}
		style, err := f.GetCellStyle("Tasks", "J"+strconv.Itoa(r))
		if err != nil {
			t.Fatal(err)
		}
		st, err := f.GetStyle(style)
		if err != nil || st.CustomNumFmt == nil || *st.CustomNumFmt != "yyyy-mm-dd hh:mm:ss" {
			t.Errorf("row %d: created_at style %+v (%v)", r, st, err)
		}
		if tk.DueAt == nil && cell("F") != "" {
			t.Errorf("row %d: no due date, but %q", r, cell("F"))
		}
		if cell("L") != strconv.FormatInt(tk.Version, 10) || typ("L") != excelize.CellTypeUnset && typ("L") != excelize.CellTypeNumber {
			t.Errorf("row %d: version %q (%v)", r, cell("L"), typ("L"))
		}
		if typ("N") != excelize.CellTypeBool || cell("N") != "0" {
			t.Errorf("row %d: archived %q (%v)", r, cell("N"), typ("N"))
		}
	}
	// The formula stays text: no <f> anywhere in the sheet.
	sheet := zipPart(t, body, "xl/worksheets/sheet1.xml")
	if strings.Contains(sheet, "<f>") || !strings.Contains(sheet, "=HYPERLINK(&#34;http://evil&#34;)") {
		t.Errorf("the formula-looking title is not plain text:\n%s", sheet)
	}
	panes, err := f.GetPanes("Tasks")
	if err != nil || !panes.Freeze || panes.YSplit != 1 || panes.XSplit != 0 || panes.TopLeftCell != "A2" {
		t.Errorf("panes %+v (%v)", panes, err)
	}
	// Column widths in ascending order (Excel refuses others), the id's
	// first.
	var mins []int
	for _, m := range regexp.MustCompile(`<col [^>]*\bmin="([0-9]+)"`).FindAllStringSubmatch(sheet, -1) {
		n, _ := strconv.Atoi(m[1])
		mins = append(mins, n)
	}
	if len(mins) == 0 || !slices.IsSorted(mins) || mins[0] != 1 || !regexp.MustCompile(`<cols><col [^>]*width="38"`).MatchString(sheet) {
		t.Errorf("columns %v not in ascending order (Excel refuses them):\n%.2000s", mins, sheet)
	}
	if !strings.Contains(sheet, `<autoFilter ref="$A$1:$R$6"`) {
		t.Errorf("no autofilter over A1:R6:\n%.2000s", sheet)
	}
}

// An empty xlsx export is its header, frozen and filtered.
func TestExportXLSXEmpty(t *testing.T) {
	t.Parallel()
	e := newEnv(t, smallChunks)
	tok := e.token(t, "nobody", auth.RoleMember)
	id := e.request(t, tok, `{"kind":"tasks_export","format":"xlsx"}`)
	e.build(t, id)
	_, _, body := e.call(t, "GET", "/reports/"+id.String()+"/content", tok, "")
	f, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows("Tasks")
	if err != nil || len(rows) != 1 || rows[0][0] != "id" {
		t.Fatalf("rows %q (%v)", rows, err)
	}
	if sheet := zipPart(t, body, "xl/worksheets/sheet1.xml"); !strings.Contains(sheet, `<autoFilter ref="$A$1:$R$1"`) {
		t.Errorf("no autofilter:\n%s", sheet)
	}
}

// An xlsx export whose temporary files outgrow the bound fails with a
// reason, and leaves nothing behind: 40,000 tasks need some 16 MiB of
// sheet, past the test's 1 MiB.
func TestExportXLSXTempBound(t *testing.T) {
	t.Parallel()
	cfg := smallChunks
	cfg.ChunkBytes = 1 << 20
	cfg.TempDir, cfg.TempMaxBytes = t.TempDir(), 1<<20
	e := newEnv(t, cfg)
	fill(t, e.db, 40_000)
	tok := e.token(t, "mgr", auth.RoleManager)
	id := e.request(t, tok, `{"kind":"tasks_export","format":"xlsx"}`)
	e.build(t, id)
	v := e.view(t, tok, id)
	if v.Status != report.StatusFailed || !strings.Contains(v.Error, "temporary disk") {
		t.Errorf("report %+v", v)
	}
	if left, err := os.ReadDir(cfg.TempDir); err != nil || len(left) != 0 {
		t.Errorf("temporary files left: %v %v", left, err)
	}
}

// zipPart is one part of a zip archive, as text.
func zipPart(t *testing.T, body []byte, name string) string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
