package task_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/activity"
	"github.com/taskfn/taskfn/shared/task"
)

// TestActivity: every change writes its history line, with each changed
// field's old and new value; a change that changes nothing writes none.
func TestActivity(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	hist, err := activity.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Primary.Exec(ctx, `INSERT INTO projects (key, name, created_by) VALUES ('web', 'Web', 'x')`); err != nil {
		t.Fatal(err)
	}
	d := draft("alice", "Plan")
	d.AssigneeID, d.Labels = ptr("bob"), []string{"q4"}
	tk, err := s.Create(ctx, "alice", d)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		actor  string
		change func(*task.Task)
	}{
		{"bob", func(t *task.Task) { t.Title, t.Status = "Plan it", task.StatusInProgress }},
		{"alice", func(t *task.Task) { t.Labels = []string{"q4"} }}, // no change
		{"alice", func(t *task.Task) { t.Project, t.AssigneeID = "web", nil }},
	}
	for _, st := range steps {
		if _, err := s.Update(ctx, st.actor, tk.ID, func(cur task.Task) (task.Task, error) { st.change(&cur); return cur, nil }); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	after := uuid.Nil
	for {
		page, more, err := hist.List(ctx, tk.ID, after, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			var cs []string
			for _, c := range e.Changes {
				cs = append(cs, fmt.Sprintf("%s:%s>%s", c.Field, c.Old, c.New))
			}
			got = append(got, fmt.Sprintf("%s %s [%s]", e.Actor, e.Kind, strings.Join(cs, " ")))
		}
		if !more {
			break
		}
		after = page[len(page)-1].ID
	}
	want := []string{
		`alice updated [project:"~alice">"web" assignee_id:"bob">null]`,
		`bob updated [title:"Plan">"Plan it" status:"todo">"in_progress"]`,
		`alice created [project:null>"~alice" title:null>"Plan" status:null>"todo" priority:null>"medium" assignee_id:null>"bob" labels:null>["q4"]]`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Purged with the task.
	if _, err := s.Trash(ctx, "alice", tk.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx, "alice", tk.ID, func(task.Trashed) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if page, _, err := hist.List(ctx, tk.ID, uuid.Nil, 10); err != nil || len(page) != 0 {
		t.Fatalf("history of a deleted task: %v %v", page, err)
	}
}

// TestActivityCommitsWithTheChange kills a write's connection between its
// statements (the task row changed, its history line not yet written) and
// checks that neither is there: the change and its history commit together
// or not at all.
func TestActivityCommitsWithTheChange(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	tk, err := s.Create(ctx, "alice", draft("alice", "atomic"))
	if err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name string
		run  func() error
	}{
		{"update", func() error {
			_, err := s.Update(context.Background(), "bob", tk.ID, func(cur task.Task) (task.Task, error) {
				cur.Title = "half done"
				return cur, nil
			})
			return err
		}},
		{"create", func() error {
			_, err := s.Create(context.Background(), "bob", draft("bob", "half made"))
			return err
		}},
	}
	for _, op := range ops {
		// Hold the history table so the write blocks on its second
		// statement, the first one done.
		blocker, err := db.Primary.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := blocker.Exec(ctx, "LOCK TABLE task_activity IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- op.run() }()
		var pid int
		deadline := time.Now().Add(10 * time.Second)
		for pid == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the write never waited on its history line", op.name)
			}
			_ = db.Primary.QueryRow(ctx, `
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO task_activity%'`).Scan(&pid)
			time.Sleep(5 * time.Millisecond)
		}
		if _, err := db.Primary.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err == nil {
			t.Fatalf("%s: the write succeeded on a killed connection", op.name)
		}
		if err := blocker.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cur, err := s.GetPrimary(ctx, tk.ID)
	if err != nil || cur.Title != "atomic" || cur.Version != tk.Version {
		t.Fatalf("the task after the killed update: %+v %v", cur, err)
	}
	var tasks, lines int
	if err := db.Primary.QueryRow(ctx, `SELECT (SELECT count(*) FROM tasks), (SELECT count(*) FROM task_activity)`).Scan(&tasks, &lines); err != nil {
		t.Fatal(err)
	}
	if tasks != 1 || lines != 1 {
		t.Fatalf("%d tasks and %d history lines, want 1 and 1 (the first create's)", tasks, lines)
	}
	var changes json.RawMessage
	if err := db.Primary.QueryRow(ctx, `SELECT changes FROM task_activity`).Scan(&changes); err != nil || !strings.Contains(string(changes), `"atomic"`) {
		t.Fatalf("the remaining line %s %v", changes, err)
	}
}
