package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/whsign"
)

// Store is the one place with SQL for webhooks and webhook_deliveries.
// Everything runs on the primary: a delivery's claim and mark must see
// the latest, and the routes are rare next to the sink's work.
type Store struct {
	db     *pg.DB
	sealer *Sealer
	topic  string
	pub    outbox.Publisher
}

// NewStore returns a Store on db whose secrets sealer seals. The event
// that a webhook was disabled goes to topic (the tasks topic, which
// notify reads), published by pub after commit (nil: by relay-outbox).
func NewStore(db *pg.DB, sealer *Sealer, topic string, pub outbox.Publisher) (*Store, error) {
	if db == nil || db.Primary == nil || sealer == nil {
		return nil, errors.New("webhook: NewStore needs a database and a sealer")
	}
	if topic == "" {
		topic = events.DefaultTasksTopic
	}
	return &Store{db: db, sealer: sealer, topic: topic, pub: pub}, nil
}

const columns = "id, owner, project, url, types, content_mode, enabled, disabled_reason, consecutive_failures, created_at, updated_at, version"

func scan(row pgx.CollectableRow) (Webhook, error) {
	var w Webhook
	err := row.Scan(&w.ID, &w.Owner, &w.Project, &w.URL, &w.Types, &w.ContentMode, &w.Enabled, &w.DisabledReason,
		&w.ConsecutiveFailures, &w.CreatedAt, &w.UpdatedAt, &w.Version)
	return w, err
}

// collectOne is the one place pgx.ErrNoRows becomes ErrNotFound.
func collectOne(rows pgx.Rows, op string) (Webhook, error) {
	w, err := pgx.CollectOneRow(rows, scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return Webhook{}, ErrNotFound
	}
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23503" { // the project is gone
			return Webhook{}, errProjectGone
		}
		return Webhook{}, fmt.Errorf("webhook: %s: %w", op, err)
	}
	return w, nil
}

var errProjectGone = errs.New(errs.NotFound, "project not found", "")

// ownerArgs are the snapshot columns' values of o.
func ownerArgs(o Owner) ([]string, map[string]string) {
	roles := make([]string, len(o.Roles))
	for i, r := range o.Roles {
		roles[i] = string(r)
	}
	groups := make(map[string]string, len(o.GroupRoles))
	for k, r := range o.GroupRoles {
		groups[k] = r.String()
	}
	return roles, groups
}

func ownerOf(subject string, roles []string, groups map[string]string) Owner {
	o := Owner{Subject: subject, GroupRoles: make(map[string]auth.ProjectRole, len(groups))}
	for _, r := range roles {
		o.Roles = append(o.Roles, auth.Role(r))
	}
	for k, r := range groups {
		if pr, ok := auth.ParseProjectRole(r); ok {
			o.GroupRoles[k] = pr
		}
	}
	return o
}

// Create stores w, owned by o, with a new signing secret, and returns it
// with the secret (shown this once).
func (s *Store) Create(ctx context.Context, w Webhook, o Owner) (Created, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Created{}, fmt.Errorf("webhook: %w", err)
	}
	secret, err := whsign.NewSecret()
	if err != nil {
		return Created{}, err
	}
	sealed, err := s.sealer.Seal(id, secret)
	if err != nil {
		return Created{}, err
	}
	roles, groups := ownerArgs(o)
	// A personal project exists once its owner first uses it.
	if w.Project != nil && *w.Project == project.PersonalKey(o.Subject) {
		if err := project.EnsurePersonalIn(ctx, s.db.Primary, o.Subject); err != nil {
			return Created{}, err
		}
	}
	const q = `
INSERT INTO webhooks (id, owner, project, url, types, content_mode, enabled, secret, owner_roles, owner_group_roles)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING ` + columns
	rows, _ := s.db.Primary.Query(ctx, q, id, o.Subject, w.Project, w.URL, w.Types, w.ContentMode, w.Enabled, sealed, roles, groups)
	created, err := collectOne(rows, "create")
	if err != nil {
		return Created{}, err
	}
	return Created{Webhook: created, Secret: secret.String()}, nil
}

