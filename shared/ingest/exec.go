package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/comment"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/task"
)

// Executor gives commands their effect, each once, as the identity that
// sent it, deciding exactly as the HTTP routes do.
type Executor struct {
	db       *pg.DB
	tasks    *task.Store
	comments *comment.Store
	cache    *cache.Cache
	roles    *project.Resolver
	// topic and pub: where rejected events go, published after commit
	// (nil pub: by relay-outbox).
	topic string
	pub   outbox.Publisher
}

// Deps is what an Executor runs on.
type Deps struct {
	DB       *pg.DB
	Tasks    *task.Store
	Comments *comment.Store
	Cache    *cache.Cache // refreshed after each write, as the task routes do
	Roles    *project.Resolver
	Topic    string           // of rejected events (the tasks topic)
	Pub      outbox.Publisher // nil: relay-outbox publishes them
}

// NewExecutor returns an Executor on d.
func NewExecutor(d Deps) (*Executor, error) {
	if d.DB == nil || d.Tasks == nil || d.Comments == nil || d.Cache == nil || d.Roles == nil || d.Topic == "" {
		return nil, fmt.Errorf("ingest: executor: %w", function.ErrMissing)
	}
	return &Executor{db: d.DB, tasks: d.Tasks, comments: d.Comments, cache: d.Cache, roles: d.Roles, topic: d.Topic, pub: d.Pub}, nil
}

// maxAttempts bounds Run's optimistic retries: each retry follows another
// delivery's or create's commit, so two suffice but under extreme races.
const maxAttempts = 4

var errContended = errs.New(errs.Unavailable, "ingest: command contended",
	"the command's task was being created or changed concurrently; retry")

// Run gives c its effect as id, once: a command whose receipt exists
// (producer, source, id) is answered with it and changes nothing; else
// its effect and its receipt commit together, or neither does. A refusal
// (403, 404, 412, 422) is returned as its error and writes nothing.
func (x *Executor) Run(ctx context.Context, id auth.Identity, c Command) (Receipt, error) {
	k := key{producer: id.Subject, source: c.Source, id: c.ID}
	for range maxAttempts {
		if r, ok, err := receipt(ctx, x.db.Primary, k); err != nil || ok {
			return r, err
		}
		r, err := x.run(ctx, id, k, c)
		if errors.Is(err, errDuplicate) || errors.Is(err, errRefTaken) {
			continue // another delivery or create committed first: look again
		}
		return r, err
	}
	return Receipt{}, errContended
}

func (x *Executor) run(ctx context.Context, id auth.Identity, k key, c Command) (Receipt, error) {
	target := c.TaskID
	if c.Ref != "" {
		tid, ok, err := lookupRef(ctx, x.db, k.producer, c.Ref)
		if err != nil {
			return Receipt{}, err
		}
		switch {
		case ok:
			target = tid
		case c.Type != events.CommandTaskCreate:
			return Receipt{}, task.ErrNotFound
		}
	}
	switch c.Type {
	case events.CommandTaskCreate:
		if target == uuid.Nil {
			return x.create(ctx, id, k, c)
		}
		r, err := x.change(ctx, id, k, target, c.ExpectedVersion, merge(c.Patch, "data"))
		if errors.Is(err, task.ErrNotFound) {
			return r, x.forgetGone(ctx, k.producer, c.Ref, target, err)
		}
		return r, err
	case events.CommandTaskUpdate:
		return x.change(ctx, id, k, target, c.ExpectedVersion, merge(c.Patch, "data.patch"))
	case events.CommandTaskClose:
		return x.change(ctx, id, k, target, c.ExpectedVersion, func(cur task.Task) (task.Task, []errs.FieldError) {
			cur.Status = c.Status
			return cur, nil
		})
	case events.CommandTaskComment:
		return x.comment(ctx, id, k, target, c.Body)
	}
	return Receipt{}, fmt.Errorf("ingest: command type %q passed Parse", c.Type)
}

// forgetGone: a create command's ref named a task that is not found. If
// the task is in the trash (or gone), the ref is dropped so that the
// command, tried again, creates a new task (errRefTaken makes Run retry);
// a task the producer merely may not see stays refused.
func (x *Executor) forgetGone(ctx context.Context, producer, ref string, tid uuid.UUID, notFound error) error {
	if _, err := x.tasks.GetPrimary(ctx, tid); !errors.Is(err, task.ErrNotFound) {
		if err != nil {
			return err
		}
		return notFound
	}
	if err := dropRef(ctx, x.db, producer, ref, tid); err != nil {
		return err
	}
	return errRefTaken
}

// create is POST /tasks's decision and write, with the ref (if any) and
// the receipt in the write's transaction.
func (x *Executor) create(ctx context.Context, id auth.Identity, k key, c Command) (Receipt, error) {
	t, err := task.Draft(c.Patch, id.Subject)
	if err != nil {
		return Receipt{}, under("data", err)
	}
	if err := x.roles.Decide(ctx, id, func(acc project.Access) error { return task.CheckCreate(acc, t) }, task.ErrNoProject); err != nil {
		return Receipt{}, err
	}
	var rec Receipt
	cw := x.cache.BeginWrite(ctx)
	created, err := x.tasks.Also(func(ctx context.Context, tx pgx.Tx, written task.Task) error {
		if c.Ref != "" {
			if err := addRef(ctx, tx, k.producer, c.Ref, written.ID); err != nil {
				return err
			}
		}
		rec = taskReceipt(http.StatusCreated, written)
		return record(ctx, tx, k, rec)
	}).Create(ctx, id.Subject, t)
	if err != nil {
		return Receipt{}, err
	}
	cw.Stored(ctx, created)
	return rec, nil
}

