package validate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
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
	"testing"
	"time"

	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// routes is every method and path the gateway serves and the function
// behind each. A new HTTP function adds its entries here, beside its
// manifest in knative/ and its location in gateway.conf.template;
// TestGatewayRoutes then checks the three agree.
var routes = []struct{ method, path, fn string }{
	{http.MethodPost, "/tasks", "create-task"},
	{http.MethodGet, "/tasks", "list-tasks"},
	{http.MethodPatch, "/tasks", "update-tasks"},
	{http.MethodGet, "/tasks/{id}", "get-task"},
	{http.MethodPatch, "/tasks/{id}", "update-task"},
	{http.MethodDelete, "/tasks/{id}", "delete-task"},
	// Not get-task: the longer path has its own location.
	{http.MethodGet, "/tasks/{id}/activity", "list-task-activity"},
	{http.MethodPost, "/tasks/{id}/restore", "restore-task"},
	{http.MethodGet, "/trash", "list-trash"},
	{http.MethodDelete, "/trash/{id}", "purge-task"},
	{http.MethodGet, "/tasks/{id}/relations", "list-relations"},
	{http.MethodPost, "/tasks/{id}/relations", "create-relation"},
	{http.MethodDelete, "/tasks/{id}/relations/{kind}/{other}", "delete-relation"},
	{http.MethodGet, "/tasks/{id}/comments", "list-comments"},
	{http.MethodPost, "/tasks/{id}/comments", "create-comment"},
	{http.MethodPatch, "/comments/{id}", "update-comment"},
	{http.MethodDelete, "/comments/{id}", "delete-comment"},
	{http.MethodGet, "/notifications", "list-notifications"},
	{http.MethodPost, "/notifications/{id}/read", "read-notification"},
	{http.MethodPost, "/reports", "request-report"},
	{http.MethodGet, "/reports/{id}", "get-report"},
	// Not get-report: the longer path has its own location.
	{http.MethodGet, "/reports/{id}/content", "get-report-content"},
	{http.MethodPost, "/projects", "create-project"},
	{http.MethodGet, "/projects", "list-projects"},
	{http.MethodGet, "/projects/{key}", "get-project"},
	{http.MethodPatch, "/projects/{key}", "update-project"},
	{http.MethodDelete, "/projects/{key}", "delete-project"},
	// Not get-project: the longer paths have locations of their own.
	{http.MethodGet, "/projects/{key}/members", "list-project-members"},
	{http.MethodPut, "/projects/{key}/members/{subject}", "put-project-member"},
	{http.MethodDelete, "/projects/{key}/members/{subject}", "delete-project-member"},
	{http.MethodPost, "/projects/{key}/fields", "create-field"},
	{http.MethodGet, "/projects/{key}/fields", "list-fields"},
	{http.MethodGet, "/projects/{key}/fields/{id}", "get-field"},
	{http.MethodPatch, "/projects/{key}/fields/{id}", "update-field"},
	{http.MethodDelete, "/projects/{key}/fields/{id}", "delete-field"},
	{http.MethodPost, "/webhooks", "create-webhook"},
	{http.MethodGet, "/webhooks", "list-webhooks"},
	{http.MethodGet, "/webhooks/{id}", "get-webhook"},
	{http.MethodPatch, "/webhooks/{id}", "update-webhook"},
	{http.MethodDelete, "/webhooks/{id}", "delete-webhook"},
	// Not get-webhook: the longer paths have locations of their own.
	{http.MethodGet, "/webhooks/{id}/deliveries", "list-webhook-deliveries"},
	{http.MethodPost, "/webhooks/{id}/deliveries/{delivery}/redeliver", "redeliver-webhook"},
	{http.MethodPost, "/events", "ingest-events"},
	{http.MethodPost, "/events/alertmanager", "ingest-events"},
	{http.MethodGet, "/me/preferences", "get-preferences"},
	{http.MethodPut, "/me/preferences", "put-preferences"},
}

const gatewayTemplate = "knative/gateway/gateway.conf.template"

// lookTool finds a tool the checks run: on PATH, else in the sbin
// directories a non-root PATH lacks. Missing, it fails the test in CI
// (where .ci/run installs it) and skips it elsewhere.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found: .ci/run installs it", name)
	}
	t.Skipf("%s not found (apt-get install %s, or run .ci/run)", name, map[string]string{"nginx": "nginx", "promtool": "prometheus"}[name])
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

var upstreamBlock = regexp.MustCompile(`(?s)\n# BEGIN upstreams.*?\n# END upstreams\n`)