// Get returns webhook id.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (Webhook, error) {
	rows, _ := s.db.Primary.Query(ctx, `SELECT `+columns+` FROM webhooks WHERE id = $1`, id)
	return collectOne(rows, "get")
}

// List returns up to limit webhooks after the one after (uuid.Nil: from
// the first), oldest first: owner's, or everyone's when owner is "".
func (s *Store) List(ctx context.Context, owner string, after uuid.UUID, limit int) ([]Webhook, bool, error) {
	const q = `
SELECT ` + columns + ` FROM webhooks
WHERE ($1 = '' OR owner = $1)
  AND id > $2
ORDER BY id
LIMIT $3`
	rows, _ := s.db.Primary.Query(ctx, q, owner, after, limit+1)
	items, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, false, fmt.Errorf("webhook: list: %w", err)
	}
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	if items == nil {
		items = []Webhook{}
	}
	return items, more, nil
}

// Update changes webhook id under a row lock by change, given the current
// row. Turning it on again clears its failures.
func (s *Store) Update(ctx context.Context, id uuid.UUID, change func(cur Webhook) (Webhook, error)) (Webhook, error) {
	var out Webhook
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT `+columns+` FROM webhooks WHERE id = $1 FOR UPDATE`, id)
		cur, err := collectOne(rows, "lock")
		if err != nil {
			return err
		}
		next, err := change(cur)
		if err != nil {
			return err
		}
		const q = `
UPDATE webhooks
SET url = $2,
    types = $3,
    content_mode = $4,
    enabled = $5,
    disabled_reason = CASE WHEN $5 THEN '' WHEN enabled THEN 'disabled through the API' ELSE disabled_reason END,
    consecutive_failures = CASE WHEN $5 AND NOT enabled THEN 0 ELSE consecutive_failures END,
    updated_at = now(),
    version = version + 1
WHERE id = $1
RETURNING ` + columns
		rows, _ = tx.Query(ctx, q, id, next.URL, next.Types, next.ContentMode, next.Enabled)
		out, err = collectOne(rows, "update")
		return err
	})
	return out, err
}

// Delete removes webhook id, and its deliveries, if check allows.
func (s *Store) Delete(ctx context.Context, id uuid.UUID, check func(cur Webhook) error) error {
	return pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT `+columns+` FROM webhooks WHERE id = $1 FOR UPDATE`, id)
		cur, err := collectOne(rows, "lock")
		if err != nil {
			return err
		}
		if err := check(cur); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, id); err != nil {
			return fmt.Errorf("webhook: delete: %w", err)
		}
		return nil
	})
}

// RefreshOwner replaces the snapshot of o's token on each of o's
// webhooks where it changed: every call of a webhook route by the owner
// brings the delivery-time check up to date with Keycloak.
func (s *Store) RefreshOwner(ctx context.Context, o Owner) error {
	roles, groups := ownerArgs(o)
	const q = `
UPDATE webhooks
SET owner_roles = $2, owner_group_roles = $3, roles_at = now()
WHERE owner = $1
  AND (owner_roles <> $2 OR owner_group_roles <> $3::jsonb)`
	if _, err := s.db.Primary.Exec(ctx, q, o.Subject, roles, groups); err != nil {
		return fmt.Errorf("webhook: refresh owner: %w", err)
	}
	return nil
}

// Target is an enabled webhook an event may go to, with what deciding
// needs.
type Target struct {
	ID      uuid.UUID
	Project *string
	Owner   Owner
}

// Targets returns the enabled webhooks subscribed to typ of the projects
// touched, and those of every project.
func (s *Store) Targets(ctx context.Context, typ string, touched []string) ([]Target, error) {
	const q = `
SELECT id, project, owner, owner_roles, owner_group_roles FROM webhooks
WHERE enabled
  AND (project IS NULL OR project = ANY($2))
  AND $1 = ANY(types)`
	rows, _ := s.db.Primary.Query(ctx, q, typ, touched)
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Target, error) {
		var (
			t      Target
			sub    string
			roles  []string
			groups map[string]string
		)
		err := row.Scan(&t.ID, &t.Project, &sub, &roles, &groups)
		t.Owner = ownerOf(sub, roles, groups)
		return t, err
	})
}

