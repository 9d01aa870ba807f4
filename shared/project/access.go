package project

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/pg"
)

// Access is what a caller may do in projects: the token's identity (its
// global roles and the project roles of its Keycloak groups) and, once
// resolved, its API-managed roles. The stronger role wins, and a caller is
// maintainer of its personal project.
type Access struct {
	ID auth.Identity
	// api are the members table's roles; nil when not resolved (Partial).
	api      map[string]auth.ProjectRole
	resolved bool
	cached   bool // api came from the cache, and may predate a grant
}

// Partial is the access the token alone proves, without the members
// table: enough for most reads (see the task cache's GET), and never more
// than the full Access, since API roles only add.
func Partial(id auth.Identity) Access { return Access{ID: id} }

// Resolved reports whether the API-managed roles are known.
func (a Access) Resolved() bool { return a.resolved }

// Cached reports whether the API-managed roles came from the cache: a
// refusal may then be one a grant made elsewhere within the TTL has
// lifted, which Resolver.Fresh finds out.
func (a Access) Cached() bool { return a.cached }

// SeesAll: admins and managers read every project and its tasks.
func (a Access) SeesAll() bool { return a.ID.HasAny(auth.RoleAdmin, auth.RoleManager) }

// Admin: admins may do anything everywhere.
func (a Access) Admin() bool { return a.ID.Has(auth.RoleAdmin) }

// Role is the caller's role in project key. Project roles are of
// task-members, managers and admins: a token with none of those roles has
// none.
func (a Access) Role(key string) auth.ProjectRole {
	if !a.ID.HasAny(auth.RoleAdmin, auth.RoleManager, auth.RoleMember) {
		return auth.NoProjectRole
	}
	if a.ID.Subject != "" && key == PersonalKey(a.ID.Subject) {
		return auth.ProjectMaintainer
	}
	return max(a.ID.GroupRole(key), a.api[key])
}

