package taskapi

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/task"
)

// listPage is what GET /tasks answers.
type listPage struct {
	Items      []task.Task `json:"items"`
	NextCursor *string     `json:"next_cursor"`
}

func (e *env) list(who, query string) (listPage, reply) {
	e.t.Helper()
	r := e.do(req{method: "GET", path: "/tasks?" + query, as: who})
	var p listPage
	if r.status == 200 {
		r.decode(e.t, &p)
	}
	return p, r
}

func titles(ts []task.Task) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Title
	}
	return out
}

func TestList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Created in this order, so newest first is the reverse.
	e.create(carol, map[string]any{"title": "c1 alpha", "status": "todo", "labels": []string{"ops"}, "due_at": "2026-12-01T00:00:00Z"})
	e.create(carol, map[string]any{"title": "c2 beta", "status": "done", "description": "deploy the gateway"})
	e.create(dave, map[string]any{"title": "d1 gamma", "status": "todo", "labels": []string{"ops"}})
	e.create(bob, map[string]any{"title": "b1 for carol", "status": "in_progress", "assignee_id": carol, "due_at": "2027-03-01T00:00:00Z"})
	e.create(carol, map[string]any{"title": "c3 self", "status": "blocked", "assignee_id": carol})
	e.create(dave, map[string]any{"title": "d2 for carol", "status": "todo", "assignee_id": carol, "labels": []string{"ops", "ui"}})

	tests := []struct {
		name  string
		as    string
		query url.Values
		want  []string
	}{
		{"admin sees all, newest first", alice, nil, []string{"d2 for carol", "c3 self", "b1 for carol", "d1 gamma", "c2 beta", "c1 alpha"}},
		{"manager sees all, oldest first", bob, url.Values{"sort": {"created_at"}}, []string{"c1 alpha", "c2 beta", "d1 gamma", "b1 for carol", "c3 self", "d2 for carol"}},
		{"member sees owned and assigned once", carol, nil, []string{"d2 for carol", "c3 self", "b1 for carol", "c2 beta", "c1 alpha"}},
		{"other member", dave, nil, []string{"d2 for carol", "d1 gamma"}},
		{"no-role caller is refused before listing", eve, nil, nil},
		{"one status", alice, url.Values{"status": {"todo"}}, []string{"d2 for carol", "d1 gamma", "c1 alpha"}},
		{"several statuses", carol, url.Values{"status": {"todo,blocked"}}, []string{"d2 for carol", "c3 self", "c1 alpha"}},
		{"repeated status", alice, url.Values{"status": {"done", "blocked"}}, []string{"c3 self", "c2 beta"}},
		{"owner filter cannot widen a member's view", carol, url.Values{"owner_id": {dave}}, []string{"d2 for carol"}},
		{"owner filter", alice, url.Values{"owner_id": {dave}}, []string{"d2 for carol", "d1 gamma"}},
		{"assignee filter", bob, url.Values{"assignee_id": {carol}}, []string{"d2 for carol", "c3 self", "b1 for carol"}},
		{"label", alice, url.Values{"label": {"ops"}}, []string{"d2 for carol", "d1 gamma", "c1 alpha"}},
		{"label for a member", dave, url.Values{"label": {"ui"}}, []string{"d2 for carol"}},
		{"due before", alice, url.Values{"due_before": {"2027-01-01T00:00:00Z"}}, []string{"c1 alpha"}},
		{"due after", alice, url.Values{"due_after": {"2027-03-01T00:00:00Z"}}, []string{"b1 for carol"}},
		{"full text in description", alice, url.Values{"q": {"gateway"}}, []string{"c2 beta"}},
		{"full text stems", alice, url.Values{"q": {"deploying"}}, []string{"c2 beta"}},
		{"full text respects visibility", dave, url.Values{"q": {"gateway"}}, []string{}},
		{"filters combine", alice, url.Values{"status": {"todo"}, "label": {"ops"}, "owner_id": {dave}}, []string{"d2 for carol", "d1 gamma"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, r := e.list(tc.as, tc.query.Encode())
			if tc.as == eve {
				if r.status != 403 {
					t.Fatalf("status %d, want 403", r.status)
				}
				return
			}
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if d := cmp.Diff(tc.want, titles(p.Items)); d != "" {
				t.Errorf("titles (-want +got):\n%s", d)
			}
			if p.NextCursor != nil {
				t.Errorf("next_cursor %q on a single page", *p.NextCursor)
			}
		})
	}
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var all []uuid.UUID
	for range 7 {
		all = append(all, e.create(carol, map[string]any{"title": "page me"}).ID)
	}
	tests := []struct {
		name  string
		sort  string
		limit string
		pages int
	}{
		{"newest first by 3", "", "3", 3},
		{"oldest first by 3", "created_at", "3", 3},
		{"exact multiple", "-created_at", "7", 1},
		{"one by one", "created_at", "1", 7},
		{"larger than all", "", "200", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var seen []uuid.UUID
			cursor, pages := "", 0
			for {
				v := url.Values{"limit": {tc.limit}}
				if tc.sort != "" {
					v.Set("sort", tc.sort)
				}
				if cursor != "" {
					v.Set("cursor", cursor)
				}
				p, r := e.list(carol, v.Encode())
				if r.status != 200 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				pages++
				for _, it := range p.Items {
					seen = append(seen, it.ID)
				}
				if p.NextCursor == nil {
					break
				}
				if len(p.Items) == 0 {
					t.Fatal("empty page with a next_cursor")
				}
				cursor = *p.NextCursor
			}
			want := slices.Clone(all)
			if tc.sort != "created_at" {
				slices.Reverse(want)
			}
			if d := cmp.Diff(want, seen); d != "" {
				t.Errorf("ids over all pages (-want +got):\n%s", d)
			}
			if pages != tc.pages {
				t.Errorf("%d pages, want %d", pages, tc.pages)
			}
		})
	}
}