// NewDelivery is a delivery to enqueue.
type NewDelivery struct {
	WebhookID uuid.UUID
	EventID   string
	EventType string
	Projects  []string
	Event     []byte // the CloudEvent, structured JSON
}

// Enqueue stores deliveries due now; one per (webhook, event) ever, so
// a redelivered event adds nothing. It returns the ids of the new ones.
func (s *Store) Enqueue(ctx context.Context, ds []NewDelivery) ([]uuid.UUID, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	ids := make([]uuid.UUID, len(ds))
	hooks := make([]uuid.UUID, len(ds))
	evIDs := make([]string, len(ds))
	types := make([]string, len(ds))
	projects := make([]string, len(ds)) // JSON arrays: unnest cannot take a 2-D array of ragged rows
	evs := make([][]byte, len(ds))
	for i, d := range ds {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("webhook: %w", err)
		}
		p, _ := json.Marshal(nonNil(d.Projects))
		ids[i], hooks[i], evIDs[i], types[i], projects[i], evs[i] = id, d.WebhookID, d.EventID, d.EventType, string(p), d.Event
	}
	const q = `
INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, projects, event)
SELECT i, h, e, t, ARRAY(SELECT jsonb_array_elements_text(p::jsonb)), ev
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::bytea[]) AS u(i, h, e, t, p, ev)
ON CONFLICT (webhook_id, event_id) DO NOTHING
RETURNING id`
	rows, _ := s.db.Primary.Query(ctx, q, ids, hooks, evIDs, types, projects, evs)
	out, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("webhook: enqueue: %w", err)
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Claimed is a delivery claimed for one attempt: until its lease ends,
// only the holder of Token may mark it.
type Claimed struct {
	ID          uuid.UUID
	Token       uuid.UUID
	WebhookID   uuid.UUID
	EventID     string
	EventType   string
	Projects    []string
	Event       []byte
	Attempts    int // before this one
	URL         string
	ContentMode string
	Project     *string
	Owner       Owner
	sealed      []byte
}

// Claim leases due pending deliveries of enabled webhooks for lease: at
// most limit of them, oldest due first, skipping rows another claim
// holds (FOR UPDATE SKIP LOCKED). With ids, only those, and only of
// webhooks not failing: the sink's first attempts, while a failing
// webhook's deliveries wait for the tick's backoff. The lease is
// next_attempt_at moved past the attempt: a claim whose process died is
// due again when it ends.
func (s *Store) Claim(ctx context.Context, ids []uuid.UUID, limit int, lease time.Duration) ([]Claimed, error) {
	token, err := uuid.NewRandom()
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	const q = `
WITH c AS (
    SELECT d.id FROM webhook_deliveries d
    JOIN webhooks w ON w.id = d.webhook_id
    WHERE d.state = 'pending'
      AND d.next_attempt_at <= now()
      AND w.enabled
      AND ($1::uuid[] IS NULL OR (d.id = ANY($1) AND w.consecutive_failures = 0))
    ORDER BY d.next_attempt_at
    LIMIT $2
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
SET next_attempt_at = now() + $3::interval, lease_token = $4, updated_at = now()
FROM c, webhooks w
WHERE d.id = c.id AND w.id = d.webhook_id
RETURNING d.id, d.webhook_id, d.event_id, d.event_type, d.projects, d.event, d.attempts,
    w.url, w.content_mode, w.secret, w.project, w.owner, w.owner_roles, w.owner_group_roles`
	rows, _ := s.db.Primary.Query(ctx, q, ids, limit, lease, token)
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Claimed, error) {
		var (
			c      Claimed
			sub    string
			roles  []string
			groups map[string]string
		)
		err := row.Scan(&c.ID, &c.WebhookID, &c.EventID, &c.EventType, &c.Projects, &c.Event, &c.Attempts,
			&c.URL, &c.ContentMode, &c.sealed, &c.Project, &sub, &roles, &groups)
		c.Token, c.Owner = token, ownerOf(sub, roles, groups)
		return c, err
	})
}

