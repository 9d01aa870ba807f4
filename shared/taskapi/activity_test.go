package taskapi

import (
	"testing"
)

// TestActivityRoute: the history through the route, newest first and
// paged, to whoever sees the task; 404 to anyone else, and for no task.
func TestActivityRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tk := e.create(carol, map[string]any{"title": "history", "assignee_id": dave})
	path := "/tasks/" + tk.ID.String()
	private := e.create(carol, map[string]any{"title": "carol's alone"})
	for _, st := range []string{"in_progress", "blocked", "done"} {
		if r := e.do(req{method: "PATCH", path: path, as: dave, body: map[string]any{"status": st}}); r.status != 200 {
			t.Fatalf("patch: %d %s", r.status, r.body)
		}
	}
	type page struct {
		Items []struct {
			Actor, Kind string
			Changes     []struct {
				Field    string
				Old, New any
			}
		}
		Next *string `json:"next_cursor"`
	}
	var got []string
	cursor := ""
	for {
		r := e.do(req{method: "GET", path: path + "/activity?limit=3" + cursor, as: carol})
		if r.status != 200 {
			t.Fatalf("activity: %d %s", r.status, r.body)
		}
		var p page
		r.decode(t, &p)
		for _, it := range p.Items {
			line := it.Actor + " " + it.Kind
			if it.Kind == "updated" {
				line += " " + it.Changes[0].Field + " " + it.Changes[0].New.(string)
			}
			got = append(got, line)
		}
		if p.Next == nil {
			break
		}
		cursor = "&cursor=" + *p.Next
	}
	want := []string{dave + " updated status done", dave + " updated status blocked", dave + " updated status in_progress", carol + " created"}
	if len(got) != len(want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("history %v, want %v", got, want)
		}
	}
	for _, c := range []struct {
		as, path string
		status   int
	}{
		{alice, path + "/activity", 200},
		{bob, path + "/activity", 200},
		{dave, path + "/activity", 200}, // the assignee
		{dave, "/tasks/" + private.ID.String() + "/activity", 404},
		{eve, path + "/activity", 403},
		{carol, "/tasks/0190a4c2-7b1e-7c3d-9e4f-123456789abc/activity", 404},
		{carol, "/tasks/not-an-id/activity", 404},
		{carol, path + "/activity?cursor=x", 400},
		{carol, path + "/activity?sort=asc", 400},
	} {
		if r := e.do(req{method: "GET", path: c.path, as: c.as}); r.status != c.status {
			t.Errorf("GET %s as %s: %d, want %d (%s)", c.path, c.as, r.status, c.status, r.body)
		}
	}
}
