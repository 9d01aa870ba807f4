package render

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/taskfn/taskfn/shared/field"
	"github.com/taskfn/taskfn/shared/task"
)

// TestSheetFieldColumns: a column per custom field after the built-in
// ones, headed by its name, its cells typed: numbers, dates and booleans
// as such, options by name, the rest text.
func TestSheetFieldColumns(t *testing.T) {
	t.Parallel()
	fields := []field.Definition{
		{ID: 1, Name: "points", Type: field.Number},
		{ID: 2, Name: "start", Type: field.Date},
		{ID: 3, Name: "at", Type: field.DateTime},
		{ID: 4, Name: "ok", Type: field.Checkbox},
		{ID: 5, Name: "severity", Type: field.Select, Options: []field.Option{{ID: "o1", Name: "High"}}},
		{ID: 6, Name: "tags", Type: field.MultiSelect, Options: []field.Option{{ID: "a", Name: "A"}, {ID: "b", Name: "B"}}},
		{ID: 7, Name: "note", Type: field.Text},
	}
	var out bytes.Buffer
	s, err := NewSheet(&out, t.TempDir(), 1<<30, fields)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tk := task.Task{Title: "t", Status: task.StatusTodo, Priority: task.PriorityLow, Fields: map[string]json.RawMessage{
		"points": json.RawMessage(`2.5`), "start": json.RawMessage(`"2026-03-01"`), "at": json.RawMessage(`"2026-03-01T12:00:00.000000Z"`),
		"ok": json.RawMessage(`true`), "severity": json.RawMessage(`"o1"`), "tags": json.RawMessage(`["a","b"]`), "note": json.RawMessage(`"=1+1"`),
	}}
	if err := s.Encode(&tk); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	first := len(xlsxColumns)
	for i, tc := range []struct {
		head, value string
		typ         excelize.CellType
	}{
		// Numbers carry no type attribute (excelize: unset); dates are
		// numbers shown by the date style.
		{"points", "2.5", excelize.CellTypeUnset},
		{"start", "2026-03-01 00:00:00", excelize.CellTypeUnset},
		{"at", "2026-03-01 12:00:00", excelize.CellTypeUnset},
		{"ok", "TRUE", excelize.CellTypeBool},
		{"severity", "High", excelize.CellTypeInlineString},
		{"tags", "A, B", excelize.CellTypeInlineString},
		{"note", "=1+1", excelize.CellTypeInlineString}, // a string cell, never a formula
	} {
		col := columnNames[first+i]
		head, _ := f.GetCellValue(xlsxSheet, col+"1")
		typ, err := f.GetCellType(xlsxSheet, col+"2")
		if err != nil {
			t.Fatal(err)
		}
		v, _ := f.GetCellValue(xlsxSheet, col+"2")
		if head != tc.head || typ != tc.typ || (tc.value != "" && v != tc.value) {
			t.Errorf("column %s: head %q, cell %q of type %v; want %q, %q, %v", col, head, v, typ, tc.head, tc.value, tc.typ)
		}
	}
}
