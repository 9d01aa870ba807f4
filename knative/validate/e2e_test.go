package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	corev1 "k8s.io/api/core/v1"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/pgtest"
)

// e2eVersion is stamped into the test binaries through ko.yaml's ldflags.
const e2eVersion = "e2e-build"

// koLdflags renders ko.yaml's defaultLdflags the way ko does (text/template,
// missing keys fail), with e2eVersion for the git fields.
func koLdflags(t testing.TB) string {
	t.Helper()
	data := map[string]any{
		"Env":   map[string]string{},
		"GoEnv": map[string]string{},
		"Git": map[string]any{
			"Branch": e2eVersion, "Tag": e2eVersion, "ShortCommit": e2eVersion, "FullCommit": e2eVersion,
			"CommitDate": "1970-01-01T00:00:00Z", "CommitTimestamp": 0, "IsDirty": false, "IsClean": true, "TreeState": "clean",
		},
		"Date":      "1970-01-01T00:00:00Z",
		"Timestamp": 0,
	}
	var out []string
	for _, f := range loadKoConfig(t).DefaultLdflags {
		tmpl, err := template.New("ldflags").Option("missingkey=error").Parse(f)
		if err != nil {
			t.Fatalf("ko.yaml ldflags %q: %v", f, err)
		}
		var b strings.Builder
		if err := tmpl.Execute(&b, data); err != nil {
			t.Fatalf("ko.yaml ldflags %q: %v", f, err)
		}
		out = append(out, b.String())
	}
	return strings.Join(out, " ")
}

// buildFunctions compiles the named functions as ko would (CGO off,
// -trimpath, ko.yaml's ldflags) in one go build, and returns their paths.
func buildFunctions(t testing.TB, names []string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"build", "-trimpath", "-ldflags", koLdflags(t), "-o", dir + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, "./functions/"+n)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("built %v in %s", names, time.Since(start).Round(time.Millisecond))
	bins := map[string]string{}
	for _, n := range names {
		bins[n] = filepath.Join(dir, n)
	}
	return bins
}

// clusterEnv is the environment a pod gets from knative/: the ConfigMap's
// data and the Secret's keys, then overrides for this machine. Starting the
// binaries on it proves every value in the ConfigMap parses.
func clusterEnv(t testing.TB, overrides map[string]string) []string {
	t.Helper()
	env := maps.Clone(configMapData(t, "knative", "taskfn-config"))
	for _, d := range loadManifests(t, "knative") {
		if s, ok := d.obj.(*corev1.Secret); ok && s.Name == "taskfn-secret" {
			for k := range s.StringData {
				if _, ok := overrides[k]; !ok {
					t.Fatalf("the Secret's %s has no local value in the test", k)
				}
			}
		}
	}
	maps.Copy(env, overrides)
	out := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// process is a running function binary.
type process struct {
	name string
	cmd  *exec.Cmd
	logs *syncBuffer
	addr string
	done chan error
}

// migrateOnce runs the migrate binary against env's database.
func migrateOnce(t testing.TB, bin string, env []string) {
	t.Helper()
	migrate := exec.Command(bin)
	migrate.Env = env
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
}

// startBehindGateway starts the functions fns and a gateway routing to them.
func startBehindGateway(t *testing.T, fns []string, bins map[string]string, env []string) (map[string]*process, *gateway) {
	t.Helper()
	procs := map[string]*process{}
	upstreams := map[string]string{}
	for _, fn := range fns {
		p, _ := startFunction(t, fn, bins[fn], env)
		procs[fn], upstreams[fn] = p, p.addr
	}
	return procs, startGateway(t, upstreams)
}

// startFunction runs bin on a free port, waits for /readyz and returns how
// long that took: the cold start, process start to ready. When t ends it
// sends SIGTERM, as Knative does, and expects a clean exit.
func startFunction(t testing.TB, name, bin string, env []string) (*process, time.Duration) {
	t.Helper()
	p := &process{name: name, addr: freeAddr(t), logs: &syncBuffer{}, done: make(chan error, 1)}
	_, port, _ := strings.Cut(p.addr, ":")
	p.cmd = exec.Command(bin)
	p.cmd.Env = append(slices.Clone(env), "PORT="+port)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	start := time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("%s: after SIGTERM: %v\n%s", name, err, p.logs)
		}
	})
	ready := make(chan time.Duration, 1)
	go func() { ready <- waitReady("http://" + p.addr + "/readyz") }()
	select {
	case d := <-ready:
		if d < 0 {
			t.Fatalf("%s: not ready in 20s\n%s", name, p.logs)
		}
		return p, time.Since(start)
	case err := <-p.done:
		p.done <- err
		t.Fatalf("%s exited before ready: %v\n%s", name, err, p.logs)
	}
	return nil, 0
}

// waitReady polls url every few milliseconds, as Knative's queue-proxy does
// at start; -1 if it never answers 200.
func waitReady(url string) time.Duration {
	start := time.Now()
	c := &http.Client{Timeout: time.Second}
	for time.Since(start) < 20*time.Second {
		if resp, err := c.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return -1
}

// stop sends SIGTERM and waits; a function must drain and exit 0.
func (p *process) stop() error {
	select {
	case err := <-p.done: // already gone
		p.done <- err
		if err == nil {
			return nil
		}
		return fmt.Errorf("exited early: %w", err)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(25 * time.Second):
		_ = p.cmd.Process.Kill()
		return errors.New("still running 25s after SIGTERM")
	}
}

// logLines parses a process's output as JSON lines.
func logLines(t *testing.T, what, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("%s: a log line is not JSON: %v: %s", what, err, l)
			continue
		}
		lines = append(lines, m)
	}
	return lines
}

// e2eWebhookKey seals the webhooks' secrets in the end-to-end runs.
const e2eWebhookKey = "ZTJlLXRlc3Qtd2ViaG9vay1rZXktMzItYnl0ZXMtISE="

// e2eEnv is the cluster's configuration with local values for what
// differs here: the issuers, the database, no Kafka, Redis down.
func e2eEnv(t testing.TB, dbURL string, iss *authtest.Issuer, cluster *authtest.SenderIssuer) []string {
	t.Helper()
	return clusterEnv(t, map[string]string{
		"SINK_OIDC_ISSUER": cluster.URL(),
		// The ConfigMap's files are projected in a pod; this issuer is
		// plain HTTP and open (shared/auth tests the CA and token files).
		"SINK_OIDC_CA_FILE":    "",
		"SINK_OIDC_TOKEN_FILE": "",
		"DATABASE_URL":         dbURL,
		"DATABASE_READ_URL":    "",
		"OIDC_ISSUER":          iss.URL(),
		"OIDC_AUDIENCE":        authtest.Audience,
		// No Kafka here: the writers then keep their events in the outbox
		// (kafka.Open opens no publisher), which is what they do while Kafka is
		// down. Redis on a closed port: every cache lookup is an error and
		// the database answers, as in a Redis outage.
		"KAFKA_BROKERS": "",
		"REDIS_URL":     "redis://127.0.0.1:1/0",
		"SMTP_ADDR":     "",
		"SMTP_USERNAME": "",
		"SMTP_PASSWORD": "",
		// Webhooks: a key of the test's, and receivers on loopback over
		// plain http, which only this setting allows.
		"WEBHOOK_SECRET_KEY":        e2eWebhookKey,
		"WEBHOOK_INSECURE_LOOPBACK": "true",
	})
}

