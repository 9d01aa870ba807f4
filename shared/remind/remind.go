// Package remind is the PingSource-driven sender of due-date reminders
// and overdue notices: each tick (a CloudEvent POSTed to /) fires what
// is due in batches until none is left or the budget is spent. The SQL,
// and the exactly-once argument, are task.Store.FireReminders'; notify
// turns the events into inbox entries and emails.
package remind

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/task"
)

// Config is the tick's bounds.
type Config struct {
	// BatchSize: tasks per transaction; their events go into the outbox
	// in the same transaction.
	BatchSize int `envconfig:"REMIND_BATCH_SIZE" default:"500"`
	// Budget bounds a tick, below the PingSource's one-minute period, so
	// ticks rarely overlap (and are harmless when they do).
	Budget time.Duration `envconfig:"REMIND_BUDGET" default:"45s"`
}

func (c Config) validate() error {
	if c.BatchSize < 1 || c.BatchSize > 10_000 || c.Budget <= 0 {
		return fmt.Errorf("remind: REMIND_BATCH_SIZE %d must be 1 to 10000 and REMIND_BUDGET %s positive", c.BatchSize, c.Budget)
	}
	return nil
}

// Result is what one tick sent, the tick's 200 body.
type Result struct {
	Reminders int  `json:"reminders"`
	Overdue   int  `json:"overdue"`
	Complete  bool `json:"complete"` // false: the budget ran out with more due
}

// Handler runs a tick on every CloudEvent POSTed to it; 503 when the
// database cannot be reached, so the tick is retried.
type Handler struct {
	tasks *task.Store
	cfg   Config
	now   func() time.Time
}

// NewHandler returns the tick handler over tasks.
func NewHandler(tasks *task.Store, cfg Config) (*Handler, error) {
	if tasks == nil {
		return nil, errors.New("remind: NewHandler needs the task store")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Handler{tasks: tasks, cfg: cfg, now: time.Now}, nil
}

// Route is the handler's route: ticks are POSTed to /.
func (h *Handler) Route() httpx.Route {
	return httpx.Route{Name: "remind", Method: http.MethodPost, Path: "/", Handler: events.TickHandler("reminders", h.Run)}
}

// Run fires what is due now, batch after batch, within the budget.
func (h *Handler) Run(ctx context.Context) (Result, error) {
	var res Result
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Budget)
	defer cancel()
	for ctx.Err() == nil {
		f, err := h.tasks.FireReminders(ctx, h.now(), h.cfg.BatchSize)
		res.Reminders += f.Reminders
		res.Overdue += f.Overdue
		if err != nil {
			if ctx.Err() != nil && res.Reminders+res.Overdue > 0 {
				return res, nil // the budget ran out: the next tick goes on
			}
			return res, err
		}
		if f.Tasks < h.cfg.BatchSize {
			res.Complete = true
			return res, nil
		}
	}
	return res, nil
}
