package webhook

import (
	"fmt"
	"time"

	"github.com/taskfn/taskfn/shared/egress"
)

// Config is what the webhook routes, the sink and the retry tick read.
type Config struct {
	// SecretKey seals the signing secrets at rest (Sealer): 32 bytes,
	// base64, from the Kubernetes Secret. Required.
	SecretKey string `envconfig:"WEBHOOK_SECRET_KEY" secret:"true"`
	// InsecureLoopback permits plain http and loopback receivers: for the
	// dev runner and tests only, never in a cluster.
	InsecureLoopback bool `envconfig:"WEBHOOK_INSECURE_LOOPBACK" default:"false"`
	// Timeout bounds one attempt, connection to last byte.
	Timeout time.Duration `envconfig:"WEBHOOK_TIMEOUT" default:"10s"`
	// RetryBase and RetryMax shape the backoff: attempt n waits
	// RetryBase·2ⁿ⁻¹ capped at RetryMax, jittered to between half and all
	// of it; a Retry-After from the receiver, if longer, wins (up to
	// RetryMax).
	RetryBase time.Duration `envconfig:"WEBHOOK_RETRY_BASE" default:"10s"`
	RetryMax  time.Duration `envconfig:"WEBHOOK_RETRY_MAX" default:"1h"`
	// MaxAttempts: a delivery is given up on (failed) after this many.
	MaxAttempts int `envconfig:"WEBHOOK_MAX_ATTEMPTS" default:"15"`
	// DisableAfter consecutive failed attempts disable a webhook and tell
	// its owner.
	DisableAfter int `envconfig:"WEBHOOK_DISABLE_AFTER" default:"50"`
	// Concurrency bounds the attempts in flight in one process.
	Concurrency int `envconfig:"WEBHOOK_CONCURRENCY" default:"32"`
	// BatchSize is how many due deliveries a tick claims at once.
	BatchSize int `envconfig:"WEBHOOK_BATCH_SIZE" default:"200"`
	// Budget bounds a tick, below the PingSource's one-minute period.
	Budget time.Duration `envconfig:"WEBHOOK_BUDGET" default:"45s"`
	// SinkWait bounds how long the sink waits for the first attempts of
	// an event's deliveries before answering; what is not done by then is
	// left to the tick, so one slow receiver does not hold the topic.
	SinkWait time.Duration `envconfig:"WEBHOOK_SINK_WAIT" default:"2s"`
	// DeliveryRetention: the tick deletes deliveries finished (delivered,
	// failed, dropped) longer ago than this, a batch per tick.
	DeliveryRetention time.Duration `envconfig:"WEBHOOK_DELIVERY_RETENTION" default:"168h"`
}

// Policy is the egress policy of the configuration.
func (c Config) Policy() egress.Policy {
	return egress.Policy{AllowHTTP: c.InsecureLoopback, AllowLoopback: c.InsecureLoopback, Timeout: c.Timeout, MaxResponseBytes: 4 << 10}
}

// Validate checks the delivery settings.
func (c Config) Validate() error {
	if c.Timeout <= 0 || c.RetryBase <= 0 || c.RetryMax < c.RetryBase || c.MaxAttempts < 1 || c.DisableAfter < 1 ||
		c.Concurrency < 1 || c.BatchSize < 1 || c.BatchSize > 10_000 || c.Budget <= 0 || c.SinkWait < 0 || c.DeliveryRetention <= 0 {
		return fmt.Errorf("%w: WEBHOOK_TIMEOUT, WEBHOOK_RETRY_BASE, WEBHOOK_BUDGET must be positive, WEBHOOK_RETRY_MAX at least the base, "+
			"WEBHOOK_MAX_ATTEMPTS, WEBHOOK_DISABLE_AFTER, WEBHOOK_CONCURRENCY at least 1, WEBHOOK_BATCH_SIZE 1 to 10000, WEBHOOK_DELIVERY_RETENTION positive", ErrConfig)
	}
	return nil
}
