package taskapi

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/task"
)

// FuzzListQuery drives the list route's parsing of its query string
// (listQuery: httpx.Query, then parseList) with any raw query. What it
// refuses must be a 4xx; what it accepts must be a query the store can
// run: a page size List takes, known distinct statuses, a cursor of the
// order asked, and filter texts PostgreSQL can take (pg.TextOK), or the
// route answers 500 for the client's mistake.
func FuzzListQuery(f *testing.F) {
	desc := task.Cursor{CreatedAt: time.Date(2026, 5, 1, 10, 11, 12, 123456000, time.UTC), ID: uuid.MustParse("0190a4c2-7b1e-7c3d-9e4f-123456789abc")}
	asc := desc
	asc.Ascending = true
	for _, q := range []string{
		// Accepted (TestList, TestListPagination).
		"", "sort=created_at", "status=todo", "status=todo,blocked", "status=done&status=blocked",
		"owner_id=dave-member", "assignee_id=carol-member", "label=ops", "due_before=2027-01-01T00:00:00Z",
		"due_after=2027-03-01T00:00:00.5%2B02:00", "q=gateway", "q=%22quoted+phrase%22+-excluded+or+x",
		"status=todo&label=ops&owner_id=dave-member", "limit=3&cursor=" + desc.Encode(),
		"sort=created_at&limit=200&cursor=" + asc.Encode(), "status=+todo+,+done",
		// Refused (TestListBadParameters, TestListMalformedQuery).
		"status=later", "status=todo,", "limit=0", "limit=201", "limit=ten", "limit=1&limit=2", "sort=title",
		"cursor=%21%21", "cursor=eyJ0IjoxfQ", "sort=created_at&cursor=" + desc.Encode(), "due_before=yesterday",
		"due_after=2026-13-01", "q=", "q=+", "colour=red", "owner=someone", "sort=title;drop%20table%20tasks",
		"limit=1;limit=2", "q=100%", "li%zzmit=1", "label=a%00b",
		// Custom field filters (TestFieldsThroughAPI): accepted, refused.
		"project=web&field.severity=high", "project=web&field.points%5Bgte%5D=3&field.points%5Blte%5D=8",
		"field.severity=high", "project=web&field.=1", "project=web&field.a%5Bgt%5D=1", "project=web&field.a=%00",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest(http.MethodGet, "/tasks", nil)
		r.URL.RawQuery = raw
		q, err := listQuery(r)
		if httpxtest.Want4xx(t, err, raw) != 0 {
			return
		}
		if q.Limit < 1 || q.Limit > MaxLimit || MaxLimit > task.MaxListLimit {
			t.Fatalf("%q: limit %d, not in 1..%d", raw, q.Limit, MaxLimit)
		}
		for i, st := range q.Statuses {
			if !st.Valid() || slices.Contains(q.Statuses[:i], st) {
				t.Fatalf("%q: statuses %q, want known ones, each once", raw, q.Statuses)
			}
		}
		if q.After != nil && q.After.Ascending != q.Ascending {
			t.Fatalf("%q: a cursor of the other order accepted", raw)
		}
		for name, s := range map[string]string{"owner_id": q.OwnerID, "assignee_id": q.AssigneeID, "label": q.Label, "q": q.Query} {
			if s == "" {
				continue
			}
			if !pg.TextOK(s) || strings.TrimSpace(s) == "" || strings.IndexFunc(s, unicode.IsControl) >= 0 {
				t.Fatalf("%q: %s %q accepted, which the database cannot take or the route should refuse", raw, name, s)
			}
			if name == "q" && utf8.RuneCountInString(s) > maxQuery {
				t.Fatalf("%q: q of %d characters accepted", raw, utf8.RuneCountInString(s))
			}
		}
	})
}

// TestListTextNotUTF8 is FuzzListQuery's first find, through the real
// route and database: a filter that is not UTF-8 (a raw byte or a
// %-escape of one) was passed to PostgreSQL, which refused it (22021)
// and the route answered 500.
func TestListTextNotUTF8(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, q := range []string{"q=\xbd", "q=%FF", "label=ops%E2%82", "owner_id=%C0%AF", "assignee_id=a%ED%A0%80"} {
		t.Run(q, func(t *testing.T) {
			t.Parallel()
			if _, r := e.list(alice, q); r.status != 400 {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
		})
	}
}