// Visible returns the keys of every project the caller holds a role in
// (its personal project first, then in key order); for SeesAll callers
// that is not all they may see.
func (a Access) Visible() []string {
	if !a.ID.HasAny(auth.RoleAdmin, auth.RoleManager, auth.RoleMember) {
		return nil
	}
	seen := make(map[string]bool, len(a.ID.ProjectRoles)+len(a.api)+1)
	var keys []string
	for _, m := range []map[string]auth.ProjectRole{a.ID.ProjectRoles, a.api} {
		for k, r := range m {
			if r >= auth.ProjectViewer && !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	personal := PersonalKey(a.ID.Subject)
	keys = slices.DeleteFunc(keys, func(k string) bool { return k == personal })
	return append([]string{personal}, keys...)
}

// ResolverConfig configures how API-managed roles are cached.
type ResolverConfig struct {
	// RolesTTL is how long a process trusts the memberships it read. With
	// maxCachedLookup it bounds how long a removed member keeps access in
	// another process: at most RolesTTL + 100 ms after the removal.
	RolesTTL time.Duration `envconfig:"PROJECT_ROLES_TTL" default:"900ms"`
	// RolesCacheSize is how many callers' memberships a process keeps; 0
	// disables the cache (every request reads the members table).
	RolesCacheSize int `envconfig:"PROJECT_ROLES_CACHE_SIZE" default:"10000"`
}

// maxCachedLookup: a lookup slower than this is used but not cached, so
// a read that began long before it returned cannot stretch the bound.
const maxCachedLookup = 100 * time.Millisecond

// maxRolesTTL keeps the removal bound at one second.
const maxRolesTTL = time.Second - maxCachedLookup

// Validate checks the configuration.
func (c ResolverConfig) Validate() error {
	if c.RolesTTL < 0 || c.RolesTTL > maxRolesTTL {
		return fmt.Errorf("PROJECT_ROLES_TTL %s: must be 0 to %s, so a removed member is refused within a second", c.RolesTTL, maxRolesTTL)
	}
	if c.RolesCacheSize < 0 {
		return fmt.Errorf("PROJECT_ROLES_CACHE_SIZE %d: must not be negative", c.RolesCacheSize)
	}
	return nil
}

// Resolver resolves callers' API-managed roles, through a small
// per-process cache: a cached GET must not pay a database round trip for
// them. The cache holds memberships, never decisions; each request
// decides from its own token and them. Concurrent misses for one subject
// share one read (singleflight).
type Resolver struct {
	store *Store
	ttl   time.Duration
	cache *lru.Cache[string, rolesEntry] // nil: no caching
	group singleflight.Group
	now   func() time.Time

	// forgets counts Forget calls: a lookup stores what it read only if
	// none happened since it began. Member changes are rare, so one
	// counter for all subjects costs little caching.
	mu      sync.Mutex
	forgets uint64
}

type rolesEntry struct {
	roles    map[string]auth.ProjectRole
	deadline time.Time // the read's start plus the TTL
}

// NewResolver returns a Resolver reading store.
func NewResolver(store *Store, cfg ResolverConfig) (*Resolver, error) {
	if store == nil {
		return nil, errors.New("project: NewResolver needs a store")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Resolver{store: store, ttl: cfg.RolesTTL, now: time.Now}
	if cfg.RolesCacheSize > 0 && cfg.RolesTTL > 0 {
		c, err := lru.New[string, rolesEntry](cfg.RolesCacheSize)
		if err != nil {
			return nil, fmt.Errorf("project: roles cache: %w", err)
		}
		r.cache = c
	}
	return r, nil
}

// OpenResolver returns a Resolver of db's members table, as every task,
// project and report route decides access with.
func OpenResolver(db *pg.DB, cfg ResolverConfig) (*Resolver, error) {
	s, err := NewStore(db)
	if err != nil {
		return nil, err
	}
	return NewResolver(s, cfg)
}

// Access returns the caller's full access. A token without a subject or a
// taskfn role has no API-managed roles to read.
func (r *Resolver) Access(ctx context.Context, id auth.Identity) (Access, error) {
	a := Access{ID: id, resolved: true}
	if id.Subject == "" || !id.HasAny(auth.RoleAdmin, auth.RoleManager, auth.RoleMember) {
		return a, nil
	}
	roles, cached, err := r.roles(ctx, id.Subject)
	if err != nil {
		return Access{}, err
	}
	a.api, a.cached = roles, cached
	return a, nil
}

// Fresh is Access read from the members table now, past the cache (which
// it refreshes). Routes call it when a cached Access refuses: a member
// just added, or a project just created in another process, is then let
// in at once, while a removal still takes at most the TTL. Only refusals
// pay the read, and they are rate limited like every request.
func (r *Resolver) Fresh(ctx context.Context, id auth.Identity) (Access, error) {
	a := Access{ID: id, resolved: true}
	if id.Subject == "" || !id.HasAny(auth.RoleAdmin, auth.RoleManager, auth.RoleMember) {
		return a, nil
	}
	roles, err := r.load(ctx, id.Subject)
	if err != nil {
		return Access{}, fmt.Errorf("project: roles of %s: %w", strings.ToValidUTF8(id.Subject, "?"), err)
	}
	a.api = roles
	return a, nil
}

// Decide runs fn with id's access and, when an access read from the cache
// is refused (a not-found or forbidden error, or one of also), once more
// with the roles read now (Fresh). fn must change nothing when it refuses.
func (r *Resolver) Decide(ctx context.Context, id auth.Identity, fn func(Access) error, also ...error) error {
	a, err := r.Access(ctx, id)
	if err != nil {
		return err
	}
	err = fn(a)
	if err == nil || !a.cached || !refused(err, also) {
		return err
	}
	if a, err = r.Fresh(ctx, id); err != nil {
		return err
	}
	return fn(a)
}

func refused(err error, also []error) bool {
	if k := errs.KindOf(err); k == errs.NotFound || k == errs.Forbidden {
		return true
	}
	for _, e := range also {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// roles returns subject's API-managed roles, and whether they came from
// the cache.
func (r *Resolver) roles(ctx context.Context, subject string) (map[string]auth.ProjectRole, bool, error) {
	if r.cache != nil {
		if e, ok := r.cache.Get(subject); ok && r.now().Before(e.deadline) {
			return e.roles, true, nil
		}
	}
	v, err, _ := r.group.Do(subject, func() (any, error) {
		// Not the first caller's context: its cancellation must not fail
		// the others sharing the flight.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return r.load(ctx, subject)
	})
	if err != nil {
		return nil, false, fmt.Errorf("project: roles of %s: %w", strings.ToValidUTF8(subject, "?"), err)
	}
	return v.(map[string]auth.ProjectRole), false, nil
}

// load reads subject's roles and caches them until the TTL after the read
// began.
func (r *Resolver) load(ctx context.Context, subject string) (map[string]auth.ProjectRole, error) {
	r.mu.Lock()
	forgets := r.forgets
	r.mu.Unlock()
	start := r.now()
	roles, err := r.store.Memberships(ctx, subject)
	if err != nil {
		return nil, err
	}
	if r.cache != nil && r.now().Sub(start) <= maxCachedLookup {
		r.mu.Lock()
		// A Forget since the read began: what it read may be older.
		if r.forgets == forgets {
			r.cache.Add(subject, rolesEntry{roles: roles, deadline: start.Add(r.ttl)})
		}
		r.mu.Unlock()
	}
	return roles, nil
}

// Forget drops what this process knows of subject's roles, after a
// member change made here: the change is in force here at once, and in
// other processes within the TTL.
func (r *Resolver) Forget(subject string) {
	r.mu.Lock()
	r.forgets++
	if r.cache != nil {
		r.cache.Remove(subject)
	}
	r.mu.Unlock()
	r.group.Forget(subject)
}
