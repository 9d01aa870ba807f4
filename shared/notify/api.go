package notify

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/notify/people"
	"github.com/taskfn/taskfn/shared/task"
)

// Limits of GET /notifications.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// API serves the inbox. Every route verifies the bearer token and needs a
// task role; a caller only ever sees and changes its own notifications.
type API struct {
	store  *Store
	verify *auth.Verifier
	dir    *people.Directory
}

// NewAPI returns the inbox API over store, authenticating with v. A
// non-nil dir remembers each caller's email for later notifications.
func NewAPI(store *Store, v *auth.Verifier, dir *people.Directory) (*API, error) {
	if store == nil || v == nil {
		return nil, errors.New("notify: NewAPI needs a store and a verifier")
	}
	return &API{store: store, verify: v, dir: dir}, nil
}

func (a *API) route(name, method, path string, h httpx.HandlerFunc) httpx.Route {
	next := httpx.Handle(problemFor, h)
	if a.dir != nil {
		next = a.dir.Middleware(next)
	}
	return httpx.Route{Name: name, Method: method, Path: path, Handler: a.verify.Require(next, task.Anyone...)}
}

// ListRoute is GET /notifications, the list-notifications function.
func (a *API) ListRoute() httpx.Route {
	return a.route("list-notifications", http.MethodGet, "/notifications", a.list)
}

// ReadRoute is POST /notifications/{id}/read, the read-notification function.
func (a *API) ReadRoute() httpx.Route {
	return a.route("read-notification", http.MethodPost, "/notifications/:id/read", a.read)
}

// Routes are both, as the dev runner mounts them.
func (a *API) Routes() []httpx.Route { return []httpx.Route{a.ListRoute(), a.ReadRoute()} }

func caller(r *http.Request) auth.Identity {
	id, ok := auth.FromContext(r.Context())
	if !ok {
		// Require always runs first; reaching here is a wiring bug.
		panic("notify: route mounted without authentication")
	}
	return id
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
	q.Recipient = caller(r).Subject
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
	q := ListQuery{Limit: DefaultLimit}
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
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return q, httpx.BadRequest(fmt.Sprintf(`query parameter "limit" must be an integer from 1 to %d`, MaxLimit))
		}
		q.Limit = n
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
	n, err := a.store.MarkRead(r.Context(), caller(r).Subject, id)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, n)
	return nil
}
