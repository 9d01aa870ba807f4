package webhookapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/taskfn/taskfn/shared/apispec"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/logging"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/projectapi"
	"github.com/taskfn/taskfn/shared/webhook"
	"github.com/taskfn/taskfn/shared/webhookapi"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testKey seals the secrets in tests; 32 bytes of base64.
const testKey = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktMzJieXQ="

// env serves the project and webhook routes, the deliver-webhooks sink
// (/_sink) and the retry tick (/_tick) on one base, as the dev runner
// wires them.
type env struct {
	t     testing.TB
	db    *pg.DB
	url   string
	iss   *authtest.Issuer
	d     *webhook.Deliverer
	store *webhook.Store
	roles *project.Resolver
}

// strictRun runs a tick under the cluster's policy (no loopback, https
// only) over the same deliveries.
func (e *env) strictRun(t testing.TB) (webhook.Result, error) {
	t.Helper()
	d, err := webhook.NewDeliverer(e.store, e.roles, testConfig(false), nil)
	if err != nil {
		t.Fatal(err)
	}
	return d.Run(context.Background())
}

func testConfig(loopback bool) webhook.Config {
	return webhook.Config{SecretKey: testKey, InsecureLoopback: loopback, Timeout: 2 * time.Second,
		RetryBase: 50 * time.Millisecond, RetryMax: 5 * time.Second, MaxAttempts: 15, DisableAfter: 50,
		Concurrency: 16, BatchSize: 200, Budget: 20 * time.Second, SinkWait: 2 * time.Second, DeliveryRetention: time.Hour}
}

func newEnv(t testing.TB, wc webhook.Config) *env {
	t.Helper()
	iss := authtest.NewIssuer(t)
	fc := function.Config{Log: logging.Config{Level: "error"}, DB: pgtest.NewConfig(t)}
	pc := projectapi.Config{Config: fc, Auth: iss.Config(), Projects: project.ResolverConfig{RolesTTL: 300 * time.Millisecond, RolesCacheSize: 100}}
	svc, err := projectapi.Open(t.Context(), "webhookapi-test", pc, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	routes, err := webhookapi.Wire(svc.Base, webhookapi.Config{Config: fc, Auth: pc.Auth, Webhook: wc}, nil, svc.Roles)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := webhook.NewSealer(wc.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	store, err := webhook.NewStore(svc.DB, sealer, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := webhook.NewDeliverer(store, svc.Roles, wc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Wait() })
	sink, err := webhook.NewSink(store, d)
	if err != nil {
		t.Fatal(err)
	}
	sr, tr := sink.Route(), d.TickRoute()
	sr.Path, tr.Path = "/_sink", "/_tick"
	routes = append(append(routes, svc.Routes...), sr, tr)
	srv := httpxtest.Serve(t, svc.Handler(routes...))
	return &env{t: t, db: svc.DB, url: srv.URL, iss: iss, d: d, store: store, roles: svc.Roles}
}

type who struct {
	sub    string
	roles  []auth.Role
	groups []string
}

var (
	admin  = who{sub: "adm", roles: []auth.Role{auth.RoleAdmin}}
	maint  = who{sub: "maint", roles: []auth.Role{auth.RoleMember}}
	member = who{sub: "mem", roles: []auth.Role{auth.RoleMember}}
	other  = who{sub: "other", roles: []auth.Role{auth.RoleMember}}
)

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(c who, method, path string, body any) reply {
	e.t.Helper()
	return e.doWith(c, method, path, body)
}

// doWith is do with extra headers, name then value.
func (e *env) doWith(c who, method, path string, body any, header ...string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, e.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	claims := e.iss.Claims(c.sub, c.roles...)
	if c.groups != nil {
		claims["groups"] = c.groups
	}
	req.Header.Set("Authorization", "Bearer "+e.iss.Sign(e.t, claims))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	apispec.Check(e.t, method, path, resp, b)
	return reply{resp.StatusCode, resp.Header, b}
}

func (e *env) must(want int, c who, method, path string, body any) reply {
	e.t.Helper()
	r := e.do(c, method, path, body)
	if r.status != want {
		e.t.Fatalf("%s %s as %s: %d %s, want %d", method, path, c.sub, r.status, r.body, want)
	}
	return r
}

func decode[T any](t testing.TB, r reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("%s: %v", r.body, err)
	}
	return v
}

// project makes project key with maint its maintainer and mem a member.
func (e *env) project(key string) {
	e.t.Helper()
	e.must(http.StatusCreated, maint, http.MethodPost, "/projects", map[string]any{"key": key, "name": key})
	e.must(http.StatusCreated, maint, http.MethodPut, "/projects/"+key+"/members/"+member.sub, map[string]any{"role": "member"})
}

// send POSTs ev to the sink in binary mode, as a KafkaSource does.
func (e *env) send(ev event.Event) int {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, e.url+"/_sink", nil)
	if err := cehttp.WriteRequest(binding.WithForceBinary(context.Background()), binding.ToMessage(&ev), req); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// tick runs the retry tick once.
func (e *env) tick() webhook.Result {
	e.t.Helper()
	ping := event.New()
	ping.SetID(uuid.NewString())
	ping.SetSource("/test")
	ping.SetType(events.PingSourceType)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, e.url+"/_tick", nil)
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&ping), req); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var res webhook.Result
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&res) != nil {
		e.t.Fatalf("tick: %d", resp.StatusCode)
	}
	return res
}