// decodeReply checks resp's status and decodes its JSON body into v.
func decodeReply(t *testing.T, resp *http.Response, status int, v any) {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, status, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s %s: %v: %s", resp.Request.Method, resp.Request.URL, err, body)
		}
	}
}

// TestMain prepares shared/pgtest, whose empty databases the end-to-end
// test migrates.
func TestMain(m *testing.M) { pgtest.Main(m) }

// TestEndToEnd builds the real binaries, migrates a fresh database with the
// migrate binary, runs each routed function on its own port against it and
// a real OIDC issuer, puts the real nginx with the shipped gateway config in
// front, and drives every route through it.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs every function")
	}
	lookTool(t, "nginx")

	var fns []string
	for _, r := range routes {
		if !slices.Contains(fns, r.fn) {
			fns = append(fns, r.fn)
		}
	}
	// The lifecycle's sinks are not routed: the test POSTs their events
	// itself, as their KafkaSource and PingSource would.
	sinks := []string{"recur", "remind"}
	bins := buildFunctions(t, append(slices.Concat(fns, sinks), "migrate"))
	dbURL := pgtest.NewEmpty(t)
	iss := authtest.NewIssuer(t)
	cluster := authtest.NewSenderIssuer(t)
	env := e2eEnv(t, dbURL, iss, cluster)

	// The Job's binary, twice: the second run is what every later release
	// does and must change nothing.
	for i := range 2 {
		cmd := exec.Command(bins["migrate"])
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("migrate run %d: %v\n%s", i+1, err, out)
		}
		lines := logLines(t, "migrate", string(out))
		if len(lines) == 0 || lines[0]["service.version"] != e2eVersion {
			t.Errorf("migrate: want service.version %q from ko.yaml's -X in its first log line, got %s", e2eVersion, out)
		}
	}

	procs := map[string]*process{}
	upstreams := map[string]string{}
	for _, fn := range fns {
		p, cold := startFunction(t, fn, bins[fn], env)
		procs[fn], upstreams[fn] = p, p.addr
		t.Logf("cold start %-12s %6.1f ms (process start to /readyz 200)", fn, float64(cold.Microseconds())/1000)
	}
	gw := startGateway(t, upstreams)
	for _, fn := range sinks {
		p, _ := startFunction(t, fn, bins[fn], env)
		procs[fn] = p
	}

	carol := http.Header{"Authorization": {"Bearer " + iss.Token(t, "carol", auth.RoleMember)}}
	with := func(h http.Header, kv ...string) http.Header {
		h = h.Clone()
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	type taskJSON struct {
		ID      string `json:"id"`
		Title   string `json:"title"`
		Status  string `json:"status"`
		Version int64  `json:"version"`
	}
	decode := func(resp *http.Response, status int, v any) {
		t.Helper()
		decodeReply(t, resp, status, v)
	}

	// No token: the function's 401 comes back through the gateway intact.
	resp := do(t, http.MethodGet, gw.url+"/tasks", nil, nil)
	readProblem(t, resp, http.StatusUnauthorized)
	if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401 without WWW-Authenticate: %v", resp.Header)
	}

	// Without a token the gateway limits per client address (10 a second,
	// bursts of 20): of a quick burst, about 20 reach the function (401)
	// and the rest get nginx's own 429.
	var unauthorized, limited int
	for range 60 {
		resp := do(t, http.MethodGet, gw.url+"/tasks", nil, nil)
		if resp.StatusCode == http.StatusUnauthorized {
			unauthorized++
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			continue
		}
		p := readProblem(t, resp, http.StatusTooManyRequests)
		limited++
		if p.Type != "https://taskfn.dev/problems/too-many-requests" || resp.Header.Get("Retry-After") != "1" || resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("the gateway's 429: %+v, headers %v", p, resp.Header)
		}
	}
	if limited == 0 || unauthorized < 19 {
		t.Errorf("a burst of 60 requests without a token: %d reached the function, %d limited; want the burst of 20 through, then 429s", unauthorized, limited)
	}
	// A token takes a request out of the gateway's limit, into the
	// function's, per caller: Redis is down here, so that one lets it
	// through unchecked (fail open) and says only its policy.
	resp = do(t, http.MethodGet, gw.url+"/tasks", nil, carol)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with a token, right after the burst: status %d, want 200", resp.StatusCode)
	}
	if p, rl := resp.Header.Get("RateLimit-Policy"), resp.Header.Get("RateLimit"); p != `"reads";q=600;w=60` || rl != "" {
		t.Errorf("list-tasks with Redis down: RateLimit-Policy %q, RateLimit %q; want the reads policy and no count", p, rl)
	}

	// create
	var created taskJSON
	resp = do(t, http.MethodPost, gw.url+"/tasks", strings.NewReader(`{"title":"Ship the gateway","priority":"high","labels":["e2e"]}`),
		with(carol, "Content-Type", "application/json", "X-Request-Id", "e2e-create-1"))
	decode(resp, http.StatusCreated, &created)
	if created.ID == "" || created.Title != "Ship the gateway" || created.Version != 1 {
		t.Fatalf("created %+v", created)
	}
	if loc := resp.Header.Get("Location"); loc != "/tasks/"+created.ID {
		t.Errorf("Location %q", loc)
	}
	if ids := resp.Header.Values("X-Request-Id"); len(ids) != 1 || ids[0] != "e2e-create-1" {
		t.Errorf("X-Request-Id %q, want the client's, once", ids)
	}

	// get
	var got taskJSON
	decode(do(t, http.MethodGet, gw.url+"/tasks/"+created.ID, nil, carol), http.StatusOK, &got)
	if got.ID != created.ID {
		t.Errorf("get returned %+v", got)
	}

	// list, with a query string the gateway must pass on
	var list struct {
		Items []taskJSON `json:"items"`
	}
	decode(do(t, http.MethodGet, gw.url+"/tasks?label=e2e&limit=10&sort=-created_at", nil, carol), http.StatusOK, &list)
	if len(list.Items) != 1 || list.Items[0].ID != created.ID {
		t.Errorf("list returned %+v, want just %s", list.Items, created.ID)
	}

	// patch
	var patched taskJSON
	decode(do(t, http.MethodPatch, gw.url+"/tasks/"+created.ID, strings.NewReader(`{"status":"in_progress"}`),
		with(carol, "Content-Type", "application/merge-patch+json", "If-Match", `"1"`)), http.StatusOK, &patched)
	if patched.Status != "in_progress" || patched.Version != 2 {
		t.Errorf("patched %+v", patched)
	}
	readProblem(t, do(t, http.MethodPatch, gw.url+"/tasks/"+created.ID, strings.NewReader(`{"status":"done"}`),
		with(carol, "Content-Type", "application/merge-patch+json", "If-Match", `"1"`)), http.StatusPreconditionFailed)

	// a bulk change, all or nothing: one refused task refuses them all
	var second taskJSON
	decode(do(t, http.MethodPost, gw.url+"/tasks", strings.NewReader(`{"title":"Second"}`), with(carol, "Content-Type", "application/json")), http.StatusCreated, &second)
	p := readProblem(t, do(t, http.MethodPatch, gw.url+"/tasks", strings.NewReader(`{"ids":["`+created.ID+`","`+second.ID+`"],"patch":{"priority":"low"},"versions":{"`+second.ID+`":5}}`),
		with(carol, "Content-Type", "application/json")), http.StatusPreconditionFailed)
	if p.Type != "https://taskfn.dev/problems/bulk-refused" {
		t.Errorf("refused bulk change: %+v", p)
	}
	var bulk struct {
		Items []taskJSON `json:"items"`
	}
	decode(do(t, http.MethodPatch, gw.url+"/tasks", strings.NewReader(`{"ids":["`+second.ID+`"],"patch":{"status":"done"}}`),
		with(carol, "Content-Type", "application/json")), http.StatusOK, &bulk)
	if len(bulk.Items) != 1 || bulk.Items[0].Status != "done" || bulk.Items[0].Version != 2 {
		t.Errorf("bulk change %+v", bulk.Items)
	}
	// relations: second becomes a subtask of created; the inverse would be a cycle
	decode(do(t, http.MethodPost, gw.url+"/tasks/"+second.ID+"/relations", strings.NewReader(`{"kind":"subtask_of","task_id":"`+created.ID+`"}`),
		with(carol, "Content-Type", "application/json")), http.StatusCreated, nil)
	if p := readProblem(t, do(t, http.MethodPost, gw.url+"/tasks/"+created.ID+"/relations", strings.NewReader(`{"kind":"subtask_of","task_id":"`+second.ID+`"}`),
		with(carol, "Content-Type", "application/json")), http.StatusConflict); p.Type != "https://taskfn.dev/problems/relation-cycle" {
		t.Errorf("inverse subtask: %+v", p)
	}
	// the parent lists its subtask and counts it, done by the bulk change
	decode(do(t, http.MethodGet, gw.url+"/tasks?parent="+created.ID, nil, carol), http.StatusOK, &list)
	if len(list.Items) != 1 || list.Items[0].ID != second.ID {
		t.Errorf("?parent= listed %+v, want just %s", list.Items, second.ID)
	}
	var parent struct {
		Subtasks struct{ Total, Done int } `json:"subtasks"`
	}
	decode(do(t, http.MethodGet, gw.url+"/tasks/"+created.ID, nil, carol), http.StatusOK, &parent)
	if parent.Subtasks.Total != 1 || parent.Subtasks.Done != 1 {
		t.Errorf("parent's subtasks %+v, want 1 of 1 done", parent.Subtasks)
	}
	var rels struct {
		Items []struct{ Kind, Direction string } `json:"items"`
	}
	decode(do(t, http.MethodGet, gw.url+"/tasks/"+created.ID+"/relations", nil, carol), http.StatusOK, &rels)
	if len(rels.Items) != 1 || rels.Items[0].Kind != "subtask_of" || rels.Items[0].Direction != "incoming" {
		t.Errorf("relations %+v", rels.Items)
	}
	decode(do(t, http.MethodDelete, gw.url+"/tasks/"+second.ID+"/relations/subtask_of/"+created.ID, nil, carol), http.StatusNoContent, nil)
	decode(do(t, http.MethodDelete, gw.url+"/tasks/"+second.ID, nil, carol), http.StatusNoContent, nil)

	// a discussion: dave, the assignee of nothing here, cannot; carol can
	var note struct {
		ID   string `json:"id"`
		Body string `json:"body"`
	}
	decode(do(t, http.MethodPost, gw.url+"/tasks/"+created.ID+"/comments", strings.NewReader(`{"body":"Draft is **ready**"}`),
		with(carol, "Content-Type", "application/json")), http.StatusCreated, &note)
	var notes struct {
		Items []struct{ ID, Body string } `json:"items"`
	}
	decode(do(t, http.MethodGet, gw.url+"/tasks/"+created.ID+"/comments", nil, carol), http.StatusOK, &notes)
	if len(notes.Items) != 1 || notes.Items[0].ID != note.ID {
		t.Errorf("comments %+v", notes.Items)
	}
	decode(do(t, http.MethodPatch, gw.url+"/comments/"+note.ID, strings.NewReader(`{"body":"Draft is ready, see v2"}`),
		with(carol, "Content-Type", "application/merge-patch+json", "If-Match", `"1"`)), http.StatusOK, &note)
	readProblem(t, do(t, http.MethodGet, gw.url+"/tasks/"+created.ID+"/comments", nil, http.Header{"Authorization": {"Bearer " + iss.Token(t, "dave", auth.RoleMember)}}), http.StatusNotFound)
	decode(do(t, http.MethodDelete, gw.url+"/comments/"+note.ID, nil, carol), http.StatusNoContent, nil)

	// its history, newest first, through its own function
	var history struct {
		Items []struct {
			Kind    string `json:"kind"`
			Actor   string `json:"actor"`
			Changes []struct {
				Field string `json:"field"`
			} `json:"changes"`
		} `json:"items"`
	}
	decode(do(t, http.MethodGet, gw.url+"/tasks/"+created.ID+"/activity", nil, carol), http.StatusOK, &history)
	kinds := make([]string, len(history.Items))
	for i, it := range history.Items {
		kinds[i] = it.Kind
	}
	if strings.Join(kinds, " ") != "comment_removed comment_added relation_removed relation_added updated created" ||
		history.Items[4].Changes[0].Field != "status" || history.Items[5].Actor != "carol" {
		t.Errorf("activity %+v, want comment, relation, status change, creation, newest first", history.Items)
	}

	// delete: to the trash, out of GET; restored as it was; archived and
	// back; deleted again, then purged for good
	decode(do(t, http.MethodDelete, gw.url+"/tasks/"+created.ID, nil, carol), http.StatusNoContent, nil)
	readProblem(t, do(t, http.MethodGet, gw.url+"/tasks/"+created.ID, nil, carol), http.StatusNotFound)
	var trash struct {
		Items []struct {
			ID        string `json:"id"`
			DeletedBy string `json:"deleted_by"`
			Version   int64  `json:"version"`
		} `json:"items"`
	}
	decode(do(t, http.MethodGet, gw.url+"/trash?limit=10", nil, carol), http.StatusOK, &trash)
	// the most recently trashed first: this one, then the second task
	if len(trash.Items) != 2 || trash.Items[0].ID != created.ID || trash.Items[1].ID != second.ID || trash.Items[0].DeletedBy != "carol" {
		t.Fatalf("trash %+v, want the deleted task, then the second", trash.Items)
	}
	var restored taskJSON
	resp = do(t, http.MethodPost, gw.url+"/tasks/"+created.ID+"/restore", nil, with(carol, "If-Match", fmt.Sprintf(`"%d"`, trash.Items[0].Version)))
	decode(resp, http.StatusOK, &restored)
	if restored.Title != "Ship the gateway" || restored.Version != trash.Items[0].Version+1 {
		t.Errorf("restored %+v", restored)
	}
	decode(do(t, http.MethodGet, gw.url+"/tasks/"+created.ID, nil, carol), http.StatusOK, nil)
	decode(do(t, http.MethodPatch, gw.url+"/tasks/"+created.ID, strings.NewReader(`{"archived":true}`),
		with(carol, "Content-Type", "application/merge-patch+json")), http.StatusOK, nil)
	decode(do(t, http.MethodGet, gw.url+"/tasks?label=e2e", nil, carol), http.StatusOK, &list)
	if len(list.Items) != 0 {
		t.Errorf("an archived task in the default list: %+v", list.Items)
	}
	decode(do(t, http.MethodGet, gw.url+"/tasks?label=e2e&archived=true", nil, carol), http.StatusOK, &list)
	if len(list.Items) != 1 {
		t.Errorf("archived list %+v, want the archived task", list.Items)
	}
	decode(do(t, http.MethodDelete, gw.url+"/tasks/"+created.ID, nil, carol), http.StatusNoContent, nil)
	decode(do(t, http.MethodDelete, gw.url+"/trash/"+created.ID, nil, carol), http.StatusNoContent, nil)
	readProblem(t, do(t, http.MethodPost, gw.url+"/tasks/"+created.ID+"/restore", nil, carol), http.StatusNotFound)
	decode(do(t, http.MethodGet, gw.url+"/trash", nil, carol), http.StatusOK, &trash)
	if len(trash.Items) != 1 || trash.Items[0].ID != second.ID {
		t.Errorf("trash after the purge %+v, want only the second task", trash.Items)
	}

	// A team shares work through a project: carol creates it, adds dave,
	// dave files a task there and carol lists it; a Keycloak group makes
	// frank a viewer; a stranger sees nothing; dave, removed, is refused
	// within a second by another process than the one that removed him.
	token := func(sub string, groups ...string) http.Header {
		claims := iss.Claims(sub, auth.RoleMember)
		if groups != nil {
			claims["groups"] = groups
		}
		return http.Header{"Authorization": {"Bearer " + iss.Sign(t, claims)}}
	}
	dave, frank, mallory := token("dave"), token("frank", "/projects/e2e-team/viewer"), token("mallory")
	json := func(h http.Header) http.Header { return with(h, "Content-Type", "application/json") }
	var proj struct {
		Key  string  `json:"key"`
		Role *string `json:"role"`
	}
	resp = do(t, http.MethodPost, gw.url+"/projects", strings.NewReader(`{"key":"e2e-team","name":"E2E team"}`), json(carol))
	decode(resp, http.StatusCreated, &proj)
	if proj.Key != "e2e-team" || proj.Role == nil || *proj.Role != "maintainer" || resp.Header.Get("Location") != "/projects/e2e-team" {
		t.Fatalf("created project %+v, Location %q", proj, resp.Header.Get("Location"))
	}
	decode(do(t, http.MethodPut, gw.url+"/projects/e2e-team/members/dave", strings.NewReader(`{"role":"member"}`), json(carol)), http.StatusCreated, nil)
	var members struct {
		Items []struct{ Subject, Role string } `json:"items"`
	}
	decode(do(t, http.MethodGet, gw.url+"/projects/e2e-team/members", nil, dave), http.StatusOK, &members)
	if len(members.Items) != 2 {
		t.Errorf("members %+v, want carol and dave", members.Items)
	}
	var shared taskJSON
	decode(do(t, http.MethodPost, gw.url+"/tasks", strings.NewReader(`{"title":"Team task","project":"e2e-team"}`), json(dave)), http.StatusCreated, &shared)
	decode(do(t, http.MethodGet, gw.url+"/tasks?project=e2e-team", nil, carol), http.StatusOK, &list)
	if len(list.Items) != 1 || list.Items[0].ID != shared.ID {
		t.Errorf("carol's list of the project %+v, want dave's task", list.Items)
	}
	decode(do(t, http.MethodGet, gw.url+"/tasks/"+shared.ID, nil, frank), http.StatusOK, nil)
	readProblem(t, do(t, http.MethodPatch, gw.url+"/tasks/"+shared.ID, strings.NewReader(`{"title":"mine"}`), json(frank)), http.StatusForbidden)
	readProblem(t, do(t, http.MethodGet, gw.url+"/tasks/"+shared.ID, nil, mallory), http.StatusNotFound)
	// carol mentions both: the event names frank, who sees the task
	// through his group, and not mallory, who does not (both are known
	// by their requests above). No Kafka here: the event waits in the outbox.
	decode(do(t, http.MethodPost, gw.url+"/tasks/"+shared.ID+"/comments", strings.NewReader(`{"body":"@frank @mallory please review"}`), json(carol)), http.StatusCreated, nil)
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	var mentioned []string
	err = conn.QueryRow(t.Context(), `SELECT data->'mentioned' FROM outbox WHERE key = $1 AND type = 'dev.taskfn.comment.created.v1'`, shared.ID).Scan(&mentioned)
	_ = conn.Close(t.Context())
	if err != nil || fmt.Sprint(mentioned) != "[frank]" {
		t.Errorf("the comment's event mentions %v (%v), want [frank]", mentioned, err)
	}
	readProblem(t, do(t, http.MethodGet, gw.url+"/projects/e2e-team", nil, mallory), http.StatusNotFound)
	decode(do(t, http.MethodGet, gw.url+"/tasks?project=e2e-team", nil, mallory), http.StatusOK, &list)
	if len(list.Items) != 0 {
		t.Errorf("a stranger lists %d tasks of the project", len(list.Items))
	}
	decode(do(t, http.MethodPatch, gw.url+"/projects/e2e-team", strings.NewReader(`{"description":"end to end"}`),
		with(carol, "Content-Type", "application/merge-patch+json", "If-Match", `"1"`)), http.StatusOK, nil)
	decode(do(t, http.MethodGet, gw.url+"/tasks/"+shared.ID, nil, dave), http.StatusOK, nil)
	decode(do(t, http.MethodDelete, gw.url+"/projects/e2e-team/members/dave", nil, carol), http.StatusNoContent, nil)
	removed := time.Now()
	for {
		resp := do(t, http.MethodGet, gw.url+"/tasks/"+shared.ID, nil, dave)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			break
		}
		if resp.StatusCode != http.StatusOK || time.Since(removed) > time.Second {
			t.Fatalf("get-task answered a removed member %d after %s", resp.StatusCode, time.Since(removed))
		}
		time.Sleep(25 * time.Millisecond)
	}
	readProblem(t, do(t, http.MethodDelete, gw.url+"/projects/e2e-team", nil, carol), http.StatusConflict)
	decode(do(t, http.MethodDelete, gw.url+"/tasks/"+shared.ID, nil, carol), http.StatusNoContent, nil)
	// the trash keeps the project: its task could not be restored otherwise
	readProblem(t, do(t, http.MethodDelete, gw.url+"/projects/e2e-team", nil, carol), http.StatusConflict)
	decode(do(t, http.MethodDelete, gw.url+"/trash/"+shared.ID, nil, carol), http.StatusNoContent, nil)
	decode(do(t, http.MethodDelete, gw.url+"/projects/e2e-team", nil, carol), http.StatusNoContent, nil)
	var projects struct {
		Items []struct{ Key string } `json:"items"`
	}
	decode(do(t, http.MethodGet, gw.url+"/projects", nil, carol), http.StatusOK, &projects)
	if len(projects.Items) != 1 || projects.Items[0].Key != "~carol" {
		t.Errorf("carol's projects %+v, want her personal one", projects.Items)
	}

	// A weekly task through the gateway; a bad rule is a 422 naming its
	// part. Done, its status change (from the outbox: no Kafka here) goes
	// to the real recur binary twice, as a redelivering KafkaSource would:
	// one next occurrence, a week on.
	readProblem(t, do(t, http.MethodPost, gw.url+"/tasks", strings.NewReader(`{"title":"Weekly","due_at":"2027-03-22T08:00:00Z","recurrence":"FREQ=WEEKLY;BYDAY=XX"}`), json(carol)), http.StatusUnprocessableEntity)
	var weekly taskJSON
	decode(do(t, http.MethodPost, gw.url+"/tasks", strings.NewReader(`{"title":"Weekly","due_at":"2027-03-22T08:00:00Z","recurrence":"FREQ=WEEKLY;BYDAY=MO","recurrence_tz":"Europe/Berlin"}`), json(carol)), http.StatusCreated, &weekly)
	decode(do(t, http.MethodPatch, gw.url+"/tasks/"+weekly.ID, strings.NewReader(`{"status":"done"}`), json(carol)), http.StatusOK, nil)
	changed := outboxEvent(t, dbURL, weekly.ID, "dev.taskfn.task.status_changed.v1")
	// Without the recur KafkaSource's token the sink refuses it, and
	// changes nothing.
	postEvent(t, procs["recur"].addr, "", "dev.taskfn.task.status_changed.v1", changed, http.StatusUnauthorized)
	postEvent(t, procs["recur"].addr, cluster.Token(t, "notify", "kafkasource", "taskfn-notify"), "dev.taskfn.task.status_changed.v1", changed, http.StatusUnauthorized)
	for range 2 {
		postEvent(t, procs["recur"].addr, cluster.Token(t, "recur", "kafkasource", "taskfn-recur"), "dev.taskfn.task.status_changed.v1", changed, http.StatusOK)
	}
	var series struct {
		Items []struct {
			ID       string `json:"id"`
			DueAt    string `json:"due_at"`
			SeriesID string `json:"series_id"`
		} `json:"items"`
	}
	decode(do(t, http.MethodGet, gw.url+"/tasks", nil, carol), http.StatusOK, &series)
	var occurrences []string
	for _, it := range series.Items {
		if it.SeriesID == weekly.ID {
			occurrences = append(occurrences, it.DueAt)
		}
	}
	// 09:00 in Berlin both weeks: CET, then CEST after 2027-03-28.
	if fmt.Sprint(occurrences) != "[2027-03-29T07:00:00Z]" {
		t.Errorf("occurrences after two deliveries %v, want the one on 2027-03-29T07:00:00Z", occurrences)
	}

	// Commands from a producer through the gateway to the real
	// ingest-events (docs/producers.md): a structured create, delivered
	// twice, makes one task and answers alike; a batch updates and closes
	// it by its externalref; Alertmanager's webhook makes a task of an
	// alert; the KafkaSource's path is not routed, and not open without a
	// sender token.
	createCmd := `{"specversion":"1.0","id":"e2e-cmd-1","source":"/e2e/producer","type":"dev.taskfn.command.task.create.v1","externalref":"e2e:1","datacontenttype":"application/json","data":{"title":"From a producer"}}`
	structured := with(carol, "Content-Type", "application/cloudevents+json")
	var fromProducer, replayed taskJSON
	decode(do(t, http.MethodPost, gw.url+"/events", strings.NewReader(createCmd), structured), http.StatusCreated, &fromProducer)
	again := do(t, http.MethodPost, gw.url+"/events", strings.NewReader(createCmd), structured)
	if again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("a repeated command: headers %v, want Idempotent-Replayed", again.Header)
	}
	decode(again, http.StatusCreated, &replayed)
	if replayed != fromProducer {
		t.Errorf("a repeated command answered %+v, first %+v", replayed, fromProducer)
	}
	batch := `[{"specversion":"1.0","id":"e2e-cmd-2","source":"/e2e/producer","type":"dev.taskfn.command.task.update.v1","externalref":"e2e:1","datacontenttype":"application/json","data":{"expected_version":1,"patch":{"priority":"high"}}},` +
		`{"specversion":"1.0","id":"e2e-cmd-3","source":"/e2e/producer","type":"dev.taskfn.command.task.close.v1","externalref":"e2e:1","datacontenttype":"application/json","data":{}}]`
	var batchReply struct {
		Results []struct {
			Status int      `json:"status"`
			Body   taskJSON `json:"body"`
		} `json:"results"`
	}
	decode(do(t, http.MethodPost, gw.url+"/events", strings.NewReader(batch), with(carol, "Content-Type", "application/cloudevents-batch+json")), http.StatusOK, &batchReply)
	if len(batchReply.Results) != 2 || batchReply.Results[1].Body.Status != "done" || batchReply.Results[1].Body.ID != fromProducer.ID {
		t.Errorf("batch: %+v", batchReply)
	}
	alert := `{"version":"4","status":"firing","receiver":"taskfn","commonLabels":{},"externalURL":"http://alertmanager:9093","alerts":[{"status":"firing","labels":{"alertname":"DiskFull","severity":"warning"},"annotations":{"summary":"Disk almost full"},"startsAt":"2026-12-07T17:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"e2e0fingerprint"}]}`
	var alertReply struct {
		Results []struct {
			Status int `json:"status"`
		} `json:"results"`
	}
	decode(do(t, http.MethodPost, gw.url+"/events/alertmanager", strings.NewReader(alert), json(carol)), http.StatusOK, &alertReply)
	if len(alertReply.Results) != 1 || alertReply.Results[0].Status != http.StatusCreated {
		t.Errorf("alertmanager: %+v", alertReply)
	}
	readProblem(t, do(t, http.MethodPost, gw.url+"/kafka", strings.NewReader(createCmd), structured), http.StatusNotFound)
	readProblem(t, do(t, http.MethodPost, "http://"+procs["ingest-events"].addr+"/kafka", strings.NewReader(createCmd), with(http.Header{}, "Content-Type", "application/cloudevents+json")), http.StatusUnauthorized)

	// A task due a moment ago: two ticks to the real remind binary leave
	// one overdue notice (and its reminder, now stale, unsent).
	due := time.Now().UTC().Add(1500 * time.Millisecond).Truncate(time.Millisecond)
	var reminded taskJSON
	decode(do(t, http.MethodPost, gw.url+"/tasks", strings.NewReader(`{"title":"Soon","due_at":"`+due.Format(time.RFC3339Nano)+`","reminders":["-PT1S"]}`), json(carol)), http.StatusCreated, &reminded)
	time.Sleep(time.Until(due) + 100*time.Millisecond)
	for range 2 {
		postEvent(t, procs["remind"].addr, cluster.Token(t, "remind", "pingsource", "taskfn-remind"), "dev.knative.sources.ping", []byte(`{}`), http.StatusOK)
	}
	if n := outboxCount(t, dbURL, reminded.ID, "dev.taskfn.task.overdue.v1"); n != 1 {
		t.Errorf("%d overdue notices after two ticks, want 1", n)
	}
	if n := outboxCount(t, dbURL, reminded.ID, "dev.taskfn.task.reminder.v1"); n != 0 {
		t.Errorf("%d stale reminders sent with the overdue notice, want none", n)
	}

	// The gateway's own answers.
	readProblem(t, do(t, http.MethodGet, gw.url+"/boards", nil, carol), http.StatusNotFound)
	resp = do(t, http.MethodPost, gw.url+"/projects/x/members", nil, carol)
	readProblem(t, resp, http.StatusMethodNotAllowed)
	if a := resp.Header.Get("Allow"); a != "GET" {
		t.Errorf("POST /projects/{key}/members: Allow %q", a)
	}
	resp = do(t, http.MethodPut, gw.url+"/tasks", nil, carol)
	readProblem(t, resp, http.StatusMethodNotAllowed)
	if a := resp.Header.Get("Allow"); a != "GET, POST, PATCH" {
		t.Errorf("PUT /tasks: Allow %q", a)
	}
	resp = do(t, http.MethodPost, gw.url+"/tasks/"+created.ID, strings.NewReader("{}"), carol)
	readProblem(t, resp, http.StatusMethodNotAllowed)
	if a := resp.Header.Get("Allow"); a != "GET, PATCH, DELETE" {
		t.Errorf("POST /tasks/{id}: Allow %q", a)
	}

	// Bodies: exactly 1 MiB reaches the function (which then judges the
	// JSON); one byte more is refused by nginx before any function sees it.
	resp = do(t, http.MethodPost, gw.url+"/tasks", bytes.NewReader(bytes.Repeat([]byte(" "), 1<<20)),
		with(carol, "Content-Type", "application/json"))
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusRequestEntityTooLarge || resp.StatusCode/100 == 5 {
		t.Errorf("a body of exactly 1 MiB: status %d, want the function's own answer", resp.StatusCode)
	}
	resp = do(t, http.MethodPost, gw.url+"/tasks", bytes.NewReader(bytes.Repeat([]byte(" "), 1<<20+1)),
		with(carol, "Content-Type", "application/json", "X-Request-Id", "e2e-too-large"))
	if p := readProblem(t, resp, http.StatusRequestEntityTooLarge); p.Type != "https://taskfn.dev/problems/too-large" {
		t.Errorf("413: %+v", p)
	}

	// The request id the client chose is in the function's log line too,
	// once the line is out: info lines wait up to LOG_FLUSH_INTERVAL (1s).
	logged := func() bool {
		return strings.Contains(procs["create-task"].logs.String(), `"http.request.id":"e2e-create-1"`)
	}
	for deadline := time.Now().Add(5 * time.Second); !logged() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !logged() {
		t.Errorf("create-task did not log the gateway's request id within 5s:\n%s", procs["create-task"].logs)
	}

	// Every metric the alerts and the dashboard use is one the functions
	// export (now that each has served requests).
	exported := map[string]bool{}
	for fn, p := range procs {
		resp := do(t, http.MethodGet, "http://"+p.addr+"/metrics", nil, nil)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /metrics: %d", fn, resp.StatusCode)
		}
		for _, l := range strings.Split(string(body), "\n") {
			if l != "" && !strings.HasPrefix(l, "#") {
				name, _, _ := strings.Cut(l, "{")
				name, _, _ = strings.Cut(name, " ")
				exported[name] = true
			}
		}
	}
	checkMetricsExported(t, exported)
	// The checks that failed open are counted (Redis is down here).
	resp = do(t, http.MethodGet, "http://"+procs["list-tasks"].addr+"/metrics", nil, nil)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if m := failOpen.FindSubmatch(body); m == nil || string(m[1]) == "0" {
		t.Errorf("list-tasks does not count its unchecked requests in taskfn_ratelimit_fail_open_total{class=\"reads\"}")
	}

	// A function that is down: nginx's own 502, as problem+json.
	if err := procs["delete-task"].stop(); err != nil {
		t.Errorf("delete-task: after SIGTERM: %v", err)
	}
	readProblem(t, do(t, http.MethodDelete, gw.url+"/tasks/"+created.ID, nil, carol), http.StatusBadGateway)

	checkAccessLog(t, gw.logs.String())
}

