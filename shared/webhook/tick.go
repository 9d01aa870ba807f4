package webhook

import (
	"net/http"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/httpx"
)

// TickRoute is the retry-webhooks function's route: each PingSource tick
// (a CloudEvent POSTed to /) runs the due retries (Run) and answers 200
// with what it did; 503 when the database cannot be reached, so the tick
// is retried.
func (d *Deliverer) TickRoute() httpx.Route {
	return httpx.Route{Name: "retry-webhooks", Method: http.MethodPost, Path: "/", Handler: events.TickHandler("webhook retries", d.Run)}
}
