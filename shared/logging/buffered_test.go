package logging

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// sink records each Write separately, safely for concurrent use.
type sink struct {
	mu     sync.Mutex
	writes []string
	err    error
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	s.writes = append(s.writes, string(p))
	return len(p), nil
}

func (s *sink) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.writes...)
}

func TestBuffered(t *testing.T) {
	t.Parallel()
	type write struct {
		level zerolog.Level
		line  string
	}
	tests := []struct {
		name   string
		size   int
		writes []write
		flush  bool
		want   []string // the sink's writes, in order
	}{
		{"info waits", 64, []write{{zerolog.InfoLevel, "a\n"}, {zerolog.InfoLevel, "b\n"}}, false, nil},
		{"flush writes the batch at once", 64, []write{{zerolog.InfoLevel, "a\n"}, {zerolog.DebugLevel, "b\n"}}, true, []string{"a\nb\n"}},
		{"warn goes out after what waited", 64, []write{{zerolog.InfoLevel, "a\n"}, {zerolog.WarnLevel, "w\n"}}, false, []string{"a\n", "w\n"}},
		{"error and fatal too", 64, []write{{zerolog.ErrorLevel, "e\n"}, {zerolog.FatalLevel, "f\n"}}, false, []string{"e\n", "f\n"}},
		{"a line without level waits", 64, []write{{zerolog.NoLevel, "n\n"}}, false, nil},
		{"a full buffer is written first", 4, []write{{zerolog.InfoLevel, "aa\n"}, {zerolog.InfoLevel, "bb\n"}}, false, []string{"aa\n"}},
		{"a line larger than the buffer goes straight out", 4, []write{{zerolog.InfoLevel, "a\n"}, {zerolog.InfoLevel, "large\n"}}, false, []string{"a\n", "large\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &sink{}
			b := NewBuffered(s, tt.size, time.Hour)
			defer b.Close()
			for _, w := range tt.writes {
				if n, err := b.WriteLevel(w.level, []byte(w.line)); err != nil || n != len(w.line) {
					t.Fatalf("WriteLevel(%q) = %d, %v", w.line, n, err)
				}
			}
			if tt.flush {
				if err := b.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			if got := s.got(); strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("writes %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBufferedFlushesEveryInterval(t *testing.T) {
	t.Parallel()
	s := &sink{}
	b := NewBuffered(s, 1<<10, 10*time.Millisecond)
	defer b.Close()
	if _, err := b.Write([]byte("a\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(s.got()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the line was not written within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := s.got(); len(got) != 1 || got[0] != "a\n" {
		t.Errorf("writes %q", got)
	}
}

func TestBufferedClose(t *testing.T) {
	t.Parallel()
	s := &sink{}
	b := NewBuffered(s, 1<<10, time.Hour)
	_, _ = b.Write([]byte("before\n"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.got(); len(got) != 1 || got[0] != "before\n" {
		t.Fatalf("Close wrote %q, want the buffered line", got)
	}
	// After Close nothing may wait: no flusher is left to write it.
	_, _ = b.Write([]byte("after\n"))
	if got := s.got(); len(got) != 2 || got[1] != "after\n" {
		t.Errorf("after Close: writes %q", got)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A sink that fails loses the batch rather than growing it forever, and
// says so.
func TestBufferedSinkError(t *testing.T) {
	t.Parallel()
	s := &sink{err: errors.New("disk full")}
	b := NewBuffered(s, 8, time.Hour)
	defer b.Close()
	_, _ = b.Write([]byte("aaaa\n"))
	if _, err := b.Write([]byte("bbbb\n")); err == nil {
		t.Error("no error from a write whose flush failed")
	}
	if len(b.buf) != 0 {
		t.Errorf("buffer holds %d bytes after a failed flush", len(b.buf))
	}
}

// Lines written from many goroutines through zerolog come out whole, each
// once, whatever the batching.
func TestBufferedConcurrentLines(t *testing.T) {
	t.Parallel()
	s := &sink{}
	b := NewBuffered(s, 512, time.Millisecond)
	log := zerolog.New(b)
	const workers, lines = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range lines {
				ev := log.Info()
				if i%50 == 0 {
					ev = log.Warn()
				}
				ev.Str("line", fmt.Sprintf("%d-%d", w, i)).Msg("x")
			}
		})
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	all := []byte(strings.Join(s.got(), ""))
	seen := map[string]bool{}
	for _, l := range bytes.Split(bytes.TrimSuffix(all, []byte("\n")), []byte("\n")) {
		if !bytes.HasPrefix(l, []byte(`{"level":`)) || !bytes.HasSuffix(l, []byte(`"message":"x"}`)) {
			t.Fatalf("torn line %q", l)
		}
		seen[string(l)] = true
	}
	if len(seen) != workers*lines {
		t.Errorf("%d distinct lines, want %d", len(seen), workers*lines)
	}
}
