// Package people is the directory of subjects taskfn has seen: the email
// address and name their verified tokens carried. HTTP functions remember
// the caller; notify looks recipients up. It is the one place with SQL for
// the people table.
package people

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskfn/taskfn/shared/auth"
)

// Person is one directory entry. Email is empty when no verified address
// is known.
type Person struct {
	Subject string
	Email   string
	Name    string
	// Username is the token's preferred_username, lowercased; Roles and
	// ProjectRoles are what the token carried. Mentions read them.
	Username     string
	Roles        []string
	ProjectRoles map[string]string // project key → role name
}

// fingerprint is p as one comparable value, for the Directory's cache.
func (p Person) fingerprint() string {
	keys := make([]string, 0, len(p.ProjectRoles))
	for k, r := range p.ProjectRoles {
		keys = append(keys, k+"="+r)
	}
	slices.Sort(keys)
	return strings.Join([]string{p.Subject, p.Email, p.Name, p.Username, strings.Join(p.Roles, ","), strings.Join(keys, ",")}, "\x00")
}

// Limits matching the table's constraint and what a header can carry.
const (
	maxEmail = 320
	maxName  = 200
)

// DBTX is what both a pool and a transaction offer.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// FromIdentity is the entry a verified identity gives: a malformed email is
// dropped rather than stored, and the name is the token's username.
func FromIdentity(id auth.Identity) Person {
	p := Person{Subject: id.Subject, Name: clean(id.Username, maxName), Username: Username(id.Username)}
	if addr, err := mail.ParseAddress(id.Email); err == nil && addr.Name == "" &&
		addr.Address == id.Email && len(id.Email) <= maxEmail {
		p.Email = id.Email
	}
	for _, r := range id.Roles {
		p.Roles = append(p.Roles, string(r))
	}
	slices.Sort(p.Roles)
	if len(id.ProjectRoles) > 0 {
		p.ProjectRoles = make(map[string]string, len(id.ProjectRoles))
		for k, r := range id.ProjectRoles {
			p.ProjectRoles[k] = r.String()
		}
	}
	return p
}

// Username is the form usernames are stored and matched in: Keycloak's
// usernames are case-insensitive and it lowercases them; cleaned as a
// name is (no control characters, at most maxName).
func Username(s string) string {
	return strings.ToLower(clean(strings.ToValidUTF8(s, ""), maxName))
}

// clean drops control characters (a name ends up in an email header) and
// bounds the length.
func clean(s string, limit int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if r := []rune(s); len(r) > limit {
		s = string(r[:limit])
	}
	return strings.TrimSpace(s)
}

// Remember upserts the caller's entry. It writes only when something
// changed, so calling it on every request costs one round trip and no
// WAL. A token without an email keeps the address already known: its
// client may simply not have asked for the email scope.
func Remember(ctx context.Context, db DBTX, id auth.Identity) error {
	return upsert(ctx, db, FromIdentity(id))
}

// rolesRefresh is how stale roles_seen_at may grow before an unchanged
// entry is written again: mentions need to know roughly when the roles
// were last proved, not to the second, and a write per request would cost
// WAL for nothing.
const rolesRefresh = time.Hour

func upsert(ctx context.Context, db DBTX, p Person) error {
	if p.Subject == "" {
		return errors.New("people: remember: empty subject")
	}
	roles := p.Roles
	if roles == nil {
		roles = []string{}
	}
	pr := p.ProjectRoles
	if pr == nil {
		pr = map[string]string{}
	}
	projectRoles, err := json.Marshal(pr)
	if err != nil {
		return fmt.Errorf("people: remember: %w", err)
	}
	const q = `
INSERT INTO people (subject, email, name, username, roles, project_roles, roles_seen_at)
VALUES ($1, NULLIF($2, ''), $3, NULLIF($4, ''), $5, $6, now())
ON CONFLICT (subject) DO UPDATE
SET email = coalesce(EXCLUDED.email, people.email),
    name = EXCLUDED.name,
    username = EXCLUDED.username,
    roles = EXCLUDED.roles,
    project_roles = EXCLUDED.project_roles,
    roles_seen_at = now(),
    updated_at = now()
WHERE people.email IS DISTINCT FROM coalesce(EXCLUDED.email, people.email)
   OR people.name IS DISTINCT FROM EXCLUDED.name
   OR people.username IS DISTINCT FROM EXCLUDED.username
   OR people.roles IS DISTINCT FROM EXCLUDED.roles
   OR people.project_roles IS DISTINCT FROM EXCLUDED.project_roles
   OR people.roles_seen_at IS NULL
   OR people.roles_seen_at < now() - $7::interval`
	if _, err := db.Exec(ctx, q, p.Subject, p.Email, p.Name, p.Username, roles, string(projectRoles), rolesRefresh.String()); err != nil {
		return fmt.Errorf("people: remember: %w", err)
	}
	return nil
}

