// Package people is the directory of subjects taskfn has seen: the email
// address and name their verified tokens carried. HTTP functions remember
// the caller; notify looks recipients up. It is the one place with SQL for
// the people table.
package people

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
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
	p := Person{Subject: id.Subject, Name: clean(id.Username, maxName)}
	if addr, err := mail.ParseAddress(id.Email); err == nil && addr.Name == "" &&
		addr.Address == id.Email && len(id.Email) <= maxEmail {
		p.Email = id.Email
	}
	return p
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

func upsert(ctx context.Context, db DBTX, p Person) error {
	if p.Subject == "" {
		return errors.New("people: remember: empty subject")
	}
	const q = `
INSERT INTO people (subject, email, name)
VALUES ($1, NULLIF($2, ''), $3)
ON CONFLICT (subject) DO UPDATE
SET email = coalesce(EXCLUDED.email, people.email),
    name = EXCLUDED.name,
    updated_at = now()
WHERE people.email IS DISTINCT FROM coalesce(EXCLUDED.email, people.email)
   OR people.name IS DISTINCT FROM EXCLUDED.name`
	if _, err := db.Exec(ctx, q, p.Subject, p.Email, p.Name); err != nil {
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
	rows, err := db.Query(ctx, q, subjects)
	if err != nil {
		return nil, fmt.Errorf("people: lookup: %w", err)
	}
	ps, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Person])
	if err != nil {
		return nil, fmt.Errorf("people: lookup: %w", err)
	}
	for _, p := range ps {
		out[p.Subject] = p
	}
	return out, nil
}

// Directory remembers callers with a cache in front: a function sees the
// same few callers again and again, and an unchanged entry needs no round
// trip at all.
type Directory struct {
	pool *pgxpool.Pool
	seen *lru.Cache[string, Person]
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
	seen, err := lru.New[string, Person](size)
	if err != nil {
		return nil, fmt.Errorf("people: %w", err)
	}
	return &Directory{pool: pool, seen: seen}, nil
}

// Remember is the package's Remember, skipped when this process already
// stored the same entry.
func (d *Directory) Remember(ctx context.Context, id auth.Identity) error {
	p := FromIdentity(id)
	if prev, ok := d.seen.Get(p.Subject); ok && prev == p {
		return nil
	}
	if err := upsert(ctx, d.pool, p); err != nil {
		return err
	}
	d.seen.Add(p.Subject, p)
	return nil
}