// TestListConcurrentBodies: list bodies are built in recycled buffers, so
// many lists at once, of pages of different sizes, must each get their own
// page whole (under -race, a buffer shared while in use is also reported).
func TestListConcurrentBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	want := map[string][]string{}
	for i, st := range []string{"todo", "done", "blocked"} {
		for j := range 3 * (i + 1) {
			// Pages of different lengths: 3, 6 and 9 tasks, longer texts.
			title := fmt.Sprintf("%s %d", st, j)
			e.create(carol, map[string]any{"title": title, "status": st, "description": strings.Repeat("x", 1000*i)})
			want[st] = append([]string{title}, want[st]...) // newest first
		}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 30 {
				st := []string{"todo", "done", "blocked"}[(w+i)%3]
				p, r := e.list(carol, "status="+st)
				if r.status != 200 {
					t.Errorf("status %d: %s", r.status, r.body)
					return
				}
				if d := cmp.Diff(want[st], titles(p.Items)); d != "" {
					t.Errorf("status=%s (-want +got):\n%s", st, d)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestListBadParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create(carol, map[string]any{"title": "one"})
	e.create(carol, map[string]any{"title": "two"})
	p, _ := e.list(carol, "limit=1")
	if p.NextCursor == nil {
		t.Fatal("want a cursor")
	}
	descCursor := *p.NextCursor
	tests := []struct{ name, query string }{
		{"unknown status", "status=later"},
		{"empty status item", "status=todo,"},
		{"limit zero", "limit=0"},
		{"limit too big", "limit=201"},
		{"limit not a number", "limit=ten"},
		{"limit twice", "limit=1&limit=2"},
		{"bad sort", "sort=title"},
		{"garbage cursor", "cursor=%21%21"},
		{"forged cursor", "cursor=eyJ0IjoxfQ"},
		{"cursor of the other order", "sort=created_at&cursor=" + url.QueryEscape(descCursor)},
		{"bad due_before", "due_before=yesterday"},
		{"bad due_after", "due_after=2026-13-01"},
		{"empty q", "q="},
		{"unknown parameter", "colour=red"},
		{"typo of a filter", "owner=someone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, r := e.list(carol, tc.query)
			if r.status != 400 {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			if p := r.problem(t); p.Detail == "" {
				t.Error("a 400 without detail")
			}
		})
	}
}

// A query string that does not parse is refused, not read in part:
// url.Values drops the pairs it cannot parse, which answered these as if
// the query were empty (or shorter).
func TestListMalformedQuery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create(carol, map[string]any{"title": "one"})
	tests := []struct{ name, query, detail string }{
		{"semicolon separator", "sort=title;drop%20table%20tasks", "separated by &"},
		{"semicolon after a valid pair", "limit=1;limit=2", "separated by &"},
		{"bad escape in a value", "q=100%", "written %25"},
		{"bad escape in a key", "li%zzmit=1", "written %25"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, r := e.list(carol, tc.query)
			if r.status != 400 {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			if p := r.problem(t); !strings.Contains(p.Detail, "query string") || !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail %q, want one about the query string saying %q", p.Detail, tc.detail)
			}
		})
	}
}