// renderGateway renders the template as the nginx image's entrypoint does
// (only the listed ${NAME}s), listening on listen and health. With
// upstreams, the cluster-DNS map is replaced by those loopback addresses;
// a function not listed goes to a closed port (502).
func renderGateway(t *testing.T, upstreams map[string]string, listen, health string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, gatewayTemplate))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for name, v := range map[string]string{
		"NGINX_LOCAL_RESOLVERS": "127.0.0.1",
		"POD_NAMESPACE":         "taskfn",
		"CLUSTER_DOMAIN":        "cluster.local",
	} {
		if !strings.Contains(s, "${"+name+"}") {
			t.Fatalf("%s: ${%s} not found", gatewayTemplate, name)
		}
		s = strings.ReplaceAll(s, "${"+name+"}", v)
	}
	for from, to := range map[string]string{"listen 8080;": "listen " + listen + ";", "listen 8081;": "listen " + health + ";"} {
		if strings.Count(s, from) != 1 {
			t.Fatalf("%s: want exactly one %q", gatewayTemplate, from)
		}
		s = strings.Replace(s, from, to, 1)
	}
	if upstreams != nil {
		if !upstreamBlock.MatchString(s) {
			t.Fatalf("%s: the BEGIN/END upstreams block is missing", gatewayTemplate)
		}
		var m strings.Builder
		m.WriteString("\nmap $fn $fn_upstream {\n    default 127.0.0.1:1;\n")
		for fn, addr := range upstreams {
			fmt.Fprintf(&m, "    %s %s;\n", fn, addr)
		}
		m.WriteString("}\n")
		s = upstreamBlock.ReplaceAllLiteralString(s, m.String())
	}
	return s
}

