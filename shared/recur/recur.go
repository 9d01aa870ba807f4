// Package recur is the sink that files a recurring task's next
// occurrence: a KafkaSource on the tasks topic POSTs every task event,
// and each dev.taskfn.task.status_changed.v1 to done of a task with a
// recurrence becomes task.Store.CreateNext. The rule itself lives in
// shared/recurrence, the SQL in shared/task.
package recur

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/task"
)

// maxEventBytes bounds an event's body; ours are a few KiB.
const maxEventBytes = 1 << 20

// Sink files next occurrences. It answers 2xx once the occurrence is
// committed (or none is due), 4xx for an event it can never process and
// 5xx when a retry may help; redelivering any event is harmless.
type Sink struct {
	tasks *task.Store
}

// NewSink returns the sink over tasks.
func NewSink(tasks *task.Store) (*Sink, error) {
	if tasks == nil {
		return nil, errors.New("recur: NewSink needs the task store")
	}
	return &Sink{tasks: tasks}, nil
}

// Route is the sink's route: CloudEvents are POSTed to /.
func (s *Sink) Route() httpx.Route {
	return httpx.Route{Name: "recur", Method: http.MethodPost, Path: "/", Handler: events.SinkHandler(maxEventBytes, s.Handle)}
}

// Handle processes one event. Only a change to done of a task whose
// snapshot recurs reaches the database; the event's snapshot decides
// nothing else, since CreateNext reads the task as it is now.
func (s *Sink) Handle(ctx context.Context, ev event.Event) error {
	id, ok, err := due(ev)
	if err != nil || !ok {
		return err
	}
	next, why, err := s.tasks.CreateNext(ctx, id)
	if err != nil {
		return err
	}
	log := zerolog.Ctx(ctx).With().Str("event.id", ev.ID()).Stringer("task.id", id).Str("outcome", why).Logger()
	if why == task.NextFiled {
		log.Info().Stringer("next.id", next.ID).Time("next.due_at", *next.DueAt).Msg("next occurrence filed")
		return nil
	}
	log.Debug().Msg("no occurrence filed")
	return nil
}

// due says whether ev asks for a next occurrence, and of which task.
func due(ev event.Event) (uuid.UUID, bool, error) {
	if ev.Type() != events.TaskStatusChanged {
		return uuid.Nil, false, nil
	}
	var d events.TaskStatusChangedData
	if err := json.Unmarshal(ev.Data(), &d); err != nil {
		return uuid.Nil, false, fmt.Errorf("%w: data is not the expected JSON: %v", errs.ErrPoison, err)
	}
	if d.Task.ID == uuid.Nil {
		return uuid.Nil, false, fmt.Errorf("%w: the task snapshot needs an id", errs.ErrPoison)
	}
	return d.Task.ID, d.NewStatus == string(task.StatusDone) && d.Task.Recurrence != nil, nil
}
