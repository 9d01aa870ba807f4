package taskapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/task"
)

// Limits of the list route.
const (
	DefaultLimit = 50
	MaxLimit     = 200
	maxQuery     = 500
	// maxFieldFilters bounds the custom field filters of one list: each
	// is a condition on every row the page's plan reads.
	maxFieldFilters = 10
	maxFieldValue   = 255
)

// listQuery reads the list asked for by r's query string: all of the
// route's parsing of untrusted input, and nothing that needs a database,
// so FuzzListQuery drives exactly what the route does.
func listQuery(r *http.Request) (task.ListQuery, error) {
	v, err := httpx.Query(r)
	if err != nil {
		return task.ListQuery{}, err
	}
	return parseList(v)
}

// parseList turns the query string of GET /tasks into a ListQuery;
// anything it does not understand is a 400, so a typo never silently
// widens a result.
func parseList(v url.Values) (task.ListQuery, error) {
	var q task.ListQuery
	if err := checkListParams(v); err != nil {
		return q, err
	}
	var err error
	if q.Statuses, err = parseStatuses(v["status"]); err != nil {
		return q, err
	}
	if s, ok := v["project"]; ok {
		if !task.ValidProject(s[0]) || !utf8.ValidString(s[0]) {
			return q, badParam("project", "must be a project key (2 to 32 of a-z, 0-9 and -, or ~ and a subject)")
		}
		q.Project = s[0]
	}
	if err := parseTextFilters(v, &q); err != nil {
		return q, err
	}
	if err := parseDueFilters(v, &q); err != nil {
		return q, err
	}
	if err := parseFieldFilters(v, &q); err != nil {
		return q, err
	}
	if s, ok := v["parent"]; ok {
		id, err := uuid.Parse(s[0])
		if err != nil || len(s[0]) != 36 {
			return q, badParam("parent", "must be a task id")
		}
		q.Parent = &id
	}
	if s, ok := v["archived"]; ok {
		switch s[0] {
		case "true":
			q.Archived = true
		case "false":
		default:
			return q, badParam("archived", "must be true or false")
		}
	}
	return q, parsePaging(v, &q)
}

// listParams are the list route's query parameters.
var listParams = map[string]bool{
	"project": true, "status": true, "assignee_id": true, "owner_id": true, "label": true, "parent": true, "archived": true,
	"due_before": true, "due_after": true, "q": true, "sort": true, "limit": true, "cursor": true,
}

// checkListParams refuses a parameter the route does not know, and any but
// status given more than once.
func checkListParams(v url.Values) error {
	for k, vs := range v {
		if !listParams[k] && !strings.HasPrefix(k, fieldParam) {
			return httpx.BadRequest(fmt.Sprintf("unknown query parameter %q", k))
		}
		if k != "status" && len(vs) > 1 {
			return httpx.BadRequest(fmt.Sprintf("query parameter %q is given more than once", k))
		}
	}
	return nil
}

// fieldParam starts a custom field filter's parameter:
// field.<name>=v, field.<name>[gte]=v, field.<name>[lte]=v.
const fieldParam = "field."

// parseFieldFilters reads the custom field filters. Their names resolve
// per project, so they need project=; what a name means, and whether
// its value fits, the route decides against the project's definitions
// (task.ResolveFieldFilters).
func parseFieldFilters(v url.Values, q *task.ListQuery) error {
	for k, vs := range v {
		rest, ok := strings.CutPrefix(k, fieldParam)
		if !ok {
			continue
		}
		name, op := rest, task.FieldEq
		if base, ok := strings.CutSuffix(rest, "[gte]"); ok {
			name, op = base, task.FieldGte
		} else if base, ok := strings.CutSuffix(rest, "[lte]"); ok {
			name, op = base, task.FieldLte
		}
		if strings.TrimSpace(name) == "" || !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 || strings.ContainsAny(name, "[]") {
			return httpx.BadRequest(fmt.Sprintf("query parameter %q: want field.<name>, field.<name>[gte] or field.<name>[lte]", k))
		}
		val := vs[0]
		if !utf8.ValidString(val) || utf8.RuneCountInString(val) > maxFieldValue || strings.IndexFunc(val, unicode.IsControl) >= 0 {
			return badParam(k, fmt.Sprintf("must be at most %d printable characters", maxFieldValue))
		}
		q.FieldQueries = append(q.FieldQueries, task.FieldQuery{Name: name, Op: op, Value: val})
	}
	if len(q.FieldQueries) > maxFieldFilters {
		return httpx.BadRequest(fmt.Sprintf("at most %d custom field filters", maxFieldFilters))
	}
	if len(q.FieldQueries) > 0 && q.Project == "" {
		return errs.Validation(errs.FieldError{Field: "project", Detail: "is required with a custom field filter: field names are a project's"})
	}
	// One order for one query string, whatever the map's.
	slices.SortFunc(q.FieldQueries, func(a, b task.FieldQuery) int {
		return strings.Compare(a.Name+"\x00"+string(a.Op), b.Name+"\x00"+string(b.Op))
	})
	return nil
}

