// Package projectapi is the HTTP project API: POST and GET /projects,
// GET|PATCH|DELETE /projects/{key} and the members of a project, one route
// per function. Who may do what is decided here, per request, from the
// caller's project.Access.
package projectapi

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/project"
)

// Limits of the list routes.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// API holds what the project handlers run on.
type API struct {
	store *project.Store
	roles *project.Resolver
}

func newAPI(route string, g *auth.Gate, store *project.Store, roles *project.Resolver) (*API, error) {
	if g == nil || store == nil || roles == nil {
		return nil, fmt.Errorf("projectapi: %s: %w", route, function.ErrMissing)
	}
	return &API{store: store, roles: roles}, nil
}

// route is the shape of every constructor below.
func route(name, method, path string, h func(*API) httpx.HandlerFunc) Constructor {
	return func(g *auth.Gate, store *project.Store, roles *project.Resolver) (httpx.Route, error) {
		a, err := newAPI(name, g, store, roles)
		if err != nil {
			return httpx.Route{}, err
		}
		return g.Route(name, method, path, h(a)), nil
	}
}

// The routes, one per function.
var (
	CreateRoute       = route("create-project", http.MethodPost, "/projects", func(a *API) httpx.HandlerFunc { return a.create })
	ListRoute         = route("list-projects", http.MethodGet, "/projects", func(a *API) httpx.HandlerFunc { return a.list })
	GetRoute          = route("get-project", http.MethodGet, "/projects/:key", func(a *API) httpx.HandlerFunc { return a.get })
	UpdateRoute       = route("update-project", http.MethodPatch, "/projects/:key", func(a *API) httpx.HandlerFunc { return a.update })
	DeleteRoute       = route("delete-project", http.MethodDelete, "/projects/:key", func(a *API) httpx.HandlerFunc { return a.delete })
	ListMembersRoute  = route("list-project-members", http.MethodGet, "/projects/:key/members", func(a *API) httpx.HandlerFunc { return a.listMembers })
	PutMemberRoute    = route("put-project-member", http.MethodPut, "/projects/:key/members/:subject", func(a *API) httpx.HandlerFunc { return a.putMember })
	DeleteMemberRoute = route("delete-project-member", http.MethodDelete, "/projects/:key/members/:subject", func(a *API) httpx.HandlerFunc { return a.deleteMember })
)

// Routes are all eight, as the dev runner and the tests mount them.
func Routes(g *auth.Gate, store *project.Store, roles *project.Resolver) ([]httpx.Route, error) {
	var routes []httpx.Route
	for _, r := range []Constructor{
		CreateRoute, ListRoute, GetRoute, UpdateRoute, DeleteRoute, ListMembersRoute, PutMemberRoute, DeleteMemberRoute,
	} {
		route, err := r(g, store, roles)
		if err != nil {
			return nil, err
		}
		routes = append(routes, route)
	}
	return routes, nil
}

// view is a project as the API shows it: with the caller's role.
type view struct {
	project.Project
	Role *string `json:"role"`
}

func viewOf(a project.Access, p project.Project) view {
	v := view{Project: p}
	if r := a.Role(p.Key); r != auth.NoProjectRole {
		s := r.String()
		v.Role = &s
	}
	return v
}

func writeProject(w http.ResponseWriter, status int, a project.Access, p project.Project) {
	w.Header().Set("ETag", httpx.ETag(p.Version))
	w.Header().Set("Cache-Control", "private, no-cache")
	httpx.WriteJSON(w, status, viewOf(a, p))
}

// key reads the {key} path segment; a malformed key names no project.
func key(r *http.Request) (string, error) {
	k := httprouter.ParamsFromContext(r.Context()).ByName("key")
	if !project.ValidKey(k) {
		return "", project.ErrNotFound
	}
	return k, nil
}

// access resolves the caller's access.
func (a *API) access(r *http.Request) (project.Access, error) {
	return a.roles.Access(r.Context(), auth.Caller(r))
}

// check resolves the caller's access and returns it if allowed accepts it;
// a refusal by roles from the cache is decided again on fresh ones, so a
// grant made in another process counts at once.
func (a *API) check(r *http.Request, allowed func(project.Access) error) (project.Access, error) {
	var out project.Access
	err := a.roles.Decide(r.Context(), auth.Caller(r), func(acc project.Access) error {
		out = acc
		return allowed(acc)
	})
	return out, err
}

// sees reports whether acc may see project k at all.
func sees(acc project.Access, k string) bool {
	return acc.SeesAll() || acc.Role(k) >= auth.ProjectViewer
}

// manages reports whether acc may edit project k and manage its members.
func manages(acc project.Access, k string) bool {
	return acc.Admin() || acc.Role(k) >= auth.ProjectMaintainer
}