var failOpen = regexp.MustCompile(`(?m)^taskfn_ratelimit_fail_open_total\{class="reads"\} ([0-9.e+]+)$`)

// checkAccessLog reads the gateway's JSON access log: every line parses,
// numbers are numbers, and requests nginx answered itself name no upstream.
func checkAccessLog(t *testing.T, out string) {
	t.Helper()
	lines := logLines(t, "gateway access log", out)
	if len(lines) < 10 {
		t.Fatalf("only %d access log lines:\n%s", len(lines), out)
	}
	var sawCreate, saw413 bool
	for _, l := range lines {
		for _, f := range []string{"http.response.status_code", "event.duration", "http.request.bytes", "http.response.body.bytes"} {
			if _, ok := l[f].(float64); !ok {
				t.Errorf("access log %s is %T, want a number: %v", f, l[f], l)
			}
		}
		switch l["http.request.id"] {
		case "e2e-create-1":
			sawCreate = true
			if l["service.target.name"] != "create-task" || l["nginx.upstream.address"] == "" {
				t.Errorf("create logged as %v", l)
			}
		case "e2e-too-large":
			saw413 = true
			if l["http.response.status_code"] != float64(413) || l["nginx.upstream.address"] != "" {
				t.Errorf("the 413 should be nginx's own, logged as %v", l)
			}
		}
	}
	if !sawCreate || !saw413 {
		t.Errorf("access log lacks the create (%v) or the 413 (%v) line:\n%s", sawCreate, saw413, out)
	}
}