// Outcome is what one attempt came to.
type Outcome struct {
	State      string // delivered, pending (retry at Next), failed (given up) or dropped
	Next       time.Time
	StatusCode int // 0: no answer
	Latency    time.Duration
	Error      string
	Failure    bool // counts towards disabling the webhook
}

// Finished is what marking an attempt did.
type Finished struct {
	LeaseLost bool // another claim took the delivery over: nothing marked
	Disabled  bool // this failure disabled the webhook
}

// Finish marks c's attempt as o, if c's claim is still the delivery's,
// and counts it on the webhook: a success clears its failures, a failure
// adds one, and the disableAfter-th in a row disables it, with the event
// that tells its owner, in the same transaction.
func (s *Store) Finish(ctx context.Context, c Claimed, o Outcome, disableAfter int) (Finished, error) {
	var f Finished
	attempted := o.State != "dropped"
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		f = Finished{}
		const q = `
UPDATE webhook_deliveries
SET state = $3,
    attempts = attempts + $4,
    next_attempt_at = COALESCE($5, next_attempt_at),
    lease_token = NULL,
    status_code = $6,
    latency_ms = $7,
    error = $8,
    updated_at = now()
WHERE id = $1 AND lease_token = $2`
		var next *time.Time
		if o.State == "pending" {
			next = &o.Next
		}
		inc := 0
		if attempted {
			inc = 1
		}
		var code *int
		if o.StatusCode != 0 {
			code = &o.StatusCode
		}
		tag, err := tx.Exec(ctx, q, c.ID, c.Token, o.State, inc, next, code, o.Latency.Milliseconds(), o.Error)
		if err != nil {
			return fmt.Errorf("webhook: finish: %w", err)
		}
		if tag.RowsAffected() == 0 {
			f.LeaseLost = true
			return nil
		}
		switch {
		case o.State == "delivered":
			_, err := tx.Exec(ctx, `UPDATE webhooks SET consecutive_failures = 0 WHERE id = $1 AND consecutive_failures <> 0`, c.WebhookID)
			if err != nil {
				return fmt.Errorf("webhook: finish: %w", err)
			}
		case o.Failure:
			return s.fail(ctx, tx, c, o, disableAfter, &f)
		}
		return nil
	})
	if err != nil {
		return Finished{}, err
	}
	if f.Disabled {
		outbox.PublishCommitted(ctx, s.db.Primary, s.pub, c.WebhookID.String())
	}
	return f, nil
}

func (s *Store) fail(ctx context.Context, tx pgx.Tx, c Claimed, o Outcome, disableAfter int, f *Finished) error {
	// o holds the row as it was, under its lock: only the failure that
	// turns an enabled webhook off tells its owner. Attempts still in
	// flight when it went off count no more.
	const q = `
UPDATE webhooks w
SET consecutive_failures = w.consecutive_failures + CASE WHEN w.enabled THEN 1 ELSE 0 END,
    enabled = w.enabled AND w.consecutive_failures + 1 < $2,
    disabled_reason = CASE WHEN w.enabled AND w.consecutive_failures + 1 >= $2 THEN $3 ELSE w.disabled_reason END,
    updated_at = CASE WHEN w.enabled AND w.consecutive_failures + 1 >= $2 THEN now() ELSE w.updated_at END,
    version = CASE WHEN w.enabled AND w.consecutive_failures + 1 >= $2 THEN w.version + 1 ELSE w.version END
FROM (SELECT id, enabled FROM webhooks WHERE id = $1 FOR UPDATE) o
WHERE w.id = o.id
RETURNING w.consecutive_failures, o.enabled AND NOT w.enabled, w.owner, w.project, w.url`
	reason := fmt.Sprintf("disabled after %d failed deliveries in a row; the last: %s", disableAfter, clip(o.Error, 500))
	var (
		failures int
		disabled bool
		d        events.WebhookDisabledData
	)
	err := tx.QueryRow(ctx, q, c.WebhookID, disableAfter, reason).Scan(&failures, &disabled, &d.Owner, &d.Project, &d.URL)
	if err != nil {
		return fmt.Errorf("webhook: count the failure: %w", err)
	}
	if !disabled {
		return nil
	}
	f.Disabled = true
	d.WebhookID, d.Failures, d.LastError = c.WebhookID, failures, clip(o.Error, 500)
	if o.StatusCode != 0 {
		code := o.StatusCode
		d.LastStatusCode = &code
	}
	ev, err := events.New(s.topic, events.SourceWebhooks, c.WebhookID, d)
	if err != nil {
		return err
	}
	return outbox.Add(ctx, tx, ev)
}

