package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
)

// MaxBatch bounds the commands of one batch (and of one Alertmanager
// notification): each is a transaction, and the request must end well
// within the gateway's 35 s.
const MaxBatch = 100

// Name is the function's name: its routes' metrics and logs, and the
// default audience of its Kafka sink's sender tokens.
const Name = "ingest-events"

// API serves the producers' HTTP routes.
type API struct {
	x *Executor
}

// EventsRoute is POST /events: commands over the CloudEvents HTTP binding
// as the token's subject.
func EventsRoute(g *auth.Gate, x *Executor) (httpx.Route, error) {
	if g == nil || x == nil {
		return httpx.Route{}, fmt.Errorf("ingest: %s: %w", Name, function.ErrMissing)
	}
	a := &API{x: x}
	return g.Route(Name, http.MethodPost, "/events", a.events), nil
}

// POST /events. One event (binary or structured mode) answers as the
// route it stands for would: 201 with the task or comment, 200 with the
// changed task; a repeat gets the first answer again. A batch is read
// and validated whole first (nothing runs unless every command is
// valid), then run in order, each command atomically: 200 with each
// one's answer. A transient failure stops it with a 503: the commands
// before it are done, and sending the whole batch again redoes nothing.
func (a *API) events(w http.ResponseWriter, r *http.Request) error {
	evs, batch, err := events.ReadBatch(w, r, httpx.MaxBody, MaxBatch)
	if err != nil {
		return err
	}
	cmds, err := ParseAll(evs, batch)
	if err != nil {
		return err
	}
	id := auth.Caller(r)
	if !batch {
		rec, err := a.x.Run(r.Context(), id, cmds[0])
		if err != nil {
			return err
		}
		writeReceipt(w, rec)
		return nil
	}
	results, err := a.x.RunAll(r.Context(), id, cmds)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, BatchReply{Results: results})
	return nil
}

// ParseAll parses every event, all or nothing: a batch with one invalid
// command is refused whole, naming each invalid one ("[2].data.title"),
// or the first that is not JSON data (415) or not JSON at all (400).
func ParseAll(evs []event.Event, batch bool) ([]Command, error) {
	if !batch {
		c, err := Parse(evs[0])
		return []Command{c}, err
	}
	out := make([]Command, 0, len(evs))
	var bad errs.Fields
	for i, ev := range evs {
		c, err := Parse(ev)
		if err == nil {
			out = append(out, c)
			continue
		}
		at := "[" + strconv.Itoa(i) + "]"
		var ve *errs.ValidationError
		if errors.As(err, &ve) {
			for _, f := range ve.Fields {
				bad.Add(at+"."+f.Field, f.Detail)
			}
			continue
		}
		p := httpx.ProblemOf(context.Background(), err)
		p.Detail = "event " + at + ": " + p.Detail
		return nil, p
	}
	return out, bad.Err()
}

// Result is one command's answer in a batch.
type Result struct {
	ID       string          `json:"id"`
	Source   string          `json:"source"`
	Status   int             `json:"status"`
	Location string          `json:"location,omitempty"`
	Replayed bool            `json:"replayed,omitempty"`
	Body     json.RawMessage `json:"body"` // the task, comment or problem
}

// BatchReply is the answer to a batch: each command's, in order.
type BatchReply struct {
	Results []Result `json:"results"`
}

// RunAll runs cmds in order as id. A refusal is that command's result;
// a failure that a retry may mend (5xx) ends the run with its error.
func (x *Executor) RunAll(ctx context.Context, id auth.Identity, cmds []Command) ([]Result, error) {
	out := make([]Result, 0, len(cmds))
	for _, c := range cmds {
		res := Result{ID: c.ID, Source: c.Source}
		rec, err := x.Run(ctx, id, c)
		if err != nil {
			p := httpx.ProblemOf(ctx, err)
			if p.Status >= http.StatusInternalServerError {
				return nil, err
			}
			if rec.Body, err = json.Marshal(p); err != nil {
				return nil, err
			}
			rec.Status = p.Status
		}
		res.Status, res.Location, res.Replayed, res.Body = rec.Status, rec.Location, rec.Replayed, rec.Body
		out = append(out, res)
	}
	return out, nil
}

// ReplayedHeader marks an answer given again to a repeated command.
const ReplayedHeader = "Idempotent-Replayed"

func writeReceipt(w http.ResponseWriter, rec Receipt) {
	if rec.Location != "" {
		w.Header().Set("Location", rec.Location)
	}
	if rec.Replayed {
		w.Header().Set(ReplayedHeader, "true")
	}
	w.Header().Set("Cache-Control", "no-store")
	ct := "application/json"
	if rec.Status >= http.StatusBadRequest {
		ct = "application/problem+json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(rec.Status)
	_, _ = w.Write(rec.Body)
}