// change is PATCH /tasks/{id}'s decision and write (apply standing for
// the merge patch), with the receipt in the write's transaction; an
// expected version is If-Match's.
func (x *Executor) change(ctx context.Context, id auth.Identity, k key, tid uuid.UUID, expected *int64, apply func(task.Task) (task.Task, []errs.FieldError)) (Receipt, error) {
	var (
		rec     Receipt
		t       task.Task
		parents []task.Task
	)
	store := x.tasks.Also(func(ctx context.Context, tx pgx.Tx, written task.Task) error {
		rec = taskReceipt(http.StatusOK, written)
		return record(ctx, tx, k, rec)
	})
	cw := x.cache.BeginWrite(ctx)
	err := x.roles.Decide(ctx, id, func(acc project.Access) error {
		var err error
		parents = parents[:0]
		t, err = store.Update(ctx, acc.ID.Subject, tid, func(cur task.Task) (task.Task, error) {
			if !task.CanSee(acc, cur) {
				return cur, task.ErrNotFound
			}
			if expected != nil && cur.Version != *expected {
				return cur, task.ErrVersionMismatch
			}
			next, bad := apply(cur)
			if len(bad) > 0 {
				return cur, errs.Validation(bad...)
			}
			return next, task.CheckChange(acc, cur, next)
		}, &parents)
		return err
	}, task.ErrNoProject)
	if err != nil {
		return Receipt{}, err
	}
	cw.Stored(ctx, t)
	cw.StoredMany(ctx, parents)
	return rec, nil
}

// comment is POST /tasks/{id}/comments's decision and write, with the
// receipt in the write's transaction. A command's comment notifies no
// @mention: a producer is not a person whose words should page people.
func (x *Executor) comment(ctx context.Context, id auth.Identity, k key, tid uuid.UUID, body string) (Receipt, error) {
	e, err := x.cache.Get(ctx, tid)
	if err != nil {
		return Receipt{}, err
	}
	var cur task.Task
	if err := json.Unmarshal(e.JSON, &cur); err != nil {
		return Receipt{}, fmt.Errorf("ingest: cached task %s: %w", tid, err)
	}
	var acc project.Access
	err = x.roles.Decide(ctx, id, func(a project.Access) error {
		acc = a
		return task.CheckComment(a, e.Project, e.AssigneeID)
	})
	if err != nil {
		return Receipt{}, err
	}
	var rec Receipt
	_, err = x.comments.Also(func(ctx context.Context, tx pgx.Tx, c comment.Comment) error {
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		rec = Receipt{Status: http.StatusCreated, Body: append(b, '\n'), Location: "/comments/" + c.ID.String()}
		return record(ctx, tx, k, rec)
	}).Create(ctx, acc.ID.Subject, cur.Snapshot(), body, nil)
	if err != nil {
		return Receipt{}, err
	}
	return rec, nil
}

// taskReceipt is the answer of a task write: the task as the routes
// write it; a created one's Location.
func taskReceipt(status int, t task.Task) Receipt {
	r := Receipt{Status: status, Body: append(t.AppendJSON(make([]byte, 0, 512)), '\n')}
	if status == http.StatusCreated {
		r.Location = "/tasks/" + t.ID.String()
	}
	return r
}

// merge is the change a merge patch makes, its invalid fields named as
// members of prefix ("data.patch.title").
func merge(p task.Patch, prefix string) func(task.Task) (task.Task, []errs.FieldError) {
	return func(cur task.Task) (task.Task, []errs.FieldError) {
		next, bad := p.Apply(cur)
		for i := range bad {
			bad[i].Field = prefix + "." + bad[i].Field
		}
		return next, bad
	}
}

// Reject records p, the refusal of a command from Kafka (c as far as it
// was read), as the command's receipt together with its rejected event:
// one event however often the command is delivered. It returns the
// receipt in force (an earlier delivery's, if there was one).
func (x *Executor) Reject(ctx context.Context, producer string, c Command, p *httpx.Problem) (Receipt, error) {
	k := key{producer: producer, source: c.Source, id: c.ID}
	body, err := json.Marshal(p)
	if err != nil {
		return Receipt{}, err
	}
	d := events.CommandRejectedData{
		Command:  events.RejectedCommand{ID: c.ID, Source: c.Source, Type: c.Type, ExternalRef: c.Ref},
		Producer: producer, Status: p.Status, ProblemType: p.Type, Reason: p.Detail,
	}
	if d.Reason == "" {
		d.Reason = p.Title
	}
	for _, f := range p.Errors {
		d.Errors = append(d.Errors, events.FieldError{Field: f.Field, Detail: f.Detail})
	}
	// Keyed by the command: its rejections stay in order on one partition.
	entity := uuid.NewSHA1(uuid.NameSpaceURL, []byte(producer+"\x00"+c.Source+"\x00"+c.ID))
	ev, err := events.New(x.topic, events.SourceIngest, entity, d)
	if err != nil {
		return Receipt{}, err
	}
	r, err := reject(ctx, x.db, k, Receipt{Status: p.Status, Body: body}, ev)
	if err != nil {
		return Receipt{}, err
	}
	if !r.Replayed {
		outbox.PublishCommitted(ctx, x.db.Primary, x.pub, ev.Key)
	}
	return r, nil
}
