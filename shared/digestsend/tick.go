// Package digestsend is send-digests' tick (issue #19): it claims the
// subjects whose weekly digest is due (digest.Store), composes each one's
// figures and chart, and files it once with its event
// (dev.taskfn.digest.weekly.v1) for notify to turn into an inbox entry and
// an email. Apart from package digest so that the preference functions,
// which share digest's Store, link no chart renderer (gonum/plot).
package digestsend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/digest"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/people"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/task"
)

// TickConfig bounds a tick of send-digests.
type TickConfig struct {
	// BatchSize: subjects claimed at once. A digest costs a few queries
	// and a chart (tens of ms), so a batch is a few seconds of work.
	BatchSize int `envconfig:"DIGEST_BATCH_SIZE" default:"20"`
	// Budget bounds a tick, below the PingSource's period (15 minutes)
	// and the Service's request timeout (300s): what is left waits for
	// the next tick.
	Budget time.Duration `envconfig:"DIGEST_BUDGET" default:"4m"`
	// Lease is how long a claimed subject is left to the tick that took
	// it; past it (that tick died) another takes it. Longer than one
	// batch's work.
	Lease time.Duration `envconfig:"DIGEST_CLAIM_LEASE" default:"2m"`
}

func (c TickConfig) validate() error {
	if c.BatchSize < 1 || c.BatchSize > 1000 || c.Budget <= 0 || c.Lease <= 0 {
		return fmt.Errorf("digest: DIGEST_BATCH_SIZE %d must be 1 to 1000, DIGEST_BUDGET %s and DIGEST_CLAIM_LEASE %s positive", c.BatchSize, c.Budget, c.Lease)
	}
	return nil
}

// chartTimeout bounds each statement of a digest's chart (the status
// summary of the user's projects, proportional to their size, where the
// rest of a digest is proportional to the user's own tasks).
const chartTimeout = 5 * time.Second

// Bounds of a digest's content, which the event schema states too.
const (
	maxOpen     = 20
	maxProjects = 10
	maxTitles   = 3
)

// Retention of the digests rows. A row's chart is read once, when notify
// records its event (and copies the chart into the email); its unique
// (subject, week) matters only within its week (digest.Plan never sends a past
// week). Two weeks outlast any event's way to notify: the outbox keeps
// unpublished events, and a topic keeps them about a week.
const (
	retention  = 14 * 24 * time.Hour
	purgeBatch = 1000
)

// Result is what one tick did, its 200 body.
type Result struct {
	Sent     int   `json:"sent"`
	Skipped  int   `json:"skipped"` // claimed, but not due or sent already
	Failed   int   `json:"failed"`  // left for a later tick
	Purged   int64 `json:"purged"`  // digests past their retention
	Complete bool  `json:"complete"`
}

// Tick sends the digests that are due on every CloudEvent POSTed to it
// (a PingSource tick).
type Tick struct {
	store *digest.Store
	tasks *task.Store
	roles *project.Resolver
	db    *pg.DB
	cfg   TickConfig
	now   func() time.Time
	// chartTimeout is the const chartTimeout; tests shorten it.
	chartTimeout time.Duration
}

// NewTick returns the tick over its stores: digests, tasks, the project
// roles (read fresh for each digest) and the database, for the people
// directory.
func NewTick(store *digest.Store, tasks *task.Store, roles *project.Resolver, db *pg.DB, cfg TickConfig) (*Tick, error) {
	if store == nil || tasks == nil || roles == nil || db == nil {
		return nil, errors.New("digest: NewTick needs the digest and task stores, the role resolver and the database")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Tick{store: store, tasks: tasks, roles: roles, db: db, cfg: cfg, now: time.Now, chartTimeout: chartTimeout}, nil
}

// Route is the tick's route: ticks are POSTed to /.
func (h *Tick) Route() httpx.Route {
	return httpx.Route{Name: "send-digests", Method: http.MethodPost, Path: "/", Handler: events.TickHandler("digests", h.Run)}
}

// Run sends what is due now, batch after batch, within the budget, then
// purges a batch of digests past their retention. A subject whose digest
// fails is logged and left to its lease's end; the first failure is
// returned once the rest is done, so the tick is retried. When the budget
// runs out, the subjects claimed and not yet done wait for their lease to
// end, and the tick answers 200.
func (h *Tick) Run(ctx context.Context) (Result, error) {
	var res Result
	var first error
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Budget)
	defer cancel()
	spent := func() bool { return parent.Err() == nil && ctx.Err() != nil }
	for ctx.Err() == nil {
		claims, err := h.store.Claim(ctx, h.now(), h.cfg.BatchSize, h.cfg.Lease)
		if err != nil {
			if spent() {
				return res, first
			}
			return res, errors.Join(first, err)
		}
		for _, c := range claims {
			if ctx.Err() != nil {
				break
			}
			sent, err := h.one(ctx, c)
			if err != nil && spent() {
				break // the budget ran out mid-digest: a later tick does it once its lease ends
			}
			switch {
			case err != nil:
				res.Failed++
				zerolog.Ctx(ctx).Warn().Err(err).Str("subject", c.Subject).Msg("digest failed: retried when its claim runs out")
				if first == nil {
					first = err
				}
			case sent:
				res.Sent++
			default:
				res.Skipped++
			}
		}
		if len(claims) < h.cfg.BatchSize {
			res.Complete = true
			break
		}
	}
	if spent() {
		return res, first
	}
	purged, err := h.store.PurgeBefore(ctx, h.now().Add(-retention), purgeBatch)
	res.Purged = purged
	return res, errors.Join(first, err)
}

