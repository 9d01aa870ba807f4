package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/apispec"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/cache/cachetest"
	"github.com/taskfn/taskfn/shared/devkafka/kafkatest"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/ingest"
	"github.com/taskfn/taskfn/shared/logging"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/task"
	"github.com/taskfn/taskfn/shared/taskapi"
)

// One broker for the test binary, for the Kafka path (kafka_test.go).
func TestMain(m *testing.M) { kafkatest.Main(m, pgtest.Main) }

// The producers and people of the tests: subjects as tokens carry them.
const (
	alerts  = "svc-alerts"  // a service account, a task-member
	manager = "bob-manager" // may change every task
	nobody  = "eve-no-role"
)

// env is one test's world: the task routes and ingest-events wired as
// the dev runner wires them, on one database, one Redis prefix, one
// issuer, served over real HTTP; the Kafka sink behind a sender issuer.
type env struct {
	t       testing.TB
	db      *pg.DB
	iss     *authtest.Issuer
	senders *authtest.SenderIssuer
	topic   string // of the task events and the rejected events
	url     string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith serves ingest-events with producers as its Kafka producers.
func newEnvWith(t testing.TB, producers ingest.Producers) *env {
	t.Helper()
	iss := authtest.NewIssuer(t)
	senders := authtest.NewSenderIssuer(t)
	topic := kafkatest.Topic(t)
	base := function.Config{Log: logging.Config{Level: "error"}, DB: pgtest.NewConfig(t)}
	cfg := taskapi.Config{Config: base, Auth: iss.Config(), Cache: cachetest.Config(t, "")}
	cachetest.Cleanup(t, cfg.Cache)
	svc, err := taskapi.Open(t.Context(), "ingest-test", cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	kc := kafkatest.Config(kafkatest.Brokers())
	kc.TasksTopic = topic
	icfg := ingest.Config{Config: base, Auth: iss.Config(), Kafka: kc, Ingest: ingest.SinkConfig{Producers: producers}}
	ing, err := ingest.Wire(svc.Base, icfg, nil, svc.Store, svc.Cache, svc.Roles, kafkatest.Publisher(t, kc))
	if err != nil {
		t.Fatal(err)
	}
	sink, err := function.GuardSink(auth.SenderConfig{Issuer: senders.URL(), Senders: []string{"system:serviceaccount:*:*-oidc-sources.knative.dev-*"}, SigningAlgs: []string{"RS256"}},
		ingest.Name, ing.Sink.Route())
	if err != nil {
		t.Fatal(err)
	}
	routes := append(slices.Clone(svc.Routes), ing.Routes...)
	srv := httpxtest.Serve(t, svc.Handler(append(routes, sink)...))
	return &env{t: t, db: svc.DB, iss: iss, senders: senders, topic: topic, url: srv.URL}
}

// token is a token of who with roles.
func (e *env) token(who string, roles ...auth.Role) string { return e.iss.Token(e.t, who, roles...) }

// reply is a response with its body read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r reply) problem(t testing.TB) httpx.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json (%d %s)", ct, r.status, r.body)
	}
	var p httpx.Problem
	r.decode(t, &p)
	return p
}

// send does req with token and checks the answer against openapi.yaml.
func (e *env) send(req *http.Request, token string) reply {
	e.t.Helper()
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	apispec.Check(e.t, req.Method, req.URL.Path, resp, b)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// mode is a CloudEvents HTTP content mode.
type mode string

const (
	binary     mode = "binary"
	structured mode = "structured"
)

// post sends ev to POST /events in mode m as token.
func (e *env) post(m mode, ev event.Event, token string) reply {
	e.t.Helper()
	ctx := context.Background()
	if m == structured {
		ctx = binding.WithForceStructured(ctx)
	} else {
		ctx = binding.WithForceBinary(ctx)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/events", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&ev), req); err != nil {
		e.t.Fatal(err)
	}
	return e.send(req, token)
}

// postBatch sends evs as one batch.
func (e *env) postBatch(evs []event.Event, token string) reply {
	e.t.Helper()
	req, err := cehttp.NewHTTPRequestFromEvents(context.Background(), e.url+"/events", evs)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.send(req, token)
}

// postRaw sends body with contentType (and headers) to path.
func (e *env) postRaw(path, contentType, body string, header map[string]string, token string) reply {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return e.send(req, token)
}

// command builds a command event of typ with data; ref, if set, is its
// externalref.
func command(t testing.TB, typ, ref string, data any) event.Event {
	t.Helper()
	ev := event.New()
	ev.SetID(uuid.NewString())
	ev.SetSource("/test/producer")
	ev.SetType(typ)
	if ref != "" {
		ev.SetExtension(events.ExtExternalRef, ref)
	}
	if data != nil {
		if err := ev.SetData(event.ApplicationJSON, data); err != nil {
			t.Fatal(err)
		}
	}
	return ev
}

// count counts the rows of table.
func (e *env) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.db.Primary.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// task reads a task from the primary.
func (e *env) task(id uuid.UUID) task.Task {
	e.t.Helper()
	s, err := task.NewStore(e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	tk, err := s.GetPrimary(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return tk
}

func decodeTask(t testing.TB, b []byte) task.Task {
	t.Helper()
	var tk task.Task
	if err := json.Unmarshal(b, &tk); err != nil {
		t.Fatalf("decode task %s: %v", b, err)
	}
	return tk
}

// structuredBody is ev as a structured-mode body.
func structuredBody(t testing.TB, ev event.Event) string {
	t.Helper()
	b, err := format.JSON.Marshal(&ev)
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(b))
}