// badParam is the 400 for a query parameter whose value is not what want says.
func badParam(name, want string) error {
	return httpx.BadRequest(fmt.Sprintf("query parameter %q %s", name, want))
}

// parseStatuses reads status, given as comma lists, once or more, into
// the distinct statuses in the order first named.
func parseStatuses(lists []string) ([]task.Status, error) {
	var out []task.Status
	seen := map[task.Status]bool{}
	for _, list := range lists {
		for _, s := range strings.Split(list, ",") {
			st := task.Status(strings.TrimSpace(s))
			if !st.Valid() {
				return out, badParam("status", "must be a comma list of todo, in_progress, blocked, done, cancelled")
			}
			if !seen[st] {
				seen[st] = true
				out = append(out, st)
			}
		}
	}
	return out, nil
}

// parseTextFilters reads the filters matched as text: owner_id,
// assignee_id, label and q, each of 1 to its most printable characters.
// A query string may carry any bytes (raw, or %-escaped): one that is not
// UTF-8 is refused here, as PostgreSQL would refuse it (22021) and the
// route answer 500 (FuzzListQuery's find).
func parseTextFilters(v url.Values, q *task.ListQuery) error {
	for _, f := range []struct {
		name string
		dst  *string
		max  int
	}{{"owner_id", &q.OwnerID, task.MaxSubject}, {"assignee_id", &q.AssigneeID, task.MaxSubject}, {"label", &q.Label, task.MaxLabel}, {"q", &q.Query, maxQuery}} {
		s, ok := v[f.name]
		if !ok {
			continue
		}
		if strings.TrimSpace(s[0]) == "" || !utf8.ValidString(s[0]) || utf8.RuneCountInString(s[0]) > f.max || strings.IndexFunc(s[0], unicode.IsControl) >= 0 {
			return badParam(f.name, fmt.Sprintf("must be 1 to %d printable characters", f.max))
		}
		*f.dst = s[0]
	}
	return nil
}

// parseDueFilters reads due_before and due_after, RFC 3339 date-times.
func parseDueFilters(v url.Values, q *task.ListQuery) error {
	for _, f := range []struct {
		name string
		dst  **time.Time
	}{{"due_before", &q.DueBefore}, {"due_after", &q.DueAfter}} {
		if s := v.Get(f.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return badParam(f.name, "must be an RFC 3339 date-time, e.g. 2026-12-01T00:00:00Z")
			}
			*f.dst = &t
		}
	}
	return nil
}

// parsePaging reads the page asked for: sort (newest first by default),
// limit and cursor. A cursor carries the sort order it was made for, and
// must be given with that order.
func parsePaging(v url.Values, q *task.ListQuery) error {
	switch v.Get("sort") {
	case "", "-created_at":
	case "created_at":
		q.Ascending = true
	default:
		return badParam("sort", "must be created_at or -created_at")
	}
	var err error
	if q.Limit, err = httpx.Limit(v, DefaultLimit, MaxLimit); err != nil {
		return err
	}
	if s, ok := v["cursor"]; ok {
		c, err := task.DecodeCursor(s[0])
		if err != nil {
			return err
		}
		if c.Ascending != q.Ascending {
			return badParam("cursor", "belongs to the other sort order; keep the sort of the first page")
		}
		q.After = &c
	}
	return nil
}
