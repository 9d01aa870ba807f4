package task_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/task"
)

// A limit stops both the count and the rows at the limit, oldest first,
// with the filters' placeholders numbered before its own.
func TestExportLimit(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	var alices []uuid.UUID // oldest first
	for i, owner := range []string{"alice", "bob", "alice", "alice", "bob", "alice"} {
		tk, err := s.Create(ctx, "", draft(owner, "t"+string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		if owner == "alice" {
			alices = append(alices, tk.ID)
		}
	}
	tests := []struct {
		name      string
		q         task.ExportQuery
		limit     int64
		wantTotal int64
		want      int // the first want of alice's tasks
	}{
		{"no limit", task.ExportQuery{Only: own("alice")}, 0, 4, 4},
		{"under the selection", task.ExportQuery{Only: own("alice")}, 3, 3, 3},
		{"exactly the selection", task.ExportQuery{Only: own("alice")}, 4, 4, 4},
		{"beyond the selection", task.ExportQuery{Only: own("alice")}, 10, 4, 4},
		{"after several filters", task.ExportQuery{Only: own("alice"), OwnerID: "alice", Statuses: []task.Status{task.StatusTodo}}, 2, 2, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var total int64 = -1
			var got []uuid.UUID
			opts := task.ExportOptions{Limit: tc.limit, Total: func(n int64) error { total = n; return nil }}
			err := s.Export(ctx, tc.q, opts, func(tk *task.Task) error { got = append(got, tk.ID); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if total != tc.wantTotal {
				t.Errorf("total %d, want %d", total, tc.wantTotal)
			}
			if d := cmp.Diff(alices[:tc.want], got); d != "" {
				t.Errorf("rows (-want +got):\n%s", d)
			}
		})
	}
}
