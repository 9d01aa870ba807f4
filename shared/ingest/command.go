// Package ingest takes commands from producers: CloudEvents of the
// dev.taskfn.command.* types, POSTed to /events over the CloudEvents HTTP
// binding (binary, structured or batched) with a Keycloak token, or
// consumed from the taskfn.commands topic by a KafkaSource whose producers
// are named by their source in configuration. Each command is decided as
// the HTTP routes decide (task.CheckCreate, CheckChange, CheckComment
// through project.Resolver.Decide) and takes effect once however often it
// is delivered: its receipt is written in the effect's own transaction
// (command_receipts; the SQL is in store.go). docs/producers.md is the
// contract.
package ingest

import (
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/comment"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/mergepatch"
	"github.com/taskfn/taskfn/shared/task"
)

// Bounds of the attributes a receipt or a ref is keyed by: a btree entry
// holds at most 2704 bytes, beyond which an insert would fail as a 500.
const (
	MaxSourceBytes = 1024
	MaxRefBytes    = 256
)

// Command is one parsed, valid command. Its target is TaskID when the
// data names one, else the task its producer's Ref names.
type Command struct {
	ID, Source, Type string
	Ref              string    // the externalref extension; "" none
	TaskID           uuid.UUID // uuid.Nil: by Ref (or a new task)
	// Patch is the new task's fields (create) or the change (update); a
	// create whose Ref names a task already applies it as a merge patch.
	Patch           task.Patch
	ExpectedVersion *int64      // update and close: refused with 412 unless current
	Body            string      // comment
	Status          task.Status // close: done (default) or cancelled
}

// Parse reads a command from ev, validating everything that does not
// depend on the database: 415 for data that is not JSON, 400 for data that
// is not the type's JSON object, 422 naming each invalid field ("type",
// "externalref", "data.title", "data.patch.priority").
func Parse(ev event.Event) (Command, error) {
	c := Command{ID: ev.ID(), Source: ev.Source(), Type: ev.Type()}
	var bad errs.Fields
	if len(c.Source) > MaxSourceBytes {
		bad.Add("source", fmt.Sprintf("must be at most %d bytes", MaxSourceBytes))
	}
	switch ref, err := ev.Context.GetExtension(events.ExtExternalRef); {
	case err != nil: // absent
	default:
		s, ok := ref.(string)
		if !ok || s == "" || len(s) > MaxRefBytes || !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
			bad.Add("externalref", fmt.Sprintf("must be a string of 1 to %d bytes without control characters", MaxRefBytes))
		}
		c.Ref = s
	}
	if err := bad.Err(); err != nil {
		return Command{}, err
	}
	if ct := ev.DataContentType(); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != event.ApplicationJSON {
			return Command{}, httpx.UnsupportedMediaType(event.ApplicationJSON)
		}
	}
	data := ev.Data()
	if len(data) == 0 {
		return Command{}, errs.Validation(errs.FieldError{Field: "data", Detail: "is required"})
	}
	var err error
	switch c.Type {
	case events.CommandTaskCreate:
		err = c.parseCreate(data)
	case events.CommandTaskUpdate:
		err = c.parseUpdate(data)
	case events.CommandTaskComment:
		err = c.parseComment(data)
	case events.CommandTaskClose:
		err = c.parseClose(data)
	default:
		return Command{}, errs.Validation(errs.FieldError{Field: "type", Detail: "must be one of " + strings.Join(events.CommandTypes, ", ")})
	}
	if err != nil {
		return Command{}, err
	}
	if c.Type != events.CommandTaskCreate {
		switch {
		case c.TaskID == uuid.Nil && c.Ref == "":
			return Command{}, errs.Validation(errs.FieldError{Field: "data.task_id", Detail: "is required without an externalref"})
		case c.TaskID != uuid.Nil && c.Ref != "":
			return Command{}, errs.Validation(errs.FieldError{Field: "data.task_id", Detail: "must not be given with an externalref"})
		}
	}
	return c, nil
}

// parseCreate: the body of POST /tasks, checked as Draft checks it.
func (c *Command) parseCreate(data []byte) error {
	p, err := task.ParsePatch(data)
	if err != nil {
		return under("data", err)
	}
	if _, err := task.Draft(p, "producer"); err != nil {
		return under("data", err)
	}
	c.Patch = p
	return nil
}

// parseUpdate: {"task_id", "expected_version", "patch": merge patch}.
func (c *Command) parseUpdate(data []byte) error {
	patch, err := c.with(data, "patch")
	if err != nil {
		return err
	}
	if c.Patch, err = task.ParsePatch(patch); err != nil {
		return under("data.patch", err)
	}
	// A patch whose values are invalid on any task (a blank title, an
	// unknown status) is refused now, with the rest of a batch.
	if _, bad := c.Patch.Apply(validTask); len(bad) > 0 {
		return under("data.patch", errs.Validation(bad...))
	}
	return nil
}

