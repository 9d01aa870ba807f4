package commentapi

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/comment"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/kafka"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/ratelimit"
	"github.com/taskfn/taskfn/shared/task"
)

// Config is what the comment functions read: the task functions' own
// (the task cache decides access) and Kafka, through which a write's
// events go out right after commit.
type Config struct {
	function.Config
	Auth      auth.Config
	RateLimit ratelimit.Config
	Cache     cache.Config
	Projects  project.ResolverConfig
	Kafka     kafka.Config
	Mentions  MentionConfig
}

// Wire wires the four routes on b, limited by lim, on the task cache c
// and the roles of the process (the dev runner passes the task routes').
func Wire(b *function.Base, cfg Config, lim *ratelimit.Limiter, c *cache.Cache, roles *project.Resolver, pub outbox.Publisher) ([]httpx.Route, error) {
	gate, err := b.Gate(cfg.Auth, lim.ByMethod(), task.Anyone...)
	if err != nil {
		return nil, err
	}
	store, err := comment.NewStore(b.DB, cfg.Kafka.TasksTopic, pub)
	if err != nil {
		return nil, err
	}
	m, err := NewMentions(b.DB.Primary, roles, cfg.Mentions)
	if err != nil {
		return nil, err
	}
	return Routes(gate, Deps{Store: store, Cache: c, Roles: roles, Mentions: m})
}

// Serve is the whole of a comment function: its configuration from the
// environment, its route wired on a new Base, served until ctx ends. The
// four functions differ only in the route.
func Serve(ctx context.Context, name string, route Constructor) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	b, err := function.Open(ctx, name, cfg.Config, &cfg, os.Stdout)
	if err != nil {
		return err
	}
	defer b.Close()
	lim, err := ratelimit.Open(b, cfg.RateLimit)
	if err != nil {
		return err
	}
	gate, err := b.Gate(cfg.Auth, lim.ByMethod(), task.Anyone...)
	if err != nil {
		return err
	}
	pub, err := kafka.Open(b, cfg.Kafka, outbox.NewMetrics(b.Registry))
	if err != nil {
		return err
	}
	store, err := comment.NewStore(b.DB, cfg.Kafka.TasksTopic, pub)
	if err != nil {
		return err
	}
	tasks, err := task.NewStore(b.DB)
	if err != nil {
		return err
	}
	c, err := cache.Open(ctx, b, cfg.Cache, tasks)
	if err != nil {
		return err
	}
	roles, err := project.OpenResolver(b.DB, cfg.Projects)
	if err != nil {
		return err
	}
	m, err := NewMentions(b.DB.Primary, roles, cfg.Mentions)
	if err != nil {
		return err
	}
	r, err := route(gate, Deps{Store: store, Cache: c, Roles: roles, Mentions: m})
	if err != nil {
		return err
	}
	return b.Serve(ctx, r)
}
