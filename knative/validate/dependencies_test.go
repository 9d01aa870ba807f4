package validate

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/devkafka"
	"github.com/taskfn/taskfn/shared/devkafka/kafkatest"
	"github.com/taskfn/taskfn/shared/pgtest"
)

// TestEndToEndWithRedisAndKafka is the task routes behind the real nginx
// with the cache and the events live, as in a cluster where both are up
// (TestEndToEnd runs them down): the functions on the local Redis, under a
// key prefix of their own, and on an embedded Kafka-protocol broker. A
// read after a read is a cache hit, a read after a write sees the write,
// the rate limits answer with their RateLimit field, and every write's
// events reach the topic right after commit, in order, with none left in
// the outbox for the relay.
func TestEndToEndWithRedisAndKafka(t *testing.T) {
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
	bins := buildFunctions(t, append(slices.Clone(fns), "migrate"))
	dbURL := pgtest.NewEmpty(t)
	iss := authtest.NewIssuer(t)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "e2e.tasks." + run
	broker, err := devkafka.Start(devkafka.Config{Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broker.Close() })
	prefix := "taskfn-e2e:" + run + ":"
	env := clusterEnv(t, map[string]string{
		"DATABASE_URL":          dbURL,
		"DATABASE_READ_URL":     "",
		"OIDC_ISSUER":           iss.URL(),
		"OIDC_AUDIENCE":         authtest.Audience,
		"KAFKA_BROKERS":         broker.Addr(),
		"KAFKA_TASKS_TOPIC":     topic,
		"REDIS_URL":             "redis://127.0.0.1:6379/0",
		"CACHE_KEY_PREFIX":      prefix,
		"RATE_LIMIT_KEY_PREFIX": prefix,
		"SMTP_ADDR":             "",
		"SMTP_USERNAME":         "",
		"SMTP_PASSWORD":         "",
		"WEBHOOK_SECRET_KEY":    e2eWebhookKey,
		// ingest-events, routed, is also a sink: the ConfigMap's files are
		// projected only in a pod.
		"SINK_OIDC_CA_FILE":    "",
		"SINK_OIDC_TOKEN_FILE": "",
	})
	migrateOnce(t, bins["migrate"], env)
	procs, gw := startBehindGateway(t, fns, bins, env)
	carol := http.Header{"Authorization": {"Bearer " + iss.Token(t, "carol", auth.RoleMember)}}
	send := func(method, path, body string, status int, extra ...string) (map[string]any, http.Header) {
		t.Helper()
		h := carol.Clone()
		if body != "" {
			h.Set("Content-Type", "application/merge-patch+json")
			if method == http.MethodPost {
				h.Set("Content-Type", "application/json")
			}
		}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		resp := do(t, method, gw.url+path, rd, h)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != status {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, status, b)
		}
		var v map[string]any
		if len(b) > 0 {
			_ = json.Unmarshal(b, &v)
		}
		return v, resp.Header
	}

	created, h := send(http.MethodPost, "/tasks", `{"title":"Cache and events, live"}`, http.StatusCreated)
	id, _ := created["id"].(string)
	if id == "" {
		t.Fatalf("created %v", created)
	}
	// With Redis up, the limiter answers with the caller's remaining quota.
	if !strings.HasPrefix(h.Get("RateLimit"), `"writes";r=`) || !strings.HasPrefix(h.Get("RateLimit-Policy"), `"writes";q=`) {
		t.Errorf("create: RateLimit %q, RateLimit-Policy %q, want the writes class", h.Get("RateLimit"), h.Get("RateLimit-Policy"))
	}
	send(http.MethodGet, "/tasks/"+id, "", http.StatusOK)
	got, _ := send(http.MethodGet, "/tasks/"+id, "", http.StatusOK)
	if got["version"] != float64(1) {
		t.Errorf("second read: %v", got)
	}
	if hits := metricValue(t, procs["get-task"], cacheHits); hits < 1 {
		t.Errorf("get-task counted %v cache hits after reading the same task twice, want at least 1", hits)
	}
	send(http.MethodPatch, "/tasks/"+id, `{"status":"in_progress"}`, http.StatusOK, "If-Match", `"1"`)
	got, _ = send(http.MethodGet, "/tasks/"+id, "", http.StatusOK)
	if got["version"] != float64(2) || got["status"] != "in_progress" {
		t.Errorf("read after the write: %v, want version 2, in_progress", got)
	}
	send(http.MethodDelete, "/tasks/"+id, "", http.StatusNoContent)
	send(http.MethodGet, "/tasks/"+id, "", http.StatusNotFound)

	// The events, in order on the task's partition, published right after
	// commit: the outbox holds none for the relay.
	want := []string{"dev.taskfn.task.created.v1", "dev.taskfn.task.updated.v1", "dev.taskfn.task.status_changed.v1", "dev.taskfn.task.trashed.v1"}
	var types []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		types = types[:0]
		for _, m := range kafkatest.Records(t, broker.Brokers(), topic) {
			if string(m.Key) == id {
				types = append(types, kafkatest.Headers(m)["ce_type"])
			}
		}
		if len(types) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !slices.Equal(types, want) {
		t.Errorf("events of %s on %s: %v, want %v", id, topic, types, want)
	}
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var pending int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending != 0 {
		t.Errorf("%d events still in the outbox: the writers did not publish after commit", pending)
	}
}

var cacheHits = regexp.MustCompile(`(?m)^taskfn_cache_requests_total\{cache="[^"]*",result="hit"\} ([0-9.e+]+)$`)

// metricValue reads one series of p's /metrics, 0 when it is not there.
func metricValue(t *testing.T, p *process, series *regexp.Regexp) float64 {
	t.Helper()
	resp := do(t, http.MethodGet, "http://"+p.addr+"/metrics", nil, nil)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	m := series.FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("%s: %v", series, err)
	}
	return v
}
