package webhook

import (
	"net/http"

	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/httpx"
)

// TickRoute is the retry-webhooks function's route: each PingSource tick
// (a CloudEvent POSTed to /) runs the due retries (Run) and answers 200
// with what it did; 503 when the database cannot be reached, so the tick
// is retried.
func (d *Deliverer) TickRoute() httpx.Route {
	return httpx.Route{Name: "retry-webhooks", Method: http.MethodPost, Path: "/", Handler: httpx.Handle(d.tick)}
}

func (d *Deliverer) tick(w http.ResponseWriter, r *http.Request) error {
	ev, err := events.Read(w, r, 64<<10)
	if err != nil {
		return err
	}
	res, err := d.Run(r.Context())
	log := zerolog.Ctx(r.Context())
	if err != nil {
		log.Warn().Err(err).Interface("attempts", res).Msg("webhook retries stopped early")
		return err
	}
	log.Info().Str("event.id", ev.ID()).Interface("attempts", res).Msg("webhook retries run")
	httpx.WriteJSON(w, http.StatusOK, res)
	return nil
}
