// Package webhook is taskfn's outgoing webhooks (issue #18): the
// subscription record and its validation, the PostgreSQL store (the one
// place with SQL for webhooks and webhook_deliveries), who may receive
// what (Allowed), and delivery: each matching event POSTed to each
// subscriber as a CloudEvent over HTTP, signed per Standard Webhooks
// (shared/whsign), through shared/egress, retried with backoff by a
// PingSource tick. See docs/webhooks.md.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/egress"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/mergepatch"
)

// Content modes of a delivery: the CloudEvents HTTP binding's two.
const (
	Structured = "structured" // the whole event as application/cloudevents+json
	Binary     = "binary"     // attributes as ce-* headers, the data as the body
)

// Limits a webhook's fields are held to; the table's CHECKs repeat them.
const (
	MaxURL   = 2000
	MaxTypes = 50
)

// Webhook is one subscription, as the API shows it. The signing secret is
// never part of it: the create answer alone carries it (Created).
type Webhook struct {
	ID                  uuid.UUID `json:"id"`
	Owner               string    `json:"owner"`
	Project             *string   `json:"project"` // nil: every project
	URL                 string    `json:"url"`
	Types               []string  `json:"types"`
	ContentMode         string    `json:"content_mode"`
	Enabled             bool      `json:"enabled"`
	DisabledReason      string    `json:"disabled_reason"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	CreatedAt           time.Time `json:"created_at"`
	UpdatedAt           time.Time `json:"updated_at"`
	Version             int64     `json:"version"`
}

// Created is the answer to a create: the webhook and its secret, shown
// this once.
type Created struct {
	Webhook
	Secret string `json:"secret"`
}

var (
	ErrNotFound         = errs.New(errs.NotFound, "webhook not found", "")
	ErrDeliveryNotFound = errs.New(errs.NotFound, "delivery not found", "")
	ErrVersionMismatch  = errs.New(errs.Precondition, "webhook version mismatch",
		"the webhook has changed since the version named in If-Match; fetch it again")
)

// Subscribable are the event types a webhook may name: those of the
// tasks topic (tasks, comments, relations), which the deliver-webhooks
// KafkaSource reads.
var Subscribable = func() []string {
	var out []string
	for _, t := range events.Types {
		for _, p := range []string{"dev.taskfn.task.", "dev.taskfn.comment.", "dev.taskfn.relation."} {
			if strings.HasPrefix(t, p) {
				out = append(out, t)
			}
		}
	}
	return out
}()

// Input is a create request or a patch: each field absent, null or set.
type Input struct {
	URL         mergepatch.Field[string]
	Types       mergepatch.Field[[]string]
	Project     mergepatch.Field[string]
	ContentMode mergepatch.Field[string]
	Enabled     mergepatch.Field[bool]
}

var readOnly = []string{"id", "owner", "disabled_reason", "consecutive_failures", "created_at", "updated_at", "version", "secret"}

// ParseInput decodes a JSON object into an Input; unknown fields are a
// 400, wrong types and read-only fields a 422 naming them. What the
// values must be is checked by Draft and Apply.
func ParseInput(body []byte) (Input, error) {
	var in Input
	members, err := mergepatch.Object(body)
	if err != nil {
		return in, err
	}
	var bad errs.Fields
	for _, m := range members {
		var err error
		switch m.Name {
		case "url":
			err = mergepatch.Decode(m.Raw, &in.URL)
		case "types":
			err = mergepatch.Decode(m.Raw, &in.Types)
		case "project":
			err = mergepatch.Decode(m.Raw, &in.Project)
		case "content_mode":
			err = mergepatch.Decode(m.Raw, &in.ContentMode)
		case "enabled":
			err = mergepatch.Decode(m.Raw, &in.Enabled)
		default:
			if slices.Contains(readOnly, m.Name) {
				bad.Add(m.Name, "is read-only")
				continue
			}
			return in, errs.Syntax(fmt.Sprintf("unknown field %q", m.Name))
		}
		if err != nil {
			bad.Add(m.Name, err.Error())
		}
	}
	return in, bad.Err()
}

// Draft builds a new webhook of owner from a create request; the URL is
// checked against policy (no SSRF: a refused URL is a 422 naming url).
func Draft(ctx context.Context, in Input, owner string, policy egress.Policy) (Webhook, error) {
	w := Webhook{Owner: owner, ContentMode: Structured, Enabled: true}
	if in.Project.Set && !in.Project.Null {
		p := in.Project.Value
		w.Project = &p
	}
	var bad errs.Fields
	if !in.URL.Set || in.URL.Null {
		bad.Add("url", "is required")
	}
	if !in.Types.Set || in.Types.Null {
		bad.Add("types", "is required")
	}
	if in.Project.Set && !in.Project.Null && !auth.ValidProjectKey(in.Project.Value) && !strings.HasPrefix(in.Project.Value, "~") {
		bad.Add("project", "is not a project key")
	}
	if in.Enabled.Set && in.Enabled.Null {
		bad.Add("enabled", "must be true or false")
	}
	if bad.Len() > 0 {
		return Webhook{}, bad.Err()
	}
	return w, apply(ctx, &w, in, policy)
}

// Apply changes cur by a patch; project and owner never change.
func Apply(ctx context.Context, cur Webhook, in Input, policy egress.Policy) (Webhook, error) {
	if in.Project.Set {
		return Webhook{}, errs.Validation(errs.FieldError{Field: "project", Detail: "cannot change: create a new webhook"})
	}
	if in.Enabled.Set && in.Enabled.Null {
		return Webhook{}, errs.Validation(errs.FieldError{Field: "enabled", Detail: "must be true or false"})
	}
	w := cur
	w.Types = slices.Clone(cur.Types)
	return w, apply(ctx, &w, in, policy)
}

// Over is locked, the row as it is under its lock, with the fields in
// sets taken from checked, what Apply made of them moments before: a
// concurrent change of the other fields is kept.
func (in Input) Over(locked, checked Webhook) Webhook {
	out := locked
	if in.URL.Set {
		out.URL = checked.URL
	}
	if in.Types.Set {
		out.Types = checked.Types
	}
	if in.ContentMode.Set {
		out.ContentMode = checked.ContentMode
	}
	if in.Enabled.Set {
		out.Enabled = checked.Enabled
	}
	return out
}

func apply(ctx context.Context, w *Webhook, in Input, policy egress.Policy) error {
	var bad errs.Fields
	if in.URL.Set {
		switch {
		case in.URL.Null:
			bad.Add("url", "is required")
		case len(in.URL.Value) > MaxURL:
			bad.Add("url", fmt.Sprintf("must be at most %d bytes", MaxURL))
		default:
			if _, err := policy.CheckURL(ctx, in.URL.Value); err != nil {
				bad.Add("url", err.Error())
			} else {
				w.URL = in.URL.Value
			}
		}
	}
	if in.Types.Set {
		if detail := checkTypes(in.Types.Value); in.Types.Null || detail != "" {
			bad.Add("types", cmpOr(detail, "is required"))
		} else {
			w.Types = dedupe(in.Types.Value)
		}
	}
	if in.ContentMode.Set {
		switch v := in.ContentMode.Value; {
		case in.ContentMode.Null:
			w.ContentMode = Structured
		case v == Structured || v == Binary:
			w.ContentMode = v
		default:
			bad.Add("content_mode", "must be structured or binary")
		}
	}
	if in.Enabled.Set && !in.Enabled.Null {
		w.Enabled = in.Enabled.Value
	}
	return bad.Err()
}

func checkTypes(types []string) string {
	switch {
	case len(types) == 0:
		return "must name at least one event type"
	case len(types) > MaxTypes:
		return fmt.Sprintf("must name at most %d event types", MaxTypes)
	}
	for _, t := range types {
		if !slices.Contains(Subscribable, t) {
			return fmt.Sprintf("%q is not an event type a webhook may subscribe to (%s)", clip(t, 100), strings.Join(Subscribable, ", "))
		}
	}
	return ""
}

func dedupe(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// ErrConfig is wrapped by every configuration refusal.
var ErrConfig = errors.New("webhook: configuration")
