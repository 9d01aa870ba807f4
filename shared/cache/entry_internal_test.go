package cache

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskfn/taskfn/shared/task"
)

func TestEntryEncoding(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	tests := []struct {
		name string
		task task.Task
	}{
		{"assigned", task.Task{Project: "alice", AssigneeID: str("bob"), Version: 7, Title: "x"}},
		{"unassigned", task.Task{Project: "alice", Version: 1}},
		{"empty assignee", task.Task{Project: "alice", AssigneeID: str(""), Version: 2}},
		{"keys and subjects with spaces, digits and dashes", task.Task{Project: "~12 - 3 ", AssigneeID: str("- 4 "), Version: 3}},
		{"unicode subjects", task.Task{Project: "~ünï ✓", AssigneeID: str("日本"), Version: 9, Title: "{ }"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := NewEntry(&tt.task)
			got, found, err := decode("gen1 " + encode(kindTask, want.Version, &want))
			if err != nil || !found {
				t.Fatalf("decode: found %t, %v", found, err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("round trip (-want +got):\n%s", d)
			}
		})
	}
}

func TestDecodeRejectsMalformedEntries(t *testing.T) {
	t.Parallel()
	for _, v := range []string{
		"", "gen", "gen U", "gen U 1", "gen U x 5 alice - {}", "gen U 1 5 alice", "gen U 1 9 alice - {}",
		"gen U 1 -1 alice - {}", "gen U 1 5 alice 3 bo {}", "gen U 1 5 alice - ", "gen U 1 5 alice - []",
		"gen Q 1 {}",
	} {
		if _, _, err := decode(v); !errors.Is(err, errCorrupt) {
			t.Errorf("decode(%q) = %v, want errCorrupt", v, err)
		}
	}
	for _, v := range []string{"gen N 0 ", "gen X 9223372036854775807 "} {
		if _, found, err := decode(v); err != nil || found {
			t.Errorf("decode(%q) = found %t, %v; want a negative entry", v, found, err)
		}
	}
}

// FuzzDecode: whatever Redis holds, decode errs or returns, never panics,
// and what it accepts encodes back to the same entry.
func FuzzDecode(f *testing.F) {
	e := NewEntry(&task.Task{Project: "alice", Version: 3})
	f.Add("g " + encode(kindTask, 3, &e))
	f.Add("g N 0 ")
	f.Add("g U 1 5 alice 3 bob {}")
	f.Fuzz(func(t *testing.T, v string) {
		got, found, err := decode(v)
		if err != nil || !found {
			return
		}
		again, _, err := decode("g " + encode(kindTask, got.Version, &got))
		if err != nil || !cmp.Equal(got, again) {
			t.Errorf("%q decoded to %+v, which does not survive a round trip (%v)", v, got, err)
		}
	})
}