// Delivery is one delivery as GET /webhooks/{id}/deliveries shows it.
type Delivery struct {
	ID            uuid.UUID  `json:"id"`
	EventID       string     `json:"event_id"`
	EventType     string     `json:"event_type"`
	State         string     `json:"state"`
	StatusCode    *int       `json:"status_code"`
	LatencyMS     *int       `json:"latency_ms"`
	Error         string     `json:"error"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"` // pending only
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

const deliveryColumns = `id, event_id, event_type, state, status_code, latency_ms, error, attempts,
    CASE WHEN state = 'pending' THEN next_attempt_at END, created_at, updated_at`

func scanDelivery(row pgx.CollectableRow) (Delivery, error) {
	var d Delivery
	err := row.Scan(&d.ID, &d.EventID, &d.EventType, &d.State, &d.StatusCode, &d.LatencyMS, &d.Error, &d.Attempts,
		&d.NextAttemptAt, &d.CreatedAt, &d.UpdatedAt)
	return d, err
}

// MaxListedDeliveries is how many of a webhook's deliveries are shown.
const MaxListedDeliveries = 100

// Deliveries returns webhook id's last MaxListedDeliveries deliveries,
// newest first.
func (s *Store) Deliveries(ctx context.Context, webhookID uuid.UUID) ([]Delivery, error) {
	const q = `
SELECT ` + deliveryColumns + ` FROM webhook_deliveries
WHERE webhook_id = $1
ORDER BY created_at DESC, id DESC
LIMIT $2`
	rows, _ := s.db.Primary.Query(ctx, q, webhookID, MaxListedDeliveries)
	out, err := pgx.CollectRows(rows, scanDelivery)
	if err != nil {
		return nil, fmt.Errorf("webhook: deliveries: %w", err)
	}
	if out == nil {
		out = []Delivery{}
	}
	return out, nil
}

// Redeliver makes delivery id of webhook webhookID due now again,
// whatever became of it: its next attempt is the tick's (or, with
// webhook disabled, the first after it is enabled again).
func (s *Store) Redeliver(ctx context.Context, webhookID, id uuid.UUID) (Delivery, error) {
	const q = `
UPDATE webhook_deliveries
SET state = 'pending', next_attempt_at = now(), lease_token = NULL, updated_at = now()
WHERE id = $1 AND webhook_id = $2
RETURNING ` + deliveryColumns
	rows, _ := s.db.Primary.Query(ctx, q, id, webhookID)
	d, err := pgx.CollectOneRow(rows, scanDelivery)
	if errors.Is(err, pgx.ErrNoRows) {
		return Delivery{}, ErrDeliveryNotFound
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("webhook: redeliver: %w", err)
	}
	return d, nil
}

// Prune deletes up to limit deliveries finished before olderThan, and
// says how many it deleted.
func (s *Store) Prune(ctx context.Context, olderThan time.Time, limit int) (int64, error) {
	const q = `
DELETE FROM webhook_deliveries
WHERE id IN (
    SELECT id FROM webhook_deliveries
    WHERE state <> 'pending'
      AND updated_at < $1
    LIMIT $2)`
	tag, err := s.db.Primary.Exec(ctx, q, olderThan, limit)
	if err != nil {
		return 0, fmt.Errorf("webhook: prune: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Secret opens c's signing secret.
func (s *Store) Secret(c Claimed) (whsign.Secret, error) { return s.sealer.Open(c.WebhookID, c.sealed) }