// one computes and files c's digest, if due.
func (h *Tick) one(ctx context.Context, c digest.Claim) (bool, error) {
	now := h.now()
	loc := digest.Preferences{TimeZone: c.TimeZone}.Location()
	send, week, _ := digest.Plan(now, loc, c.LastWeek)
	if !send {
		return false, h.store.Reschedule(ctx, c, now)
	}
	d, png, err := h.compose(ctx, c, week, now, loc)
	if err != nil {
		return false, err
	}
	return h.store.Record(ctx, now, d, png)
}

// compose computes c's digest of week at now: what the subject may see,
// as its latest token (people) and the members table say now.
func (h *Tick) compose(ctx context.Context, c digest.Claim, week string, now time.Time, loc *time.Location) (events.DigestWeeklyData, []byte, error) {
	id, _, err := people.IdentityOf(ctx, h.db.Primary, c.Subject)
	if err != nil {
		return events.DigestWeeklyData{}, nil, err
	}
	acc, err := h.roles.Fresh(ctx, id)
	if err != nil {
		return events.DigestWeeklyData{}, nil, err
	}
	monday := digest.DueAt(now, loc)
	from := time.Date(monday.Year(), monday.Month(), monday.Day()-7, 0, 0, 0, 0, loc)
	to := time.Date(monday.Year(), monday.Month(), monday.Day(), 0, 0, 0, 0, loc)
	projects := acc.Visible()
	counts, err := h.tasks.Digest(ctx, task.DigestQuery{
		Subject: c.Subject, Only: task.ScopeOf(acc), Projects: projects, From: from, To: to, Now: now,
		Open: maxOpen, Titles: maxTitles, MaxProjects: maxProjects,
	})
	if err != nil {
		return events.DigestWeeklyData{}, nil, err
	}
	digestID, err := uuid.NewV7()
	if err != nil {
		return events.DigestWeeklyData{}, nil, fmt.Errorf("digest: %w", err)
	}
	d := events.DigestWeeklyData{
		DigestID: digestID, Subject: c.Subject, Week: week, TimeZone: loc.String(), From: from.UTC(), To: to.UTC(),
		Open: counts.OpenCount, Overdue: counts.Overdue, Completed: counts.Completed,
	}
	for _, t := range counts.Open {
		d.OpenTasks = append(d.OpenTasks, events.DigestTask{ID: t.ID, Title: t.Title, Project: t.Project, Status: string(t.Status),
			DueAt: t.DueAt, Overdue: t.DueAt != nil && t.DueAt.Before(now)})
	}
	for _, p := range counts.ByProject {
		d.Projects = append(d.Projects, events.DigestProject{Project: p.Project, Count: p.Count, Titles: p.Titles})
	}
	png, err := h.chart(ctx, c.Subject, projects, week, from, now)
	if err != nil {
		return events.DigestWeeklyData{}, nil, err
	}
	d.Chart = png != nil
	return d, png, nil
}

// chart draws last week's status summary of the subject's tasks (those of
// its projects and those assigned to it) over the UTC days of that week.
func (h *Tick) chart(ctx context.Context, subject string, projects []string, week string, from, now time.Time) ([]byte, error) {
	day := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	sum, err := h.tasks.Summarize(ctx, task.ExportQuery{Only: &task.Scope{Projects: projects, Assignee: subject}},
		day, day.AddDate(0, 0, 7), now, task.ExportOptions{StatusPerDay: true, Timeout: h.chartTimeout})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "57014" && ctx.Err() == nil { // query_canceled: the statement timeout
		// The status summary reads every task of the user's projects: a
		// user of huge ones gets the digest without its chart rather than
		// none.
		zerolog.Ctx(ctx).Warn().Str("subject", subject).Dur("timeout", h.chartTimeout).Msg("digest chart took too long: sent without it")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := figure(sum, week).PNG(&b); err != nil {
		return nil, fmt.Errorf("digest: chart: %w", err)
	}
	return b.Bytes(), nil
}
