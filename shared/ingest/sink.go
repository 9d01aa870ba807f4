package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/task"
)

// Producer is the service identity a Kafka producer's commands act as:
// a subject, its global roles, and the projects it may write (as their
// member, like a Keycloak group /projects/<key>/member would make it).
// API-managed roles of the subject count too, as for any caller.
type Producer struct {
	Subject  string      `json:"subject"`
	Roles    []auth.Role `json:"roles"`
	Projects []string    `json:"projects"`
}

// Producers maps a CloudEvents source to its producer. It is read from
// INGEST_KAFKA_PRODUCERS as a JSON object:
//
//	{"/ci/deploys": {"subject": "svc-deploys", "roles": ["task-member"], "projects": ["ops"]}}
type Producers map[string]Producer

// Decode reads the JSON of INGEST_KAFKA_PRODUCERS (envconfig.Decoder) and
// checks it: a bad entry stops the function at start, not at the first
// command.
func (p *Producers) Decode(v string) error {
	m := Producers{}
	if v != "" {
		dec := json.NewDecoder(strings.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf("INGEST_KAFKA_PRODUCERS: %w", err)
		}
	}
	for src, pr := range m {
		if src == "" || len(src) > MaxSourceBytes {
			return fmt.Errorf("INGEST_KAFKA_PRODUCERS: a source must be 1 to %d bytes", MaxSourceBytes)
		}
		if !project.ValidSubject(pr.Subject) {
			return fmt.Errorf("INGEST_KAFKA_PRODUCERS: %q: bad subject %q", src, pr.Subject)
		}
		for _, r := range pr.Roles {
			if !slices.Contains(task.Anyone, r) {
				return fmt.Errorf("INGEST_KAFKA_PRODUCERS: %q: unknown role %q", src, r)
			}
		}
		for _, k := range pr.Projects {
			if !auth.ValidProjectKey(k) {
				return fmt.Errorf("INGEST_KAFKA_PRODUCERS: %q: bad project key %q", src, k)
			}
		}
	}
	*p = m
	return nil
}

// Identity is the caller p's commands act as.
func (p Producer) Identity(source string) auth.Identity {
	roles := map[string]auth.ProjectRole{}
	for _, k := range p.Projects {
		roles[k] = auth.ProjectMember
	}
	return auth.Identity{Subject: p.Subject, Username: source, Roles: slices.Clone(p.Roles), ProjectRoles: roles}
}

// SinkConfig is the Kafka path's configuration.
type SinkConfig struct {
	Producers Producers `envconfig:"INGEST_KAFKA_PRODUCERS"`
	// Topic is what the KafkaSource reads (kafka-sources/ingest-events.yaml)
	// and the dev runner's stand-in consumes; the function itself only
	// receives what is delivered.
	Topic string `envconfig:"KAFKA_COMMANDS_TOPIC" default:"taskfn.commands"`
}

// Sink takes commands from the taskfn.commands topic, delivered by a
// KafkaSource: 204 once a command took effect (or had before); a refused
// one is recorded with its dev.taskfn.command.rejected.v1 event and
// answered 400, so the source dead-letters it; 5xx when a retry may help.
type Sink struct {
	x         *Executor
	producers Producers
}

// NewSink returns the sink over x for producers.
func NewSink(x *Executor, cfg SinkConfig) (*Sink, error) {
	if x == nil {
		return nil, errors.New("ingest: NewSink needs an executor")
	}
	return &Sink{x: x, producers: cfg.Producers}, nil
}

// SinkPath is where the function serves its KafkaSource (never through
// the gateway).
const SinkPath = "/kafka"

// Route is the sink's route, to be guarded by the sender-identity check
// (function.GuardSink).
func (s *Sink) Route() httpx.Route {
	return httpx.Route{Name: Name + "-kafka", Method: http.MethodPost, Path: SinkPath, Handler: events.SinkHandler(httpx.MaxBody, s.Handle)}
}

var errUnknownSource = errs.New(errs.Forbidden, "ingest: unknown producer",
	"the event's source is not a producer named in INGEST_KAFKA_PRODUCERS")

// Handle runs one command from Kafka.
func (s *Sink) Handle(ctx context.Context, ev event.Event) error {
	p, known := s.producers[ev.Source()]
	c, err := Parse(ev)
	if err != nil || !known {
		if !known {
			err = errUnknownSource
		}
		ref, _ := ev.Context.GetExtension(events.ExtExternalRef)
		refStr, _ := ref.(string)
		return s.refuse(ctx, p.Subject, Command{ID: ev.ID(), Source: ev.Source(), Type: ev.Type(), Ref: refStr}, err)
	}
	rec, err := s.x.Run(ctx, p.Identity(ev.Source()), c)
	if err != nil {
		return s.refuse(ctx, p.Subject, c, err)
	}
	if rec.Status >= http.StatusBadRequest { // refused before, and recorded so
		return poison(rec)
	}
	return nil
}

// refuse records err's refusal of c and answers it as a poison event;
// a failure a retry may mend (5xx) is returned as it is.
func (s *Sink) refuse(ctx context.Context, producer string, c Command, err error) error {
	p := httpx.ProblemOf(ctx, err)
	if p.Status >= http.StatusInternalServerError {
		return err
	}
	rec, rerr := s.x.Reject(ctx, producer, c, p)
	if rerr != nil {
		return rerr
	}
	zerolog.Ctx(ctx).Warn().Str("event.id", c.ID).Str("event.source", c.Source).Int("status", rec.Status).Msg("command rejected")
	return poison(rec)
}

// poison is the sink's answer to a refused command: 400, with the reason.
func poison(rec Receipt) error {
	var p httpx.Problem
	_ = json.Unmarshal(rec.Body, &p)
	return fmt.Errorf("%w: command refused with %d %s: %s", errs.ErrPoison, rec.Status, p.Title, p.Detail)
}
