//go:build faults

package faults_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bins holds the function binaries TestMain built, by name; binsErr why
// they are missing.
var (
	bins    = map[string]string{}
	binsErr error
)

var functionNames = []string{"create-task", "update-task", "get-task"}

// TestMain builds the real functions once for every test, as make build
// does; a failure fails each test with the reason.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "taskfn-faults-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binsErr = build(dir)
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func build(dir string) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	args := []string{"build", "-trimpath", "-o", dir + "/"}
	for _, n := range functionNames {
		args = append(args, "./functions/"+n)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the functions: %v\n%s", err, b)
	}
	for _, n := range functionNames {
		bins[n] = filepath.Join(dir, n)
	}
	return nil
}

// function is a function binary running as a process on a fixed loopback
// port, which it keeps across restarts.
type function struct {
	t    testing.TB
	name string
	env  []string
	url  string
	log  *os.File

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// startFunction runs the function name with env on a free port and waits
// until /readyz answers 200; it is stopped with SIGTERM when the test ends.
func startFunction(t testing.TB, name string, env []string) *function {
	t.Helper()
	if binsErr != nil {
		t.Fatal(binsErr)
	}
	port := freePort(t)
	f := &function{
		t: t, name: name, log: openLog(t, name+".log"),
		env: append(append(os.Environ(), env...), "PORT="+strconv.Itoa(port)),
		url: "http://127.0.0.1:" + strconv.Itoa(port),
	}
	t.Cleanup(f.terminate)
	f.start()
	return f
}

// start runs the process and waits until it is ready.
func (f *function) start() {
	f.t.Helper()
	cmd := exec.Command(bins[f.name])
	cmd.Env = f.env
	cmd.Stdout, cmd.Stderr = f.log, f.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	f.mu.Lock()
	f.cmd, f.exited = cmd, exited
	f.starts++
	f.mu.Unlock()

	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(f.url + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			f.t.Fatalf("%s exited at start:\n%s", f.name, tail(f.log.Name(), 20))
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s not ready after 30s:\n%s", f.name, tail(f.log.Name(), 20))
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (f *function) kill() {
	f.mu.Lock()
	cmd, exited := f.cmd, f.exited
	f.mu.Unlock()
	_ = cmd.Process.Kill()
	<-exited
}

// pid is the running process's id and how many processes have run.
func (f *function) pid() (pid, starts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cmd.Process.Pid, f.starts
}

// alive reports whether the process started last still runs.
func (f *function) alive() bool {
	f.mu.Lock()
	exited := f.exited
	f.mu.Unlock()
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// terminate stops the process as Knative does (SIGTERM, then drain).
func (f *function) terminate() {
	f.mu.Lock()
	cmd, exited := f.cmd, f.exited
	f.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(25 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		f.t.Errorf("%s: still running 25s after SIGTERM", f.name)
	}
}

// errorLines are the log lines of level error a function wrote: the
// causes of its 500s.
func (f *function) errorLines() []string {
	b, _ := os.ReadFile(f.log.Name())
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, `"log.level":"error"`) {
			out = append(out, l)
		}
	}
	return out
}

// resolvedCommits counts the writes whose answer to COMMIT was lost and
// which InTx found committed by asking the server (pg.InTx logs each).
func (f *function) resolvedCommits() int {
	b, _ := os.ReadFile(f.log.Name())
	return strings.Count(string(b), "the server says it committed")
}
