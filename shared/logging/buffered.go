package logging

import (
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Buffered holds log lines below warn level in memory and writes them in
// batches: when the buffer fills, every interval, and before any warn or
// error line, which goes out at once. One access-log write per request was
// a system call per request (and, into a container's log pipe, a wake-up
// of its reader); batched, it is one per many. The price is the info lines
// of the last interval if the process dies without Close, as with nginx's
// buffered access_log.
type Buffered struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte // never grown: its capacity is the batch size
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// NewBuffered returns a Buffered writing to w, holding up to size bytes and
// flushing every interval. Close it to stop its flusher and write the rest.
func NewBuffered(w io.Writer, size int, interval time.Duration) *Buffered {
	b := &Buffered{w: w, buf: make([]byte, 0, size), stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushEvery(interval)
	return b
}

func (b *Buffered) flushEvery(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = b.Flush()
		case <-b.stop:
			return
		}
	}
}

// Write buffers p, a whole line as zerolog writes it.
func (b *Buffered) Write(p []byte) (int, error) {
	return b.WriteLevel(zerolog.InfoLevel, p)
}

// WriteLevel buffers p, or writes it at once, after what is buffered, when
// it is a warning or worse, or when Buffered is closed.
func (b *Buffered) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Closed or urgent lines go straight out, after what waits.
	direct := b.closed || (level >= zerolog.WarnLevel && level != zerolog.NoLevel)
	if direct || len(b.buf)+len(p) > cap(b.buf) {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		if direct || len(p) > cap(b.buf) {
			return b.w.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// Flush writes what is buffered.
func (b *Buffered) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

// flushLocked empties the buffer even when the write fails: a log sink
// that refuses lines must not make the process hold ever more of them.
func (b *Buffered) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// Close stops the periodic flush and writes what is buffered; later lines
// are written as they come.
func (b *Buffered) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	<-b.done
	return b.Flush()
}
