package digest

import (
	"fmt"
	"net/http"
	"time"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
)

// API serves GET and PUT /me/preferences: a caller reads and sets only
// its own. The gate has already remembered the caller in the people
// directory (email, name, roles): that is the snapshot the digest acts
// on later, so every call here refreshes it.
type API struct {
	store *Store
	now   func() time.Time
}

// route is the shape of both constructors.
func route(name, method string, h func(*API) httpx.HandlerFunc) func(*auth.Gate, *Store) (httpx.Route, error) {
	return func(g *auth.Gate, store *Store) (httpx.Route, error) {
		if g == nil || store == nil {
			return httpx.Route{}, fmt.Errorf("digest: %s: %w", name, function.ErrMissing)
		}
		return g.Route(name, method, "/me/preferences", h(&API{store: store, now: time.Now})), nil
	}
}

// The routes, one per function.
var (
	// GetRoute is GET /me/preferences, the get-preferences function.
	GetRoute = route("get-preferences", http.MethodGet, func(a *API) httpx.HandlerFunc { return a.get })
	// PutRoute is PUT /me/preferences, the put-preferences function.
	PutRoute = route("put-preferences", http.MethodPut, func(a *API) httpx.HandlerFunc { return a.put })
)

func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	v, err := httpx.Query(r)
	if err != nil {
		return err
	}
	if len(v) > 0 { // refused, not ignored: this route takes no parameters
		return httpx.BadRequest("GET /me/preferences takes no query parameters")
	}
	p, err := a.store.Get(r.Context(), auth.Caller(r).Subject)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, p)
	return nil
}

func (a *API) put(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.ReadBody(w, r, "application/json")
	if err != nil {
		return err
	}
	p, err := ParsePreferences(body)
	if err != nil {
		return err
	}
	if err := a.store.Put(r.Context(), auth.Caller(r).Subject, p, a.now()); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, p)
	return nil
}