// validTask is a valid task, to find a patch's values that no task takes.
// It has a due date, which a recurrence and reminders need: a patch
// setting those alone is valid on a task that has one, and is decided
// on the task itself.
var validTask = task.Task{Title: "t", Status: task.StatusTodo, Priority: task.PriorityMedium, RecurrenceTZ: task.DefaultRecurrenceTZ,
	DueAt: new(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))}

// parseComment: {"task_id", "body"}, the body as POST /tasks/{id}/comments reads it.
func (c *Command) parseComment(data []byte) error {
	body, err := c.with(data, "body")
	if err != nil {
		return err
	}
	c.Body, err = comment.ParseBody([]byte(`{"body":` + string(body) + `}`))
	return under("data", err)
}

// parseClose: {"task_id", "expected_version", "status": "done" or "cancelled"}.
func (c *Command) parseClose(data []byte) error {
	c.Status = task.StatusDone
	return c.members(data, func(name string, m mergepatch.Member) (bool, error) {
		if name != "status" {
			return false, nil
		}
		var s mergepatch.Field[string]
		if err := mergepatch.Decode(m.Raw, &s); err != nil || s.Null ||
			(task.Status(s.Value) != task.StatusDone && task.Status(s.Value) != task.StatusCancelled) {
			return true, errs.Validation(errs.FieldError{Field: "data.status", Detail: `must be "done" or "cancelled"`})
		}
		c.Status = task.Status(s.Value)
		return true, nil
	})
}

// with reads data (see members) whose one own member is name, required,
// and returns name's JSON.
func (c *Command) with(data []byte, name string) ([]byte, error) {
	var raw []byte
	err := c.members(data, func(n string, m mergepatch.Member) (bool, error) {
		if n != name {
			return false, nil
		}
		raw = m.Raw
		return true, nil
	})
	if err == nil && raw == nil {
		err = errs.Validation(errs.FieldError{Field: "data." + name, Detail: "is required"})
	}
	return raw, err
}

// members reads data as one JSON object: task_id and expected_version,
// which every command on an existing task may carry, here; the type's own
// members through own (which reports whether it knew the name); anything
// else is an unknown field (400).
func (c *Command) members(data []byte, own func(string, mergepatch.Member) (bool, error)) error {
	ms, err := mergepatch.Object(data)
	if err != nil {
		return under("data", err)
	}
	var bad errs.Fields
	for _, m := range ms {
		switch m.Name {
		case "task_id":
			var s mergepatch.Field[string]
			id := uuid.Nil
			if err := mergepatch.Decode(m.Raw, &s); err == nil && !s.Null {
				id, _ = uuid.Parse(s.Value) // uuid.Nil when it is none
			}
			if id == uuid.Nil {
				bad.Add("data.task_id", "must be a task id (a UUID)")
				continue
			}
			c.TaskID = id
		case "expected_version":
			var v mergepatch.Field[int64]
			if err := mergepatch.Decode(m.Raw, &v); err != nil || v.Null || v.Value < 1 {
				bad.Add("data.expected_version", "must be a version, an integer of at least 1")
				continue
			}
			if c.Type == events.CommandTaskComment {
				bad.Add("data.expected_version", "is not a member of a comment command")
				continue
			}
			c.ExpectedVersion = &v.Value
		default:
			known, err := own(m.Name, m)
			if err != nil {
				var ve *errs.ValidationError
				if !errors.As(err, &ve) {
					return err
				}
				for _, f := range ve.Fields {
					bad.Add(f.Field, f.Detail)
				}
				continue
			}
			if !known {
				return errs.Syntax(fmt.Sprintf("data: unknown field %q", m.Name))
			}
		}
	}
	return bad.Err()
}

// under names err's fields as members of prefix ("title" → "data.title"),
// and says where a syntax error is.
func under(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var ve *errs.ValidationError
	if errors.As(err, &ve) {
		out := &errs.ValidationError{Omitted: ve.Omitted}
		for _, f := range ve.Fields {
			if !strings.HasPrefix(f.Field, "data") {
				f.Field = prefix + "." + f.Field
			}
			out.Fields = append(out.Fields, f)
		}
		return out
	}
	if errs.KindOf(err) == errs.Invalid {
		var e *errs.Error
		if errors.As(err, &e) {
			return errs.Syntax(prefix + ": " + e.Detail)
		}
	}
	return err
}