// writeNginxConf puts the rendered gateway into a minimal nginx.conf under
// dir, with every path nginx writes kept inside dir (FACTS: no /etc/nginx
// needed, works as root).
func writeNginxConf(t *testing.T, dir, gateway string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "gateway.conf"), []byte(gateway), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    client_body_temp_path %[1]s/client_temp;
    proxy_temp_path %[1]s/proxy_temp;
    fastcgi_temp_path %[1]s/fastcgi_temp;
    uwsgi_temp_path %[1]s/uwsgi_temp;
    scgi_temp_path %[1]s/scgi_temp;
    include %[1]s/gateway.conf;
}
`, dir)
	p := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// nginxDir is a scratch prefix the worker user (nobody, when run as root)
// can use too.
func nginxDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestGatewayConfigNginxT(t *testing.T) {
	nginx := lookTool(t, "nginx")
	dir := nginxDir(t)
	// Rendered as in the cluster: upstreams by cluster DNS name, which
	// nginx -t must accept without resolving them.
	conf := writeNginxConf(t, dir, renderGateway(t, nil, "127.0.0.1:8080", "127.0.0.1:8081"))
	out, err := exec.Command(nginx, "-t", "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log")).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	t.Logf("nginx -t: %s", bytes.TrimSpace(out))
}

// syncBuffer collects a process's output while tests read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// gateway is a running nginx.
type gateway struct {
	url  string
	logs *syncBuffer // stdout: the JSON access log
}

// startGateway runs nginx in the foreground with upstreams and stops it
// when t ends.
func startGateway(t *testing.T, upstreams map[string]string) *gateway {
	t.Helper()
	nginx := lookTool(t, "nginx")
	dir := nginxDir(t)
	listen, health := freeAddr(t), freeAddr(t)
	conf := writeNginxConf(t, dir, renderGateway(t, upstreams, listen, health))
	g := &gateway{url: "http://" + listen, logs: &syncBuffer{}}
	var stderr syncBuffer
	cmd := exec.Command(nginx, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = g.logs, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt) // nginx: fast shutdown
		_ = cmd.Wait()
		if t.Failed() {
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx stderr:\n%s\nnginx error.log:\n%s", stderr.String(), errLog)
		}
	})
	waitHTTP(t, "http://"+health+"/healthz", 10*time.Second)
	return g
}

// waitHTTP polls url until it answers 200, and returns how long that took.
func waitHTTP(t *testing.T, url string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c := &http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: no 200 within %s (last error %v)", url, limit, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// problem is the RFC 9457 body both nginx and the functions answer with.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// readProblem checks resp is a problem+json of status and returns it.
func readProblem(t *testing.T, resp *http.Response, status int) problem {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s %s: Content-Type %q, want application/problem+json", resp.Request.Method, resp.Request.URL.Path, ct)
	}
	var p problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v: %s", resp.Request.Method, resp.Request.URL.Path, err, body)
	}
	if p.Status != status || !strings.HasPrefix(p.Type, "https://taskfn.dev/problems/") || p.Title == "" {
		t.Errorf("%s %s: problem %+v", resp.Request.Method, resp.Request.URL.Path, p)
	}
	return p
}

func do(t *testing.T, method, url string, body io.Reader, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}

// gatewayFunctions returns the functions the template routes to.
func gatewayFunctions(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, gatewayTemplate))
	if err != nil {
		t.Fatal(err)
	}
	var fns []string
	for _, m := range regexp.MustCompile(`set \$fn ([a-z0-9-]+);`).FindAllStringSubmatch(string(b), -1) {
		if !slices.Contains(fns, m[1]) {
			fns = append(fns, m[1])
		}
	}
	sort.Strings(fns)
	return fns
}

// TestGatewayRoutes puts a stub in place of each function and checks that
// every route reaches its function with method, path, query and headers
// intact; that other methods get 405 with the right Allow; and that the
// route table, the template and the Knative Services agree.
func TestGatewayRoutes(t *testing.T) {
	var tableFns []string
	allow := map[string][]string{} // path → methods
	for _, r := range routes {
		if !slices.Contains(tableFns, r.fn) {
			tableFns = append(tableFns, r.fn)
		}
		allow[r.path] = append(allow[r.path], r.method)
	}
	sort.Strings(tableFns)
	if got := gatewayFunctions(t); !slices.Equal(got, tableFns) {
		t.Errorf("the gateway routes to %v, the route table names %v", got, tableFns)
	}
	services := map[string]bool{}
	for _, d := range loadManifests(t, applyDirs...) {
		if s, ok := d.obj.(*servingv1.Service); ok {
			services[s.Name] = true
		}
	}
	for _, fn := range tableFns {
		if !services[fn] {
			t.Errorf("route to %s, but no Knative Service %s in knative/", fn, fn)
		}
	}

	type hit struct{ fn, method, uri, requestID, forwardedFor string }
	hits := make(chan hit, 1)
	upstreams := map[string]string{}
	for _, fn := range tableFns {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits <- hit{fn, r.Method, r.RequestURI, r.Header.Get("X-Request-Id"), r.Header.Get("X-Forwarded-For")}
			w.Header().Set("X-Request-Id", r.Header.Get("X-Request-Id")) // as the functions echo it
			w.WriteHeader(http.StatusTeapot)
		}))
		t.Cleanup(srv.Close)
		upstreams[fn] = strings.TrimPrefix(srv.URL, "http://")
	}
	gw := startGateway(t, upstreams)

	concrete := func(path string) string {
		return strings.NewReplacer("{id}", "0f8c1f3e-6b51-4b8e-9a51-0c2d4f1e2a10", "{key}", "web-team", "{subject}", "6f1c2b4e-8d3a-4c5e", "{kind}", "blocks", "{other}", "0f8c1f3e-6b51-4b8e-9a51-0c2d4f1e2a11", "{delivery}", "0f8c1f3e-6b51-4b8e-9a51-0c2d4f1e2a12").Replace(path)
	}
	for _, r := range routes {
		uri := concrete(r.path) + "?limit=5&status=todo,done"
		// With a token, as clients send: only requests without one are
		// held to the gateway's per-address limit, which this many routes
		// in a row would pass.
		resp := do(t, r.method, gw.url+uri, strings.NewReader("{}"), http.Header{"X-Request-Id": {"route-test-1"}, "Authorization": {"Bearer route-test"}})
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot {
			t.Errorf("%s %s: status %d, want the stub's 418", r.method, uri, resp.StatusCode)
			continue
		}
		h := <-hits
		want := hit{r.fn, r.method, uri, "route-test-1", "127.0.0.1"}
		if h != want {
			t.Errorf("%s %s reached %+v, want %+v", r.method, uri, h, want)
		}
		if ids := resp.Header.Values("X-Request-Id"); len(ids) != 1 || ids[0] != "route-test-1" {
			t.Errorf("%s %s: X-Request-Id %q, want it once", r.method, uri, ids)
		}
	}

	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
	for path, allowed := range allow {
		sort.Strings(allowed)
		for _, m := range methods {
			if slices.Contains(allowed, m) {
				continue
			}
			resp := do(t, m, gw.url+concrete(path), nil, nil)
			p := readProblem(t, resp, http.StatusMethodNotAllowed)
			if p.Type != "https://taskfn.dev/problems/method-not-allowed" {
				t.Errorf("%s %s: type %s", m, path, p.Type)
			}
			got := strings.Split(strings.ReplaceAll(resp.Header.Get("Allow"), " ", ""), ",")
			sort.Strings(got)
			if !slices.Equal(got, allowed) {
				t.Errorf("%s %s: Allow %v, want %v", m, path, got, allowed)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Errorf("%s %s: no X-Request-Id on the gateway's own answer", m, path)
			}
		}
	}

	for _, path := range []string{"/", "/task", "/tasks/", "/tasks/a/b", "/healthz", "/metrics",
		"/notifications/", "/notifications/a", "/notifications/a/read/x", "/reports/", "/reports/a/b", "/reports/a/content/x"} {
		p := readProblem(t, do(t, http.MethodGet, gw.url+path, nil, nil), http.StatusNotFound)
		if p.Type != "https://taskfn.dev/problems/not-found" {
			t.Errorf("GET %s: type %s", path, p.Type)
		}
	}
	select {
	case h := <-hits:
		t.Errorf("a request the gateway should have answered itself reached %+v", h)
	default:
	}
}