// outboxEvent is the data of the event of type typ about key.
func outboxEvent(t *testing.T, dbURL, key, typ string) []byte {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(t.Context()) }()
	var data []byte
	if err := conn.QueryRow(t.Context(), `SELECT data FROM outbox WHERE key = $1 AND type = $2 ORDER BY id DESC LIMIT 1`, key, typ).Scan(&data); err != nil {
		t.Fatalf("outbox event %s of %s: %v", typ, key, err)
	}
	return data
}

func outboxCount(t *testing.T, dbURL, key, typ string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(t.Context()) }()
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM outbox WHERE key = $1 AND type = $2`, key, typ).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// postEvent POSTs a binary-mode CloudEvent to a sink at addr, as a
// KafkaSource or PingSource does with its sender token (none when empty),
// and expects want (200: any 2xx).
func postEvent(t *testing.T, addr, token, typ string, data []byte, want int) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", fmt.Sprintf("e2e-%d", time.Now().UnixNano()))
	req.Header.Set("Ce-Type", typ)
	req.Header.Set("Ce-Source", "/e2e")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if got := resp.StatusCode; got != want && (want != http.StatusOK || got/100 != 2) {
		t.Fatalf("%s to %s: %d, want %d: %s", typ, addr, got, want, body)
	}
}

// TestWebhooksEndToEnd: the real binaries behind the real gateway. A
// webhook registered through nginx to a loopback receiver gets the
// CloudEvent of a task created through nginx, signed so the official
// Standard Webhooks library verifies it, when the event reaches the real
// deliver-webhooks sink with its KafkaSource's token (no Kafka here: the
// test takes the event from the outbox, as the source would from Kafka).
func TestWebhooksEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs functions")
	}
	lookTool(t, "nginx")
	fns := []string{"create-webhook", "create-task", "list-webhook-deliveries"}
	bins := buildFunctions(t, append(slices.Clone(fns), "deliver-webhooks", "migrate"))
	dbURL := pgtest.NewEmpty(t)
	iss := authtest.NewIssuer(t)
	cluster := authtest.NewSenderIssuer(t)
	env := e2eEnv(t, dbURL, iss, cluster)
	migrateOnce(t, bins["migrate"], env)
	_, gw := startBehindGateway(t, fns, bins, env)
	sink, _ := startFunction(t, "deliver-webhooks", bins["deliver-webhooks"], env)

	type post struct {
		ev       *event.Event
		verified error
	}
	var (
		mu     sync.Mutex
		secret string
		posts  []post
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		wh, err := standardwebhooks.NewWebhook(secret)
		if err == nil {
			err = wh.Verify(body, r.Header)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		ev, _ := cehttp.NewEventFromHTTPRequest(r)
		posts = append(posts, post{ev, err})
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)

	carol := http.Header{"Authorization": {"Bearer " + iss.Token(t, "carol", auth.RoleMember)}, "Content-Type": {"application/json"}}
	var hook struct{ ID, Secret string }
	decodeReply(t, do(t, http.MethodPost, gw.url+"/webhooks",
		strings.NewReader(`{"url":"`+recv.URL+`/hook","types":["dev.taskfn.task.created.v1"],"project":"~carol"}`), carol), http.StatusCreated, &hook)
	mu.Lock()
	secret = hook.Secret
	mu.Unlock()
	// The cluster's policy holds through the same gateway: metadata refused.
	readProblem(t, do(t, http.MethodPost, gw.url+"/webhooks",
		strings.NewReader(`{"url":"https://169.254.169.254/latest","types":["dev.taskfn.task.created.v1"],"project":"~carol"}`), carol), http.StatusUnprocessableEntity)
	var task struct{ ID string }
	decodeReply(t, do(t, http.MethodPost, gw.url+"/tasks", strings.NewReader(`{"title":"Hooked"}`), carol), http.StatusCreated, &task)

	created := outboxEvent(t, dbURL, task.ID, "dev.taskfn.task.created.v1")
	postEvent(t, sink.addr, "", "dev.taskfn.task.created.v1", created, http.StatusUnauthorized)
	postEvent(t, sink.addr, cluster.Token(t, "deliver-webhooks", "kafkasource", "taskfn-deliver-webhooks"), "dev.taskfn.task.created.v1", created, http.StatusOK)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(posts)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(posts) != 1 {
		t.Fatalf("the receiver got %d posts, want 1", len(posts))
	}
	if p := posts[0]; p.verified != nil || p.ev == nil || p.ev.Type() != "dev.taskfn.task.created.v1" || !strings.Contains(string(p.ev.Data()), task.ID) {
		t.Fatalf("post %+v", p)
	}
	var page struct {
		Items []struct{ State string }
	}
	decodeReply(t, do(t, http.MethodGet, gw.url+"/webhooks/"+hook.ID+"/deliveries", nil, carol), http.StatusOK, &page)
	if len(page.Items) != 1 || page.Items[0].State != "delivered" {
		t.Errorf("deliveries %+v", page.Items)
	}
}

// TestDigestEndToEnd: the real binaries behind the real gateway. A user
// opts in through nginx (PUT /me/preferences, refused with a bad zone),
// two PingSource ticks to the real send-digests binary file one digest,
// and the real notify sink, given its event as its KafkaSource would,
// puts it into the inbox, which GET /notifications shows through nginx.
func TestDigestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs functions")
	}
	lookTool(t, "nginx")
	fns := []string{"get-preferences", "put-preferences", "create-task", "list-notifications"}
	bins := buildFunctions(t, append(slices.Clone(fns), "send-digests", "notify", "migrate"))
	dbURL := pgtest.NewEmpty(t)
	iss := authtest.NewIssuer(t)
	cluster := authtest.NewSenderIssuer(t)
	env := e2eEnv(t, dbURL, iss, cluster)
	migrateOnce(t, bins["migrate"], env)
	_, gw := startBehindGateway(t, fns, bins, env)
	tick, _ := startFunction(t, "send-digests", bins["send-digests"], env)
	notify, _ := startFunction(t, "notify", bins["notify"], env)

	// A zone where this week's Monday 07:00 has passed, whenever the test
	// runs: UTC, or on a Monday before 07:00 UTC, the zone furthest ahead.
	zone := "UTC"
	if now := time.Now().UTC(); now.Weekday() == time.Monday && now.Hour() < 7 {
		zone = "Pacific/Kiritimati"
	}
	dana := http.Header{"Authorization": {"Bearer " + iss.Token(t, "dana", auth.RoleMember)}, "Content-Type": {"application/json"}}
	readProblem(t, do(t, http.MethodPut, gw.url+"/me/preferences", strings.NewReader(`{"digest":"weekly","time_zone":"Mars/Base"}`), dana), http.StatusUnprocessableEntity)
	decodeReply(t, do(t, http.MethodPut, gw.url+"/me/preferences", strings.NewReader(`{"digest":"weekly","time_zone":"`+zone+`"}`), dana), http.StatusOK, nil)
	var prefs struct {
		Digest   string `json:"digest"`
		TimeZone string `json:"time_zone"`
	}
	decodeReply(t, do(t, http.MethodGet, gw.url+"/me/preferences", nil, dana), http.StatusOK, &prefs)
	if prefs.Digest != "weekly" || prefs.TimeZone != zone {
		t.Fatalf("preferences %+v", prefs)
	}
	decodeReply(t, do(t, http.MethodPost, gw.url+"/tasks", strings.NewReader(`{"title":"Digest me"}`), dana), http.StatusCreated, nil)

	token := cluster.Token(t, "send-digests", "pingsource", "taskfn-send-digests")
	postEvent(t, tick.addr, "", "dev.knative.sources.ping", []byte(`{}`), http.StatusUnauthorized)
	for range 2 {
		postEvent(t, tick.addr, token, "dev.knative.sources.ping", []byte(`{}`), http.StatusOK)
	}
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(t.Context()) }()
	var data []byte
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) OVER (), data FROM outbox WHERE type = 'dev.taskfn.digest.weekly.v1'`).Scan(&n, &data); err != nil || n != 1 {
		t.Fatalf("%d digest events after two ticks (%v), want 1", n, err)
	}
	postEvent(t, notify.addr, cluster.Token(t, "notify", "kafkasource", "taskfn-notify"), "dev.taskfn.digest.weekly.v1", data, http.StatusOK)
	var inbox struct {
		Items []struct{ Kind, Summary string }
	}
	decodeReply(t, do(t, http.MethodGet, gw.url+"/notifications", nil, dana), http.StatusOK, &inbox)
	if len(inbox.Items) != 1 || inbox.Items[0].Kind != "digest.weekly" || !strings.Contains(inbox.Items[0].Summary, "1 open tasks") {
		t.Fatalf("inbox %+v", inbox.Items)
	}
}