// visible is the check of a request on project k that needs want: 404
// when the caller may not see the project, 403 when it may but lacks
// the right.
func visible(acc project.Access, k string, ok bool, reason string) error {
	if !sees(acc, k) {
		return project.ErrNotFound
	}
	if !ok {
		return errs.New(errs.Forbidden, "forbidden: "+reason, reason)
	}
	return nil
}

// POST /projects
func (a *API) create(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.ReadBody(w, r, "application/json")
	if err != nil {
		return err
	}
	p, err := project.ParsePatch(body)
	if err != nil {
		return err
	}
	id := auth.Caller(r)
	draft, err := project.Draft(p, id.Subject)
	if err != nil {
		return err
	}
	created, err := a.store.Create(r.Context(), draft)
	if err != nil {
		return err
	}
	// The creator is now a maintainer here: in force in this process at once.
	a.roles.Forget(id.Subject)
	acc, err := a.access(r)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/projects/"+created.Key)
	writeProject(w, http.StatusCreated, acc, created)
	return nil
}

// GET /projects: {"items": [projects], "next_cursor": string or null}.
func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	v, err := query(r, "limit", "cursor")
	if err != nil {
		return err
	}
	limit, err := httpx.Limit(v, DefaultLimit, MaxLimit)
	if err != nil {
		return err
	}
	after, err := cursor(v)
	if err != nil {
		return err
	}
	acc, err := a.access(r)
	if err != nil {
		return err
	}
	if after == "" && acc.ID.HasAny(auth.RoleAdmin, auth.RoleManager, auth.RoleMember) {
		// A caller's personal project is made on first use; listing is one.
		if err := a.store.EnsurePersonal(r.Context(), acc.ID.Subject); err != nil {
			return err
		}
	}
	q := project.ListQuery{All: acc.SeesAll(), After: after, Limit: limit}
	if !q.All {
		q.Keys = acc.Visible()
	}
	items, more, err := a.store.List(r.Context(), q)
	if err != nil {
		return err
	}
	out := struct {
		Items []view  `json:"items"`
		Next  *string `json:"next_cursor"`
	}{Items: make([]view, len(items))}
	for i, p := range items {
		out.Items[i] = viewOf(acc, p)
	}
	if more {
		out.Next = encodeCursor(items[len(items)-1].Key)
	}
	w.Header().Set("Cache-Control", "private, no-cache")
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

