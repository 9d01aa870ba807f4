package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"testing"

	"github.com/taskfn/taskfn/shared/field"
	"github.com/taskfn/taskfn/shared/task"
)

// TestCSVFieldColumns: a column per custom field after the built-in ones,
// headed by its name; options by name, a formula-like text neutralised,
// no value an empty cell, and a value found by name whatever its case
// (an export of several projects has a column per name).
func TestCSVFieldColumns(t *testing.T) {
	t.Parallel()
	fields := []field.Definition{
		{ID: 1, Name: "points", Type: field.Number},
		{ID: 2, Name: "severity", Type: field.Select, Options: []field.Option{{ID: "o1", Name: "High"}}},
		{ID: 3, Name: "tags", Type: field.MultiSelect, Options: []field.Option{{ID: "a", Name: "A"}, {ID: "b", Name: "B"}}},
		{ID: 4, Name: "note", Type: field.Text},
		{ID: 5, Name: "ok", Type: field.Checkbox},
	}
	var out bytes.Buffer
	enc := newCSVEncoder(&out, fields)
	tk := task.Task{Title: "t", Fields: map[string]json.RawMessage{
		"Points": json.RawMessage(`2.5`), "severity": json.RawMessage(`"o1"`), "tags": json.RawMessage(`["a","b"]`), "note": json.RawMessage(`"=1+1"`),
	}}
	if err := enc.encode(&tk); err != nil {
		t.Fatal(err)
	}
	if err := enc.flush(); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&out).ReadAll()
	if err != nil || len(recs) != 2 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	n := len(csvColumns)
	if head := recs[0][n:]; !slices.Equal(head, []string{"points", "severity", "tags", "note", "ok"}) {
		t.Errorf("header %q", head)
	}
	if row := recs[1][n:]; !slices.Equal(row, []string{"2.5", "High", "A, B", "'=1+1", ""}) {
		t.Errorf("row %q", row)
	}
}
