package events

import (
	"context"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/httpx"
)

// TickHandler serves a PingSource's ticks: each CloudEvent POSTed runs run
// once and answers 200 with its result. run's error maps as for any route
// (httpx.ProblemOf: a database that cannot be reached is a 503, so the
// tick is retried), and what it did before failing is logged either way.
// what names the work in the log lines and their field ("reminders").
func TickHandler[R any](what string, run func(context.Context) (R, error)) http.Handler {
	return httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		ev, err := Read(w, r, 64<<10)
		if err != nil {
			return err
		}
		res, err := run(r.Context())
		log := zerolog.Ctx(r.Context())
		if err != nil {
			log.Warn().Err(err).Interface(what, res).Msg(what + " stopped early")
			return err
		}
		log.Info().Str("event.id", ev.ID()).Interface(what, res).Msg(what + " done")
		httpx.WriteJSON(w, http.StatusOK, res)
		return nil
	})
}
