package commentapi

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskfn/taskfn/shared/comment"
	"github.com/taskfn/taskfn/shared/people"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/task"
)

// MentionConfig is how far a mention trusts what the directory knows.
type MentionConfig struct {
	// RolesMaxAge: a mentioned person's global and group roles are those
	// of their latest request (tokens carry them; the writer of a comment
	// has only its own), trusted for this long after it. Someone unseen
	// for longer is not notified; someone removed from a Keycloak group
	// stays mentionable until their next request or this age, whichever
	// comes first. API project roles are always read fresh.
	RolesMaxAge time.Duration `envconfig:"MENTION_ROLES_MAX_AGE" default:"168h"`
}

// DefaultRolesMaxAge is MentionConfig's default, for a config built in
// code rather than loaded.
const DefaultRolesMaxAge = 7 * 24 * time.Hour

// Mentions resolves a comment body's @usernames to the people who may see
// its task.
type Mentions struct {
	db     *pgxpool.Pool
	roles  *project.Resolver
	maxAge time.Duration
}

// NewMentions resolves names in the directory on db (the primary: an
// entry is written there by the person's last request) with roles.
func NewMentions(db *pgxpool.Pool, roles *project.Resolver, cfg MentionConfig) (*Mentions, error) {
	if db == nil || roles == nil {
		return nil, errors.New("commentapi: mentions need a pool and a resolver")
	}
	if cfg.RolesMaxAge <= 0 {
		cfg.RolesMaxAge = DefaultRolesMaxAge
	}
	return &Mentions{db: db, roles: roles, maxAge: cfg.RolesMaxAge}, nil
}

// Of returns the subjects body mentions who may see the task t, in the
// order written, leaving out author (one does not notify oneself) and
// names nobody (recently seen) carries. Each is decided as the routes
// decide for that person: their roles as of their latest request, their
// API project roles as of now.
func (m *Mentions) Of(ctx context.Context, body, author string, t taskOf) ([]string, error) {
	names := comment.Mentions(body)
	if len(names) == 0 {
		return nil, nil
	}
	known, err := people.ByUsername(ctx, m.db, names, m.maxAge)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		id, ok := known[n]
		if !ok || id.Subject == author {
			continue
		}
		acc, err := m.roles.Fresh(ctx, id)
		if err != nil {
			return nil, err
		}
		if task.CanSeeIn(acc, t.entry.Project, t.entry.AssigneeID) {
			out = append(out, id.Subject)
		}
	}
	return out, nil
}
