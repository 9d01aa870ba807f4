package ingest

import (
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/comment"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/kafka"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/ratelimit"
	"github.com/taskfn/taskfn/shared/task"
)

// Config is what ingest-events reads: a route's settings (tokens, rate
// limits, the task cache it keeps current, project roles), Kafka (its
// writes' events and the rejected events go out right after commit), and
// its sink's: sender identity and the Kafka producers.
type Config struct {
	function.Config
	Auth      auth.Config
	RateLimit ratelimit.Config
	Cache     cache.Config
	Projects  project.ResolverConfig
	Kafka     kafka.Config
	Sender    auth.SenderConfig
	Ingest    SinkConfig
}

// Service is the function's routes and its sink, wired.
type Service struct {
	Executor *Executor
	Routes   []httpx.Route // POST /events, POST /events/alertmanager
	Sink     *Sink         // POST /kafka, to be guarded (function.GuardSink)
}

// Wire wires the routes and the sink on b, limited by lim, over the task
// store, cache and roles given (the dev runner passes the task routes'),
// publishing through pub (nil: relay-outbox).
func Wire(b *function.Base, cfg Config, lim *ratelimit.Limiter, tasks *task.Store, c *cache.Cache, roles *project.Resolver, pub outbox.Publisher) (*Service, error) {
	gate, err := b.Gate(cfg.Auth, lim.ByMethod(), task.Anyone...)
	if err != nil {
		return nil, err
	}
	comments, err := comment.NewStore(b.DB, cfg.Kafka.TasksTopic, pub)
	if err != nil {
		return nil, err
	}
	x, err := NewExecutor(Deps{DB: b.DB, Tasks: tasks, Comments: comments, Cache: c, Roles: roles, Topic: cfg.Kafka.TasksTopic, Pub: pub})
	if err != nil {
		return nil, err
	}
	events, err := EventsRoute(gate, x)
	if err != nil {
		return nil, err
	}
	am, err := AlertmanagerRoute(gate, x)
	if err != nil {
		return nil, err
	}
	sink, err := NewSink(x, cfg.Ingest)
	if err != nil {
		return nil, err
	}
	return &Service{Executor: x, Routes: []httpx.Route{events, am}, Sink: sink}, nil
}