// Lookup returns the entries of subjects that have one, by subject.
func Lookup(ctx context.Context, db DBTX, subjects []string) (map[string]Person, error) {
	out := make(map[string]Person, len(subjects))
	if len(subjects) == 0 {
		return out, nil
	}
	const q = `
SELECT subject, coalesce(email, ''), name
FROM people
WHERE subject = ANY($1)`
	rows, _ := db.Query(ctx, q, subjects)
	var p Person
	_, err := pgx.ForEachRow(rows, []any{&p.Subject, &p.Email, &p.Name}, func() error {
		out[p.Subject] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("people: lookup: %w", err)
	}
	return out, nil
}

// ByUsername returns, for each of usernames (in Username's form) a person
// has, the identity their latest token gave them, if a request proved it
// within maxAge: subject, username, email and roles. When two subjects
// have carried one username, the one seen last has it.
func ByUsername(ctx context.Context, db DBTX, usernames []string, maxAge time.Duration) (map[string]auth.Identity, error) {
	out := make(map[string]auth.Identity, len(usernames))
	if len(usernames) == 0 {
		return out, nil
	}
	const q = `
SELECT DISTINCT ON (username) username, subject, coalesce(email, ''), roles, project_roles
FROM people
WHERE username = ANY($1)
  AND roles_seen_at > now() - $2::interval
ORDER BY username, roles_seen_at DESC`
	rows, _ := db.Query(ctx, q, usernames, maxAge.String())
	var (
		name, subject, email string
		roles                []string
		projectRoles         map[string]string
	)
	_, err := pgx.ForEachRow(rows, []any{&name, &subject, &email, &roles, &projectRoles}, func() error {
		out[name] = identity(auth.Identity{Subject: subject, Username: name, Email: email}, roles, projectRoles)
		roles, projectRoles = nil, nil
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("people: by username: %w", err)
	}
	return out, nil
}

// IdentityOf returns the identity subject's latest token gave it, as
// remembered (email, username, roles, project roles), and whether it has
// an entry at all: what acts for a subject later, when no token is at
// hand (the weekly digest), knows it by this.
func IdentityOf(ctx context.Context, db DBTX, subject string) (auth.Identity, bool, error) {
	const q = `
SELECT coalesce(email, ''), coalesce(username, ''), roles, project_roles
FROM people
WHERE subject = $1`
	rows, _ := db.Query(ctx, q, subject)
	id := auth.Identity{Subject: subject}
	var (
		roles        []string
		projectRoles map[string]string
	)
	n, err := pgx.ForEachRow(rows, []any{&id.Email, &id.Username, &roles, &projectRoles}, func() error { return nil })
	if err != nil {
		return auth.Identity{}, false, fmt.Errorf("people: identity of: %w", err)
	}
	return identity(id, roles, projectRoles), n.RowsAffected() > 0, nil
}

// identity is id with the roles and project roles stored for it; a
// project role no longer known is dropped.
func identity(id auth.Identity, roles []string, projectRoles map[string]string) auth.Identity {
	for _, r := range roles {
		id.Roles = append(id.Roles, auth.Role(r))
	}
	for k, r := range projectRoles {
		if role, ok := auth.ParseProjectRole(r); ok {
			if id.ProjectRoles == nil {
				id.ProjectRoles = map[string]auth.ProjectRole{}
			}
			id.ProjectRoles[k] = role
		}
	}
	return id
}

// Directory remembers callers with a cache in front: a function sees the
// same few callers again and again, and an unchanged entry needs no round
// trip at all until its roles_seen_at is due for a refresh.
type Directory struct {
	pool *pgxpool.Pool
	seen *lru.Cache[string, stored]
}

// stored is what a Directory wrote for a subject, and when.
type stored struct {
	fingerprint string
	at          time.Time
}

// DefaultCacheSize bounds the entries a Directory keeps in memory.
const DefaultCacheSize = 10_000

// New returns a Directory on pool caching up to size entries.
func New(pool *pgxpool.Pool, size int) (*Directory, error) {
	if pool == nil {
		return nil, errors.New("people: New needs a pool")
	}
	if size < 1 {
		size = DefaultCacheSize
	}
	seen, err := lru.New[string, stored](size)
	if err != nil {
		return nil, fmt.Errorf("people: %w", err)
	}
	return &Directory{pool: pool, seen: seen}, nil
}

// Remember is the package's Remember, skipped when this process already
// stored the same entry less than rolesRefresh ago.
func (d *Directory) Remember(ctx context.Context, id auth.Identity) error {
	p := FromIdentity(id)
	f := p.fingerprint()
	if prev, ok := d.seen.Get(p.Subject); ok && prev.fingerprint == f && time.Since(prev.at) < rolesRefresh {
		return nil
	}
	if err := upsert(ctx, d.pool, p); err != nil {
		return err
	}
	d.seen.Add(p.Subject, stored{fingerprint: f, at: time.Now()})
	return nil
}
