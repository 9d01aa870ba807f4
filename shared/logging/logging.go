// Package logging builds the zerolog logger every function uses: JSON lines
// with Elastic Common Schema field names, ready for Filebeat/ELK.
package logging

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/version"
)

// Config is the logging part of every function's configuration.
type Config struct {
	Level string `envconfig:"LOG_LEVEL" default:"info"`
	// FlushInterval batches lines below warn (the access log) for up to
	// this long, or 64 kB; 0 writes each line as it comes. See Buffered.
	FlushInterval time.Duration `envconfig:"LOG_FLUSH_INTERVAL" default:"1s"`
}

// bufferSize is how much Buffered holds before it writes: a few hundred
// access-log lines.
const bufferSize = 64 << 10

// Output returns what a function's logger should write to: w itself, or
// w behind a Buffered when cfg asks for one. flush writes what waits and
// stops the batching; run it after the last line that must not wait.
func Output(cfg Config, w io.Writer) (out io.Writer, flush func() error) {
	if cfg.FlushInterval <= 0 {
		return w, func() error { return nil }
	}
	b := NewBuffered(w, bufferSize, cfg.FlushInterval)
	return b, b.Close
}

var ecsOnce sync.Once

// useECS renames zerolog's fields to ECS. zerolog keeps them in package
// variables, so they are set once, before the first logger exists.
func useECS() {
	ecsOnce.Do(func() {
		zerolog.TimestampFieldName = "@timestamp"
		zerolog.LevelFieldName = "log.level"
		zerolog.MessageFieldName = "message"
		zerolog.ErrorFieldName = "error.message"
		zerolog.TimeFieldFormat = time.RFC3339Nano
		zerolog.DurationFieldUnit = time.Nanosecond
		zerolog.DurationFieldInteger = true
	})
}

// New returns the logger of one function (service.name = service).
func New(cfg Config, service string, w io.Writer) (zerolog.Logger, error) {
	useECS()
	level, err := zerolog.ParseLevel(cfg.Level)
	if err != nil || cfg.Level == "" {
		return zerolog.Nop(), fmt.Errorf("LOG_LEVEL %q: want trace, debug, info, warn or error", cfg.Level)
	}
	return zerolog.New(w).Level(level).With().
		Timestamp().
		Str("service.name", service).
		Str("service.version", version.Version).
		Str("ecs.version", "8.11").
		Logger(), nil
}
