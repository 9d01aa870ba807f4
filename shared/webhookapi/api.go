// Package webhookapi is the HTTP webhook API (issue #18): POST and GET
// /webhooks, GET, PATCH and DELETE /webhooks/{id}, GET
// /webhooks/{id}/deliveries and POST
// /webhooks/{id}/deliveries/{delivery}/redeliver, one route per function.
// Who may do what is webhook's policy (webhook.CheckManage, CanSee): a
// webhook the caller may not see answers 404.
package webhookapi

import (
	"cmp"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/egress"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/webhook"
)

// Limits of the list route.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// Deps is what the routes are built on.
type Deps struct {
	Store  *webhook.Store
	Roles  *project.Resolver
	Policy egress.Policy // the URLs a webhook may name
}

// API holds what the handlers run on.
type API struct {
	store  *webhook.Store
	roles  *project.Resolver
	policy egress.Policy
}

// Constructor is one route's constructor.
type Constructor func(*auth.Gate, Deps) (httpx.Route, error)

func route(name, method, path string, h func(*API) httpx.HandlerFunc) Constructor {
	return func(g *auth.Gate, d Deps) (httpx.Route, error) {
		if g == nil || d.Store == nil || d.Roles == nil {
			return httpx.Route{}, fmt.Errorf("webhookapi: %s: %w", name, function.ErrMissing)
		}
		a := &API{store: d.Store, roles: d.Roles, policy: d.Policy}
		return g.Route(name, method, path, a.refreshing(h(a))), nil
	}
}

// The routes, one per function.
var (
	CreateRoute     = route("create-webhook", http.MethodPost, "/webhooks", func(a *API) httpx.HandlerFunc { return a.create })
	ListRoute       = route("list-webhooks", http.MethodGet, "/webhooks", func(a *API) httpx.HandlerFunc { return a.list })
	GetRoute        = route("get-webhook", http.MethodGet, "/webhooks/:id", func(a *API) httpx.HandlerFunc { return a.get })
	UpdateRoute     = route("update-webhook", http.MethodPatch, "/webhooks/:id", func(a *API) httpx.HandlerFunc { return a.update })
	DeleteRoute     = route("delete-webhook", http.MethodDelete, "/webhooks/:id", func(a *API) httpx.HandlerFunc { return a.delete })
	DeliveriesRoute = route("list-webhook-deliveries", http.MethodGet, "/webhooks/:id/deliveries", func(a *API) httpx.HandlerFunc { return a.deliveries })
	RedeliverRoute  = route("redeliver-webhook", http.MethodPost, "/webhooks/:id/deliveries/:delivery/redeliver", func(a *API) httpx.HandlerFunc { return a.redeliver })
)

// Routes are all seven, as the dev runner and the tests mount them.
func Routes(g *auth.Gate, d Deps) ([]httpx.Route, error) {
	var out []httpx.Route
	for _, r := range []Constructor{CreateRoute, ListRoute, GetRoute, UpdateRoute, DeleteRoute, DeliveriesRoute, RedeliverRoute} {
		rt, err := r(g, d)
		if err != nil {
			return nil, err
		}
		out = append(out, rt)
	}
	return out, nil
}

// refreshing brings the snapshot of the caller's token kept on its
// webhooks up to date before h runs: the delivery-time check has no
// token, so it decides on what the owner's last call showed (a changed
// row only when the roles changed).
func (a *API) refreshing(h httpx.HandlerFunc) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := a.store.RefreshOwner(r.Context(), webhook.OwnerOf(auth.Caller(r))); err != nil {
			return err
		}
		return h(w, r)
	}
}

func param(r *http.Request, name string, notFound error) (uuid.UUID, error) {
	id, err := uuid.Parse(httprouter.ParamsFromContext(r.Context()).ByName(name))
	if err != nil {
		return uuid.Nil, notFound
	}
	return id, nil
}

// visible reads the webhook of the path, if the caller may see it.
func (a *API) visible(r *http.Request) (webhook.Webhook, error) {
	id, err := param(r, "id", webhook.ErrNotFound)
	if err != nil {
		return webhook.Webhook{}, err
	}
	w, err := a.store.Get(r.Context(), id)
	if err != nil {
		return webhook.Webhook{}, err
	}
	if !webhook.CanSee(auth.Caller(r), w) {
		return webhook.Webhook{}, webhook.ErrNotFound
	}
	return w, nil
}

func noStore(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }

// POST /webhooks {url, types, project?, content_mode?, enabled?}: 201
// with the signing secret, shown this once.
func (a *API) create(w http.ResponseWriter, r *http.Request) error {
	raw, err := httpx.ReadBody(w, r, "application/json")
	if err != nil {
		return err
	}
	in, err := webhook.ParseInput(raw)
	if err != nil {
		return err
	}
	caller := auth.Caller(r)
	draft, err := webhook.Draft(r.Context(), in, caller.Subject, a.policy)
	if err != nil {
		return err
	}
	var created webhook.Created
	err = a.roles.Decide(r.Context(), caller, func(acc project.Access) error {
		if err := webhook.CheckManage(acc, draft.Project); err != nil {
			return err
		}
		created, err = a.store.Create(r.Context(), draft, webhook.OwnerOf(caller))
		return err
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/webhooks/"+created.ID.String())
	noStore(w) // the secret
	httpx.WriteJSON(w, http.StatusCreated, created)
	return nil
}

// GET /webhooks: the caller's webhooks (an admin's: everyone's), oldest
// first, keyset-paged.
func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	limit, after, err := httpx.IDPage(r, DefaultLimit, MaxLimit)
	if err != nil {
		return err
	}
	caller := auth.Caller(r)
	owner := caller.Subject
	if caller.Has(auth.RoleAdmin) {
		owner = ""
	}
	items, more, err := a.store.List(r.Context(), owner, after, limit)
	if err != nil {
		return err
	}
	httpx.WriteIDPage(w, items, more, func(x webhook.Webhook) uuid.UUID { return x.ID })
	return nil
}

// GET /webhooks/{id}
func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	wh, err := a.visible(r)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", httpx.ETag(wh.Version))
	w.Header().Set("Cache-Control", "private, no-cache")
	httpx.WriteJSON(w, http.StatusOK, wh)
	return nil
}

// PATCH /webhooks/{id} {url?, types?, content_mode?, enabled?}: by whoever
// may still manage it, If-Match honoured; {"enabled": true} turns a
// disabled webhook on again.
func (a *API) update(w http.ResponseWriter, r *http.Request) error {
	raw, err := httpx.ReadBody(w, r, "application/merge-patch+json", "application/json")
	if err != nil {
		return err
	}
	in, err := webhook.ParseInput(raw)
	if err != nil {
		return err
	}
	ifMatch, err := httpx.Precondition(r, "If-Match")
	if err != nil {
		return err
	}
	cur, err := a.visible(r)
	if err != nil {
		return err
	}
	// The URL is checked (DNS) before the row is locked.
	next, err := webhook.Apply(r.Context(), cur, in, a.policy)
	if err != nil {
		return err
	}
	caller := auth.Caller(r)
	var out webhook.Webhook
	err = a.roles.Decide(r.Context(), caller, func(acc project.Access) error {
		if err := webhook.CheckManage(acc, cur.Project); err != nil {
			return err
		}
		out, err = a.store.Update(r.Context(), cur.ID, func(locked webhook.Webhook) (webhook.Webhook, error) {
			if ifMatch != nil && !ifMatch.Matches(httpx.ETag(locked.Version), false) {
				return webhook.Webhook{}, webhook.ErrVersionMismatch
			}
			return in.Over(locked, next), nil
		})
		return err
	})
	if err != nil {
		return err
	}
	w.Header().Set("ETag", httpx.ETag(out.Version))
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

// DELETE /webhooks/{id}: its owner or an admin.
func (a *API) delete(w http.ResponseWriter, r *http.Request) error {
	cur, err := a.visible(r)
	if err != nil {
		return err
	}
	caller := auth.Caller(r)
	err = a.store.Delete(r.Context(), cur.ID, func(locked webhook.Webhook) error {
		if !webhook.CanSee(caller, locked) {
			return webhook.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// GET /webhooks/{id}/deliveries: the last 100, newest first.
func (a *API) deliveries(w http.ResponseWriter, r *http.Request) error {
	if v, err := httpx.Query(r); err != nil || len(v) > 0 {
		return cmp.Or(err, error(httpx.BadRequest("this route takes no query parameters: it shows the last 100 deliveries")))
	}
	wh, err := a.visible(r)
	if err != nil {
		return err
	}
	items, err := a.store.Deliveries(r.Context(), wh.ID)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "private, no-cache")
	httpx.WriteJSON(w, http.StatusOK, struct {
		Items []webhook.Delivery `json:"items"`
	}{items})
	return nil
}

// POST /webhooks/{id}/deliveries/{delivery}/redeliver: 202, due now; the
// retry tick sends it.
func (a *API) redeliver(w http.ResponseWriter, r *http.Request) error {
	wh, err := a.visible(r)
	if err != nil {
		return err
	}
	did, err := param(r, "delivery", webhook.ErrDeliveryNotFound)
	if err != nil {
		return err
	}
	d, err := a.store.Redeliver(r.Context(), wh.ID, did)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusAccepted, d)
	return nil
}