// TestFieldsEndToEnd: the custom field definition routes, the real
// binaries behind the real gateway. A maintainer defines two fields, lists
// them, renames one and adds an option under If-Match, and deletes the
// other; a viewer reads but may not write, a stranger does not see the
// project, and a bad type is a 422.
func TestFieldsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs functions")
	}
	lookTool(t, "nginx")
	fns := []string{"create-project", "put-project-member", "create-field", "list-fields", "get-field", "update-field", "delete-field",
		"create-task", "update-task", "list-tasks"}
	bins := buildFunctions(t, append(slices.Clone(fns), "migrate"))
	dbURL := pgtest.NewEmpty(t)
	iss := authtest.NewIssuer(t)
	cluster := authtest.NewSenderIssuer(t)
	env := e2eEnv(t, dbURL, iss, cluster)
	migrateOnce(t, bins["migrate"], env)
	_, gw := startBehindGateway(t, fns, bins, env)

	as := func(sub string, kv ...string) http.Header {
		h := http.Header{"Authorization": {"Bearer " + iss.Token(t, sub, auth.RoleMember)}, "Content-Type": {"application/json"}}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	carol, dave, erin := as("carol"), as("dave"), as("erin")
	body := strings.NewReader
	decodeReply(t, do(t, http.MethodPost, gw.url+"/projects", body(`{"key":"ops","name":"Ops"}`), carol), http.StatusCreated, nil)
	decodeReply(t, do(t, http.MethodPut, gw.url+"/projects/ops/members/dave", body(`{"role":"viewer"}`), carol), http.StatusCreated, nil)

	type option struct{ ID, Name string }
	type fieldJSON struct {
		ID       int64
		Name     string
		Type     string
		Options  []option
		Required bool
		Position int
		Version  int64
	}
	var sev, est fieldJSON
	resp := do(t, http.MethodPost, gw.url+"/projects/ops/fields",
		body(`{"name":"severity","type":"select","options":[{"name":"low"},{"name":"high"}]}`), carol)
	decodeReply(t, resp, http.StatusCreated, &sev)
	if loc := resp.Header.Get("Location"); loc != fmt.Sprintf("/projects/ops/fields/%d", sev.ID) || len(sev.Options) != 2 || sev.Options[0].ID == "" {
		t.Fatalf("created %+v at %q", sev, loc)
	}
	decodeReply(t, do(t, http.MethodPost, gw.url+"/projects/ops/fields", body(`{"name":"estimate","type":"number","required":true}`), carol), http.StatusCreated, &est)
	readProblem(t, do(t, http.MethodPost, gw.url+"/projects/ops/fields", body(`{"name":"mood","type":"emoji"}`), carol), http.StatusUnprocessableEntity)
	readProblem(t, do(t, http.MethodPost, gw.url+"/projects/ops/fields", body(`{"name":"Severity","type":"text"}`), carol), http.StatusConflict)

	// The viewer reads; it may not write. A stranger sees nothing.
	var list struct{ Items []fieldJSON }
	decodeReply(t, do(t, http.MethodGet, gw.url+"/projects/ops/fields", nil, dave), http.StatusOK, &list)
	if len(list.Items) != 2 || list.Items[0].Name != "severity" || list.Items[1].Name != "estimate" {
		t.Fatalf("listed %+v", list.Items)
	}
	readProblem(t, do(t, http.MethodPost, gw.url+"/projects/ops/fields", body(`{"name":"x","type":"text"}`), dave), http.StatusForbidden)
	readProblem(t, do(t, http.MethodGet, gw.url+"/projects/ops/fields", nil, erin), http.StatusNotFound)
	readProblem(t, do(t, http.MethodDelete, gw.url+fmt.Sprintf("/projects/ops/fields/%d", est.ID), nil, erin), http.StatusNotFound)

	// Rename the field and add an option, under If-Match; the option ids stay.
	path := fmt.Sprintf("/projects/ops/fields/%d", sev.ID)
	patch := fmt.Sprintf(`{"name":"Severity","options":[{"id":%q,"name":"low"},{"id":%q,"name":"high"},{"name":"critical"}]}`, sev.Options[0].ID, sev.Options[1].ID)
	readProblem(t, do(t, http.MethodPatch, gw.url+path, body(patch), as("carol", "If-Match", `"9"`)), http.StatusPreconditionFailed)
	var up fieldJSON
	resp = do(t, http.MethodPatch, gw.url+path, body(patch), as("carol", "If-Match", `"1"`, "Content-Type", "application/merge-patch+json"))
	decodeReply(t, resp, http.StatusOK, &up)
	if up.Name != "Severity" || len(up.Options) != 3 || up.Options[0].ID != sev.Options[0].ID || up.Version != 2 || resp.Header.Get("ETag") != `"2"` {
		t.Fatalf("patched %+v, ETag %q", up, resp.Header.Get("ETag"))
	}
	readProblem(t, do(t, http.MethodPatch, gw.url+path, body(`{"type":"text"}`), carol), http.StatusUnprocessableEntity)
	var got fieldJSON
	decodeReply(t, do(t, http.MethodGet, gw.url+path, nil, dave), http.StatusOK, &got)
	if got.Name != "Severity" {
		t.Errorf("read back %+v", got)
	}

	// Delete: gone from the list at once.
	decodeReply(t, do(t, http.MethodDelete, gw.url+fmt.Sprintf("/projects/ops/fields/%d", est.ID), nil, carol), http.StatusNoContent, nil)
	decodeReply(t, do(t, http.MethodGet, gw.url+"/projects/ops/fields", nil, carol), http.StatusOK, &list)
	if len(list.Items) != 1 || list.Items[0].ID != sev.ID {
		t.Errorf("after the delete %+v", list.Items)
	}
	readProblem(t, do(t, http.MethodGet, gw.url+fmt.Sprintf("/projects/ops/fields/%d", est.ID), nil, carol), http.StatusNotFound)

	// Values on tasks through the task routes: create, filter, move.
	e2eCustomFieldValues(t, gw.url, dbURL, carol)
}
