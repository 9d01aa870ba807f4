package notify

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/task"
)

// Limits of GET /notifications.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// API serves the inbox. Its routes sit behind a gate that verified the
// token and a task role; a caller only ever sees and changes its own
// notifications.
type API struct{ store *Store }

// ListRoute is GET /notifications, the list-notifications function.
func ListRoute(g *auth.Gate, store *Store) (httpx.Route, error) {
	if g == nil || store == nil {
		return httpx.Route{}, fmt.Errorf("notify: list-notifications: %w", function.ErrMissing)
	}
	return g.Route("list-notifications", http.MethodGet, "/notifications", (&API{store}).list), nil
}

// ReadRoute is POST /notifications/{id}/read, the read-notification function.
func ReadRoute(g *auth.Gate, store *Store) (httpx.Route, error) {
	if g == nil || store == nil {
		return httpx.Route{}, fmt.Errorf("notify: read-notification: %w", function.ErrMissing)
	}
	return g.Route("read-notification", http.MethodPost, "/notifications/:id/read", (&API{store}).read), nil
}

// Routes are both, as the dev runner and the tests mount them.
func Routes(g *auth.Gate, store *Store) ([]httpx.Route, error) {
	list, err := ListRoute(g, store)
	if err != nil {
		return nil, err
	}
	read, err := ReadRoute(g, store)
	if err != nil {
		return nil, err
	}
	return []httpx.Route{list, read}, nil
}

// inboxPage is the body of GET /notifications.
type inboxPage struct {
	Items       []Notification `json:"items"`
	NextCursor  *string        `json:"next_cursor"`
	UnreadCount int64          `json:"unread_count"`
}

// GET /notifications?unread=true&limit=20&cursor=...
func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	v, err := httpx.Query(r)
	if err != nil {
		return err
	}
	q, err := parseList(v)
	if err != nil {
		return err
	}
	q.Recipient = auth.Caller(r).Subject
	page, err := a.store.List(r.Context(), q)
	if err != nil {
		return err
	}
	out := inboxPage{Items: page.Items, UnreadCount: page.Unread}
	if out.Items == nil {
		out.Items = []Notification{}
	}
	if page.Next != nil {
		c := page.Next.Encode()
		out.NextCursor = &c
	}
	w.Header().Set("Cache-Control", "private, no-cache")
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

func parseList(v url.Values) (ListQuery, error) {
	var q ListQuery
	for k, vs := range v {
		switch k {
		case "unread", "limit", "cursor":
		default:
			return q, httpx.BadRequest(fmt.Sprintf("unknown query parameter %q", k))
		}
		if len(vs) > 1 {
			return q, httpx.BadRequest(fmt.Sprintf("query parameter %q is given more than once", k))
		}
	}
	switch v.Get("unread") {
	case "", "false":
	case "true":
		q.UnreadOnly = true
	default:
		return q, httpx.BadRequest(`query parameter "unread" must be true or false`)
	}
	var err error
	if q.Limit, err = httpx.Limit(v, DefaultLimit, MaxLimit); err != nil {
		return q, err
	}
	if s, ok := v["cursor"]; ok {
		c, err := task.DecodeCursor(s[0])
		if err != nil || c.Ascending {
			return q, task.ErrBadCursor
		}
		q.After = &c
	}
	return q, nil
}

// POST /notifications/{id}/read
func (a *API) read(w http.ResponseWriter, r *http.Request) error {
	id, err := uuid.Parse(httprouter.ParamsFromContext(r.Context()).ByName("id"))
	if err != nil {
		return ErrNotFound // a malformed id names no notification
	}
	n, err := a.store.MarkRead(r.Context(), auth.Caller(r).Subject, id)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, n)
	return nil
}
