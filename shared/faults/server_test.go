//go:build faults

package faults_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// A server is a daemon the test runs as a child process and stops and
// starts again at will: a PostgreSQL postmaster or a PgBouncer. Both refuse
// to run as root, so as root they run as the postgres user, from
// directories that user owns.
type server struct {
	t    testing.TB
	name string
	argv []string
	cred *syscall.Credential // nil: run as ourselves
	log  *os.File            // both outputs of every run, appended
	addr string              // host:port it listens on
	// ready says whether the server accepts work.
	ready func(ctx context.Context) error

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// start runs the server and returns once ready answers, or fails the test.
// It returns when the server accepted its first connection: the moment
// "back" in the figures.
func (s *server) start() time.Time {
	s.t.Helper()
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// If this test binary dies, the server goes too (SIGQUIT: a
	// postmaster's immediate shutdown; it ends a PgBouncer as well).
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("%s: %v", s.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := s.ready(ctx)
		cancel()
		if err == nil {
			return time.Now()
		}
		select {
		case <-exited:
			s.t.Fatalf("%s exited at start:\n%s", s.name, tail(s.log.Name(), 20))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s not ready on %s after 30s (%v):\n%s", s.name, s.addr, err, tail(s.log.Name(), 20))
		}
	}
}

// stop sends sig and waits for the server to exit; it is killed after 30 s.
func (s *server) stop(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		s.t.Errorf("%s: still running 30s after %v, killed", s.name, sig)
	}
	s.mu.Lock()
	s.cmd = nil
	s.mu.Unlock()
}

// postgres is a PostgreSQL instance of the test's own.
type postgres struct {
	*server
	dir  string // owned by the server's user; the data directory is dir/data
	port int
}

// startPostgres initialises a cluster in a fresh directory (initdb, trust
// authentication, loopback only), starts it on a free port and stops it
// and removes the directory when the test ends.
func startPostgres(t testing.TB) *postgres {
	t.Helper()
	bin, err := postgresBin()
	if err != nil {
		t.Fatal(err)
	}
	cred, err := serverUser()
	if err != nil {
		t.Fatal(err)
	}
	dir := ownedTempDir(t, cred, "taskfn-faults-pg-")
	logs := openLog(t, "postgres.log")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"),
		"-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Stdout, initdb.Stderr = logs, logs
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := initdb.Run(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, tail(logs.Name(), 20))
	}
	port := freePort(t)
	p := &postgres{dir: dir, port: port}
	p.server = &server{
		t: t, name: "postgres", cred: cred, log: logs, addr: "127.0.0.1:" + strconv.Itoa(port),
		argv: []string{filepath.Join(bin, "postgres"), "-D", filepath.Join(dir, "data"),
			"-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir,
			"-c", "max_connections=100", "-c", "log_min_messages=warning", "-c", "log_connections=off"},
		ready: func(ctx context.Context) error { return ping(ctx, p.URL("postgres")) },
	}
	// Fast shutdown at the end, as pg_ctl stop -m fast; Cleanup runs this
	// before ownedTempDir's removal.
	t.Cleanup(func() { p.stop(syscall.SIGINT) })
	p.start()
	return p
}

// URL is a connection URL for database db, directly on the server.
func (p *postgres) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

// restart stops the server with a fast shutdown (SIGINT, as pg_ctl stop -m
// fast: sessions are terminated, open transactions rolled back, a
// checkpoint written), waits down, and starts it again. It returns when
// the stop began and when the server accepted connections again.
func (p *postgres) restart(down time.Duration) (stopped, back time.Time) {
	stopped = time.Now()
	p.stop(syscall.SIGINT)
	time.Sleep(down)
	return stopped, p.start()
}

// bouncer is a PgBouncer of the test's own in transaction pooling mode,
// in front of a postgres.
type bouncer struct {
	*server
	port int
}

