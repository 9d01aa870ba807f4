// Package cachetest gives tests a real Redis for the task cache: a key
// prefix of their own on the shared server (TEST_REDIS_URL, by default
// redis://127.0.0.1:6379/0), or a redis-server process of their own that
// they may kill, restart, pause or fill.
package cachetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskfn/taskfn/shared/cache"
)

const defaultURL = "redis://127.0.0.1:6379/0"

// Config is a cache configuration for tests against url ("" for the
// shared server) under a fresh key prefix. The TTLs are the production
// defaults; tests shorten what they measure.
func Config(t testing.TB, url string) cache.Config {
	t.Helper()
	if url == "" {
		url = os.Getenv("TEST_REDIS_URL")
	}
	if url == "" {
		url = defaultURL
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return cache.Config{
		Enabled:        true,
		RedisURL:       url,
		KeyPrefix:      "taskfn-test:" + hex.EncodeToString(b) + ":",
		TTL:            5 * time.Minute,
		TTLJitter:      0.1,
		NegativeTTL:    5 * time.Second,
		TombstoneTTL:   time.Minute,
		PrimaryWindow:  10 * time.Second,
		LoadTimeout:    5 * time.Second,
		RepairInterval: 50 * time.Millisecond,
		// Generous: -race and parallel test packages slow Redis calls down.
		Timeout:         250 * time.Millisecond,
		PoolSize:        8,
		BreakerFailures: 5,
		BreakerCooldown: 500 * time.Millisecond,
		BreakerProbes:   1,
	}
}

// Cleanup deletes every key under cfg's prefix when t ends.
func Cleanup(t testing.TB, cfg cache.Config) {
	t.Helper()
	rdb := Client(t, cfg.RedisURL)
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, cfg.KeyPrefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
}

// Client is a plain client on url, closed when t ends.
func Client(t testing.TB, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// Server is a redis-server process of one test's own.
type Server struct {
	t      testing.TB
	Port   int
	dir    string // working directory, kept across restarts for persistence files
	args   []string
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// StartServer runs redis-server on a free loopback port with no
// persistence, plus args (e.g. "--maxmemory", "2mb"), and stops it when t
// ends.
func StartServer(t testing.TB, args ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("cachetest: redis-server is not installed (apt-get install redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	s := &Server{t: t, Port: port, dir: t.TempDir(), args: args}
	s.Start()
	t.Cleanup(func() {
		if s.cmd != nil {
			s.stop()
		}
	})
	return s
}

// URL is the server's address as a REDIS_URL.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port) }

// Start starts the server on its port (again, after Kill, with the same
// working directory) and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	args := append([]string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""}, s.args...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.cmd = exec.Command("redis-server", args...)
		s.cmd.Dir = s.dir
		if err := s.cmd.Start(); err != nil {
			s.t.Fatal(err)
		}
		s.exited = make(chan struct{})
		go func(cmd *exec.Cmd, exited chan struct{}) {
			_ = cmd.Wait()
			close(exited)
		}(s.cmd, s.exited)
		err := waitPing(s.URL(), s.exited, 5*time.Second)
		if err == nil {
			return
		}
		// The port may still be held by the process just killed.
		s.stop()
		if time.Now().After(deadline) {
			s.t.Fatalf("cachetest: redis-server on port %d: %v", s.Port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill ends the server with SIGKILL, as a crash would.
func (s *Server) Kill() {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatal("cachetest: Kill of a server that is not running")
	}
	s.stop()
}

// Freeze stops the server's process (SIGSTOP) and returns once it is
// stopped: connections still complete in the kernel's backlog, nothing is
// answered, until Thaw. It is the stall of a busy event loop (DEBUG SLEEP,
// a long fork, a swapping host) with an end the test decides, not a clock.
func (s *Server) Freeze() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP, 'T')
}

// Thaw resumes a frozen server (SIGCONT) and returns once it runs.
func (s *Server) Thaw() {
	s.t.Helper()
	s.signal(syscall.SIGCONT, 0)
}

// signal sends sig and, if state is set, waits until the process is in
// that state as /proc shows it (T: stopped); 0 waits until it is in any
// other.
func (s *Server) signal(sig syscall.Signal, state byte) {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatalf("cachetest: %v to a server that is not running", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
	stat := fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(stat)
		if err != nil {
			return // no /proc: the signal is on its way, which must do
		}
		// "pid (comm) S ...": the state follows the last ')'.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
			if st := b[i+2]; (state != 0 && st == state) || (state == 0 && st != 'T') {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("cachetest: redis-server did not take %v: %s", sig, b)
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *Server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

func waitPing(url string, exited <-chan struct{}, within time.Duration) error {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("exited at start")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err = rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no answer within %s: %v", within, err)
}
