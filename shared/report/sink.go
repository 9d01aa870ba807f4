package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/httpx"
)

// maxEventBytes bounds an event's body; ours are a few hundred bytes.
const maxEventBytes = 64 << 10

// Sink is build-report's CloudEvent sink: report.requested from a
// KafkaSource on the reports topic. It answers 2xx once the report is
// finished and stored (succeeded, or failed for a reason no retry can
// change), 4xx for an event it can never process, 5xx when a retry may
// help: a transient failure, or another worker building the same report.
type Sink struct{ worker *Worker }

// NewSink returns the sink building with worker.
func NewSink(worker *Worker) (*Sink, error) {
	if worker == nil {
		return nil, errors.New("report: NewSink needs a worker")
	}
	return &Sink{worker: worker}, nil
}

// Route is the sink's route: CloudEvents are POSTed to /.
func (s *Sink) Route() httpx.Route {
	h := events.SinkHandler(maxEventBytes, s.Handle)
	// A build outlasts the server's write timeout, which would cut off
	// the answer; the build's own timeout bounds it instead.
	wait := s.worker.cfg.BuildTimeout + time.Minute
	return httpx.Route{Name: "build-report", Method: http.MethodPost, Path: "/", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait))
		h.ServeHTTP(w, r)
	})}
}

// Handle processes one event. Report events other than report.requested
// (report.completed shares the topic) are acknowledged and ignored.
func (s *Sink) Handle(ctx context.Context, ev event.Event) error {
	if ev.Type() != events.ReportRequested {
		return nil
	}
	id, err := requestedID(ev.DataContentType(), ev.Data())
	if err != nil {
		return err
	}
	ctx = zerolog.Ctx(ctx).With().Str("event.id", ev.ID()).Str("report.id", id.String()).Logger().WithContext(ctx)
	err = s.worker.Build(ctx, id)
	if errors.Is(err, ErrNotFound) {
		// It was requested in the transaction that created it, so it
		// existed; gone now means purged, and no retry brings it back.
		return fmt.Errorf("%w: report %s does not exist", errs.ErrPoison, id)
	}
	return err
}

// requestedID reads the report id out of report.requested data.
func requestedID(contentType string, data []byte) (uuid.UUID, error) {
	if contentType != "" {
		if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "application/json" {
			return uuid.Nil, fmt.Errorf("%w: data content type %q is not JSON", errs.ErrPoison, contentType)
		}
	}
	var d events.ReportRequestedData
	if err := json.Unmarshal(data, &d); err != nil {
		return uuid.Nil, fmt.Errorf("%w: data is not report.requested JSON: %v", errs.ErrPoison, err)
	}
	if d.ReportID == uuid.Nil {
		return uuid.Nil, fmt.Errorf("%w: report.requested without report_id", errs.ErrPoison)
	}
	return d.ReportID, nil
}