// startBouncer runs PgBouncer in front of pg with the settings production
// uses (transaction pooling, statement_timeout refused as a startup
// parameter) and stops it when the test ends.
func startBouncer(t testing.TB, pg *postgres) *bouncer {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/pgbouncer"); serr != nil {
			t.Fatal("pgbouncer not found (on PATH or /usr/sbin): install Debian's pgbouncer (.ci/run does)")
		}
		bin = "/usr/sbin/pgbouncer"
	}
	cred, err := serverUser()
	if err != nil {
		t.Fatal(err)
	}
	dir := ownedTempDir(t, cred, "taskfn-faults-bouncer-")
	port := freePort(t)
	ini := fmt.Sprintf(`[databases]
* = host=127.0.0.1 port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
pool_mode = transaction
auth_type = trust
auth_file = %s/userlist.txt
max_client_conn = 500
default_pool_size = 10
ignore_startup_parameters =
logfile =
pidfile =
`, pg.port, port, dir)
	for name, content := range map[string]string{"pgbouncer.ini": ini, "userlist.txt": `"postgres" ""` + "\n"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if cred != nil {
			if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// As root it runs as postgres through the credential rather than its
	// own -u: a process that changes its user itself loses Pdeathsig.
	argv := []string{bin, filepath.Join(dir, "pgbouncer.ini")}
	b := &bouncer{port: port}
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	b.server = &server{
		t: t, name: "pgbouncer", cred: cred, log: openLog(t, "pgbouncer.log"), addr: "127.0.0.1:" + strconv.Itoa(port), argv: argv,
		ready: func(ctx context.Context) error { return ping(ctx, url) },
	}
	t.Cleanup(func() { b.stop(syscall.SIGTERM) })
	b.start()
	return b
}

// URL is a connection URL for database db through the PgBouncer.
func (b *bouncer) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", b.port, db)
}

// restart stops PgBouncer with sig (1.18: SIGINT is a safe shutdown that
// waits for transactions in progress, SIGTERM an immediate one that cuts
// them), waits down and starts it again.
func (b *bouncer) restart(sig syscall.Signal, down time.Duration) (stopped, back time.Time) {
	stopped = time.Now()
	b.stop(sig)
	time.Sleep(down)
	return stopped, b.start()
}

// ping connects to url and runs a statement, in simple protocol so it
// works through PgBouncer too.
func ping(ctx context.Context, url string) error {
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return err
	}
	cc.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	_, err = conn.Exec(ctx, "SELECT 1")
	return err
}

// postgresBin is the directory of initdb and postgres: initdb's on PATH
// (symbolic links resolved), else the newest /usr/lib/postgresql/*/bin,
// where Debian's packages put them.
func postgresBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var found []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			found = append(found, d)
		}
	}
	if len(found) == 0 {
		return "", errors.New("initdb not found (on PATH or in /usr/lib/postgresql/*/bin): install PostgreSQL's server package (.ci/run does)")
	}
	sort.Slice(found, func(i, j int) bool { return version(found[i]) < version(found[j]) })
	return found[len(found)-1], nil
}

// version is the major version in /usr/lib/postgresql/<version>/bin.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// serverUser is whom the servers run as: nil (ourselves) unless we are
// root, which initdb, postgres and pgbouncer all refuse; then postgres.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, the servers need the postgres user: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// ownedTempDir makes a directory the server's user owns, removed when the
// test ends. Not under t.TempDir: that one's parents are root's and closed
// to other users.
func ownedTempDir(t testing.TB, cred *syscall.Credential, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// openLog opens a log file in the test's log directory (kept on failure:
// see logDir), appending.
func openLog(t testing.TB, name string) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(logDir(t), name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

var logDirs sync.Map // test name → directory

// logDir is where a test's processes write their output: a directory
// removed when the test passes and kept, and named, when it fails.
func logDir(t testing.TB) string {
	if d, ok := logDirs.Load(t.Name()); ok {
		return d.(string)
	}
	dir, err := os.MkdirTemp("", "taskfn-faults-logs-")
	if err != nil {
		t.Fatal(err)
	}
	logDirs.Store(t.Name(), dir)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// tail is the last n lines of the file at path.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
