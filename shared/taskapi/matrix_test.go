package taskapi

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/taskfn/taskfn/shared/task"
)

// TestAuthorizationMatrix runs every route for every role against a task the
// caller owns, is assigned, or is a stranger to.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	store, err := task.NewStore(e.db)
	if err != nil {
		t.Fatal(err)
	}
	const other, third = "zoe-member", "yan-member"
	// seed stores a task directly, so even a no-role caller can "own" one.
	seed := func(t *testing.T, caller, relation string) task.Task {
		t.Helper()
		tk := task.Task{Title: "matrix", Status: task.StatusTodo, Priority: task.PriorityLow, Labels: []string{}}
		switch relation {
		case "owner":
			tk.OwnerID = caller
		case "assignee":
			tk.OwnerID, tk.AssigneeID = other, &caller
		case "stranger":
			tk.OwnerID, tk.AssigneeID = other, ptr(third)
		}
		got, err := store.Create(context.Background(), "", tk)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	type op struct {
		name string
		run  func(t *testing.T, who string, tk task.Task) int
	}
	patch := func(body map[string]any) func(t *testing.T, who string, tk task.Task) int {
		return func(t *testing.T, who string, tk task.Task) int {
			return e.do(req{method: "PATCH", path: "/tasks/" + tk.ID.String(), as: who, body: body}).status
		}
	}
	ops := []op{
		{"get", func(t *testing.T, who string, tk task.Task) int {
			return e.do(req{method: "GET", path: "/tasks/" + tk.ID.String(), as: who}).status
		}},
		// list answers 200 when the task is in the caller's list, 404 when
		// it is left out (whatever the filters), 403 without a role.
		{"list", func(t *testing.T, who string, tk task.Task) int {
			p, r := e.list(who, "limit=200&owner_id="+tk.OwnerID)
			if r.status != 200 {
				return r.status
			}
			if slices.ContainsFunc(p.Items, func(x task.Task) bool { return x.ID == tk.ID }) {
				return 200
			}
			return 404
		}},
		{"patch status", patch(map[string]any{"status": "done"})},
		{"patch title", patch(map[string]any{"title": "changed"})},
		{"reassign", patch(map[string]any{"assignee_id": "someone-else"})},
		{"delete", func(t *testing.T, who string, tk task.Task) int {
			return e.do(req{method: "DELETE", path: "/tasks/" + tk.ID.String(), as: who}).status
		}},
	}
	// want[role][relation] lists the statuses of ops in order.
	want := map[string]map[string][]int{
		alice: {"owner": {200, 200, 200, 200, 200, 204}, "assignee": {200, 200, 200, 200, 200, 204}, "stranger": {200, 200, 200, 200, 200, 204}},
		bob:   {"owner": {200, 200, 200, 200, 200, 204}, "assignee": {200, 200, 200, 200, 200, 403}, "stranger": {200, 200, 200, 200, 200, 403}},
		carol: {"owner": {200, 200, 200, 200, 200, 204}, "assignee": {200, 200, 200, 403, 403, 403}, "stranger": {404, 404, 404, 404, 404, 404}},
		eve:   {"owner": {403, 403, 403, 403, 403, 403}, "assignee": {403, 403, 403, 403, 403, 403}, "stranger": {403, 403, 403, 403, 403, 403}},
	}
	for _, who := range []string{alice, bob, carol, eve} {
		for _, rel := range []string{"owner", "assignee", "stranger"} {
			for i, o := range ops {
				t.Run(fmt.Sprintf("%s/%s/%s", who, rel, o.name), func(t *testing.T) {
					t.Parallel()
					tk := seed(t, who, rel)
					got := o.run(t, who, tk)
					if w := want[who][rel][i]; got != w {
						t.Fatalf("status %d, want %d", got, w)
					}
					// A refused change leaves the task as it was.
					after, err := store.Get(context.Background(), tk.ID)
					if got >= 400 && (err != nil || after.Version != tk.Version) {
						t.Errorf("refused %s changed the task: %v %+v", o.name, err, after)
					}
				})
			}
		}
	}
	// Creating: every role but none.
	for who, status := range map[string]int{alice: 201, bob: 201, carol: 201, eve: 403} {
		t.Run(who+"/create", func(t *testing.T) {
			t.Parallel()
			if r := e.do(req{method: "POST", path: "/tasks", as: who, body: map[string]any{"title": "new", "assignee_id": dave}}); r.status != status {
				t.Fatalf("status %d, want %d", r.status, status)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