// GET /projects/{key}
func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	k, err := key(r)
	if err != nil {
		return err
	}
	acc, err := a.check(r, func(acc project.Access) error {
		if !sees(acc, k) {
			return project.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return err
	}
	if k == project.PersonalKey(acc.ID.Subject) {
		if err := a.store.EnsurePersonal(r.Context(), acc.ID.Subject); err != nil {
			return err
		}
	}
	p, err := a.store.Get(r.Context(), k)
	if err != nil {
		return err
	}
	writeProject(w, http.StatusOK, acc, p)
	return nil
}

// PATCH /projects/{key}: an RFC 7396 merge patch, If-Match honoured.
func (a *API) update(w http.ResponseWriter, r *http.Request) error {
	k, err := key(r)
	if err != nil {
		return err
	}
	body, err := httpx.ReadBody(w, r, "application/merge-patch+json", "application/json")
	if err != nil {
		return err
	}
	p, err := project.ParsePatch(body)
	if err != nil {
		return err
	}
	ifMatch, err := httpx.Precondition(r, "If-Match")
	if err != nil {
		return err
	}
	acc, err := a.check(r, func(acc project.Access) error {
		return visible(acc, k, manages(acc, k), "only a maintainer of the project or an admin may change it")
	})
	if err != nil {
		return err
	}
	updated, err := a.store.Update(r.Context(), k, func(cur project.Project) (project.Project, error) {
		if ifMatch != nil && !ifMatch.Matches(httpx.ETag(cur.Version), false) {
			return cur, project.ErrVersionMismatch
		}
		return p.Apply(cur)
	})
	if err != nil {
		return err
	}
	writeProject(w, http.StatusOK, acc, updated)
	return nil
}

// DELETE /projects/{key}, If-Match honoured.
func (a *API) delete(w http.ResponseWriter, r *http.Request) error {
	k, err := key(r)
	if err != nil {
		return err
	}
	ifMatch, err := httpx.Precondition(r, "If-Match")
	if err != nil {
		return err
	}
	_, err = a.check(r, func(acc project.Access) error {
		return visible(acc, k, manages(acc, k), "only a maintainer of the project or an admin may delete it")
	})
	if err != nil {
		return err
	}
	err = a.store.Delete(r.Context(), k, func(cur project.Project) error {
		if ifMatch != nil && !ifMatch.Matches(httpx.ETag(cur.Version), false) {
			return project.ErrVersionMismatch
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// GET /projects/{key}/members: {"items": [members], "next_cursor": ...}.
func (a *API) listMembers(w http.ResponseWriter, r *http.Request) error {
	k, err := key(r)
	if err != nil {
		return err
	}
	v, err := query(r, "limit", "cursor")
	if err != nil {
		return err
	}
	limit, err := httpx.Limit(v, DefaultLimit, MaxLimit)
	if err != nil {
		return err
	}
	after, err := cursor(v)
	if err != nil {
		return err
	}
	_, err = a.check(r, func(acc project.Access) error {
		canList := acc.SeesAll() || acc.Role(k) >= auth.ProjectMember
		return visible(acc, k, canList, "viewers of a project may not list its members")
	})
	if err != nil {
		return err
	}
	if _, err := a.store.Get(r.Context(), k); err != nil {
		return err
	}
	items, more, err := a.store.ListMembers(r.Context(), k, after, limit)
	if err != nil {
		return err
	}
	out := struct {
		Items []project.Member `json:"items"`
		Next  *string          `json:"next_cursor"`
	}{Items: items}
	if more {
		out.Next = encodeCursor(items[len(items)-1].Subject)
	}
	w.Header().Set("Cache-Control", "private, no-cache")
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

// subject reads the {subject} path segment.
func subject(r *http.Request) (string, error) {
	s := httprouter.ParamsFromContext(r.Context()).ByName("subject")
	if !project.ValidSubject(s) {
		return "", errs.Validation(errs.FieldError{Field: "subject", Detail: fmt.Sprintf("must be 1 to %d bytes of printable text", project.MaxSubject)})
	}
	return s, nil
}

// PUT /projects/{key}/members/{subject}: {"role": ...}.
func (a *API) putMember(w http.ResponseWriter, r *http.Request) error {
	k, err := key(r)
	if err != nil {
		return err
	}
	body, err := httpx.ReadBody(w, r, "application/json")
	if err != nil {
		return err
	}
	acc, err := a.check(r, func(acc project.Access) error {
		return visible(acc, k, manages(acc, k), "only a maintainer of the project or an admin may manage its members")
	})
	if err != nil {
		return err
	}
	sub, err := subject(r)
	if err != nil {
		return err
	}
	role, err := project.ParseMember(body)
	if err != nil {
		return err
	}
	ch, err := a.store.PutMember(r.Context(), k, sub, role, acc.ID.Subject, acc.Admin(), exists)
	if err != nil {
		return err
	}
	a.roles.Forget(sub)
	status := http.StatusOK
	if ch.Created {
		status = http.StatusCreated
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, status, ch.Member)
	return nil
}

// DELETE /projects/{key}/members/{subject}: maintainers remove anyone, a
// member may leave.
func (a *API) deleteMember(w http.ResponseWriter, r *http.Request) error {
	k, err := key(r)
	if err != nil {
		return err
	}
	sub, err := subject(r)
	if err != nil {
		return err
	}
	acc, err := a.check(r, func(acc project.Access) error {
		ok := manages(acc, k) || sub == acc.ID.Subject
		return visible(acc, k, ok, "only a maintainer of the project or an admin may remove others")
	})
	if err != nil {
		return err
	}
	if err := a.store.DeleteMember(r.Context(), k, sub, acc.Admin(), exists); err != nil {
		return err
	}
	a.roles.Forget(sub)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// exists is the member routes' check on the locked project: access was
// decided before, from the caller's roles.
func exists(project.Project) error { return nil }

// query reads r's query string, refusing a parameter not in known or
// given twice.
func query(r *http.Request, known ...string) (url.Values, error) {
	v, err := httpx.Query(r)
	if err != nil {
		return nil, err
	}
	for k, vs := range v {
		found := false
		for _, n := range known {
			found = found || n == k
		}
		if !found {
			return nil, httpx.BadRequest(fmt.Sprintf("unknown query parameter %q", k))
		}
		if len(vs) > 1 {
			return nil, httpx.BadRequest(fmt.Sprintf("query parameter %q is given more than once", k))
		}
	}
	return v, nil
}

// A cursor is the last key (or subject) of the page, base64url: opaque to
// clients, and any text survives the query string.
func encodeCursor(last string) *string {
	s := base64.RawURLEncoding.EncodeToString([]byte(last))
	return &s
}

func cursor(v url.Values) (string, error) {
	s, ok := v["cursor"]
	if !ok {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s[0])
	if err != nil || len(b) == 0 || len(b) > 1+project.MaxSubject || !utf8.Valid(b) {
		return "", httpx.BadRequest(`query parameter "cursor" is not a cursor this route made`)
	}
	return string(b), nil
}