// taskEvent is a task.created event of a task in project.
func taskEvent(t testing.TB, project string) event.Event {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	now := time.Now().UTC()
	ev, err := events.NewTaskEvent(events.DefaultTasksTopic, id, events.TaskCreatedData{Actor: "maint", Task: events.TaskSnapshot{
		ID: id, Project: project, Title: "t", Status: "todo", Priority: "medium", OwnerID: "maint", Labels: []string{},
		CreatedAt: now, UpdatedAt: now, Version: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ce := event.New()
	ce.SetID(ev.ID.String())
	ce.SetSource(ev.Source)
	ce.SetType(ev.Type)
	ce.SetSubject(ev.Subject)
	ce.SetTime(ev.Time)
	_ = ce.SetData(event.ApplicationJSON, []byte(ev.Data))
	return ce
}

// receiver is a loopback webhook receiver that verifies every request
// with the official Standard Webhooks library, not ours.
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	got    []received
	answer func(n int, w http.ResponseWriter) // nil: 204
}

type received struct {
	at       time.Time
	ev       *event.Event
	header   http.Header
	verified error
}

func newReceiver(t testing.TB, answer func(n int, w http.ResponseWriter)) *receiver {
	rc := &receiver{t: t, answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		var verr error
		if wh, err := standardwebhooks.NewWebhook(rc.secret); err != nil {
			verr = err
		} else {
			verr = wh.Verify(body, r.Header)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		ev, _ := cehttp.NewEventFromHTTPRequest(r)
		rc.got = append(rc.got, received{at: time.Now(), ev: ev, header: r.Header.Clone(), verified: verr})
		n := len(rc.got)
		rc.mu.Unlock()
		if rc.answer != nil {
			rc.answer(n, w)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setSecret(s string) {
	rc.mu.Lock()
	rc.secret = s
	rc.mu.Unlock()
}

func (rc *receiver) received() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// hook registers a webhook of project (nil: all) to rc as c and gives
// rc its secret.
func (e *env) hook(c who, project *string, rc *receiver, extra map[string]any) webhook.Created {
	e.t.Helper()
	body := map[string]any{"url": rc.srv.URL + "/hook", "types": []string{events.TaskCreated}, "project": project}
	for k, v := range extra {
		body[k] = v
	}
	created := decode[webhook.Created](e.t, e.must(http.StatusCreated, c, http.MethodPost, "/webhooks", body))
	rc.setSecret(created.Secret)
	return created
}

// eventually polls cond for up to 10 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
