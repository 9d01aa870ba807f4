package task

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
)

// reflectTask has Task's fields and tags but not its MarshalJSON, so
// encoding/json encodes it by reflection: the reference AppendJSON must
// match byte for byte.
type reflectTask Task

func referenceJSON(t *testing.T, tk Task) []byte {
	t.Helper()
	if tk.Labels == nil {
		tk.Labels = []string{}
	}
	if tk.Reminders == nil {
		tk.Reminders = []string{}
	}
	if tk.RecurrenceTZ == "" {
		tk.RecurrenceTZ = DefaultRecurrenceTZ
	}
	if tk.Fields == nil {
		tk.Fields = map[string]json.RawMessage{}
	}
	want, err := json.Marshal(reflectTask(tk))
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	due := time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.FixedZone("", 5*3600+1800))
	whole := time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)
	assignee := `ann "the <boss>" & co`
	empty := ""
	rule := "FREQ=WEEKLY;BYDAY=MO<>&"
	series := uuid.MustParse("0192f0c4-1d2e-7a3b-8c4d-5e6f70819204")
	tests := []struct {
		name string
		task Task
		// lossy: invalid UTF-8 becomes U+FFFD, so decoding does not give
		// the same task back.
		lossy bool
	}{
		{"zero", Task{}, false},
		{"typical", Task{
			ID: uuid.MustParse("0192f0c4-1d2e-7a3b-8c4d-5e6f70819203"), Title: "Write the report",
			Description: "by Friday", Status: StatusInProgress, Priority: PriorityHigh, DueAt: &due,
			OwnerID: "4f1c9a2e-owner", AssigneeID: &assignee, Labels: []string{"backend", "q3"},
			Recurrence: &rule, RecurrenceTZ: "Europe/Berlin", Reminders: []string{"-P1D", "-PT1H"}, SeriesID: &series,
			Fields: map[string]json.RawMessage{
				"severity": json.RawMessage(`"7"`), "points": json.RawMessage(`3.5`), "done <ok>": json.RawMessage(`true`),
				"tags": json.RawMessage(`["1","2"]`), "note": json.RawMessage(`"a <b> & c"`),
			},
			CreatedAt: whole, UpdatedAt: due, Version: 42,
		}, false},
		{"nil labels are []", Task{Title: "x", Labels: nil}, false},
		{"empty assignee", Task{AssigneeID: &empty, Labels: []string{""}}, false},
		{"escapes", Task{Title: "quote \" backslash \\ slash / tab \t nl \n cr \r bs \b ff \f nul \x00 us \x1f del \x7f",
			Description: "<script>alert('&amp;')</script>"}, false},
		{"unicode", Task{Title: "ünïcödé ✓ 日本語 🚀", Description: "line\u2028para\u2029end", Labels: []string{"\u2028"}}, false},
		{"invalid utf-8", Task{Title: "bad \xff\xfe byte", Description: "cut \xe2\x82", Labels: []string{"\xc0\xaf"}}, true},
		{"negative version and far dates", Task{Version: -1, CreatedAt: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), UpdatedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := referenceJSON(t, tt.task)
			if got := tt.task.AppendJSON(nil); !bytes.Equal(got, want) {
				t.Errorf("AppendJSON:\n got %s\nwant %s", got, want)
			}
			// Through encoding/json, as events and tests encode tasks.
			if got, err := json.Marshal(tt.task); err != nil || !bytes.Equal(got, want) {
				t.Errorf("json.Marshal: %v\n got %s\nwant %s", err, got, want)
			}
			// And back: what the API writes decodes to the same task.
			var back Task
			if err := json.Unmarshal(want, &back); err != nil {
				t.Fatal(err)
			}
			if again := back.AppendJSON(nil); !bytes.Equal(again, want) && !tt.lossy {
				t.Errorf("round trip:\n got %s\nwant %s", again, want)
			}
		})
	}
}

// A page encodes as the list route's body: its items as tasks encode,
// and its cursor, or null on the last page.
func TestPageAppendJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	a := Task{ID: uuid.MustParse("0192f0c4-1d2e-7a3b-8c4d-5e6f70819203"), Title: "a", Labels: []string{"x"}, CreatedAt: at}
	b := Task{ID: uuid.MustParse("0192f0c4-1d2e-7a3b-8c4d-5e6f70819204"), Title: "b \"quoted\"", CreatedAt: at.Add(-time.Second)}
	cursor := &Cursor{CreatedAt: b.CreatedAt, ID: b.ID}
	tests := []struct {
		name string
		page Page
	}{
		{"empty", Page{Items: []Task{}}},
		{"nil items", Page{}},
		{"last page", Page{Items: []Task{a, b}}},
		{"more to come", Page{Items: []Task{a, b}, Next: cursor}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ref := struct {
				Items []Task  `json:"items"`
				Next  *string `json:"next_cursor"`
			}{Items: tt.page.Items}
			if ref.Items == nil {
				ref.Items = []Task{}
			}
			if tt.page.Next != nil {
				c := tt.page.Next.Encode()
				ref.Next = &c
			}
			want, err := json.Marshal(ref)
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.page.AppendJSON([]byte("prefix")); !bytes.Equal(got, append([]byte("prefix"), want...)) {
				t.Errorf("AppendJSON:\n got %s\nwant prefix%s", got, want)
			}
		})
	}
}

// FuzzAppendJSON checks AppendJSON against encoding/json on arbitrary
// strings, the only free-form part of a task.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\/\b\f\n\r\t\x00\x1f\x7f", "<>&", "\u2028\u2029", "\xff\xfe", "\xe2\x82", "日本語🚀"} {
		f.Add(s, s, s)
	}
	f.Fuzz(func(t *testing.T, title, description, label string) {
		tk := Task{Title: title, Description: description, OwnerID: label, AssigneeID: &label, Labels: []string{label, title}}
		want := referenceJSON(t, tk)
		if got := tk.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("AppendJSON:\n got %q\nwant %q", got, want)
		}
	})
}

func BenchmarkEncodeTasks(b *testing.B) {
	due := time.Now()
	assignee := "user-42"
	tasks := make([]Task, 50)
	for i := range tasks {
		tasks[i] = Task{ID: uuid.New(), Title: "Prepare the quarterly report", Description: "Collect the numbers from finance and write the summary",
			Status: StatusTodo, Priority: PriorityHigh, DueAt: &due, OwnerID: "user-7", AssigneeID: &assignee,
			Labels: []string{"frontend", "bug"}, CreatedAt: due, UpdatedAt: due, Version: 3}
	}
	b.Run("encoding/json", func(b *testing.B) {
		plain := make([]reflectTask, len(tasks))
		for i, t := range tasks {
			plain[i] = reflectTask(t)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(plain); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = append(buf[:0], '[')
			for i := range tasks {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = tasks[i].AppendJSON(buf)
			}
			buf = append(buf, ']')
		}
	})
}
