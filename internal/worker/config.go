package worker

import (
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Defaults for Config.
const (
	DefaultConcurrency = 2
	// DefaultMaxMerge caps the requests of one ApplyBatch when writers merge
	// several partitions' batches: batches of several hundred random
	// accounts from concurrent writers queue behind each other's row locks,
	// so larger is not faster.
	DefaultMaxMerge = 1000
	// DefaultExpireInterval is how often due holds are looked for: a hold
	// outlives its timeout by at most about this long when nobody posts
	// or voids it (a post after the timeout is refused at once). A sweep
	// with nothing due is one indexed query.
	DefaultExpireInterval = time.Second
	// DefaultExpireBatch bounds the holds one sweep transaction expires, so
	// that it holds few senders' locks at a time; a sweep runs rounds
	// until one finds fewer.
	DefaultExpireBatch = 500
)

// Config tunes a worker. Zero fields take the defaults above. What the
// partitions' pulls need (batch size, ack wait, membership) is the
// consumer's (natsbus.ConsumerSettings).
type Config struct {
	// Concurrency is the number of writers: batches committed at once.
	Concurrency int
	// MaxMerge caps the requests a writer merges into one ApplyBatch; at
	// least the consumer's batch size.
	MaxMerge int
	// ExpireInterval is how often the worker expires due holds.
	ExpireInterval time.Duration
	// ExpireBatch is the most holds one expiry transaction releases.
	ExpireBatch int
	// TracerProvider, when set, traces every batch, and each request that
	// carries a trace context (see tracing.go). Nil: no spans, no cost.
	TracerProvider trace.TracerProvider
}

func (c Config) withDefaults(batchSize int) (Config, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Concurrency, DefaultConcurrency)
	def(&c.MaxMerge, max(DefaultMaxMerge, batchSize))
	def(&c.ExpireBatch, DefaultExpireBatch)
	if c.ExpireInterval == 0 {
		c.ExpireInterval = DefaultExpireInterval
	}
	bad := func(format string, args ...any) (Config, error) {
		return c, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.Concurrency < 1 || c.Concurrency > 64:
		return bad("concurrency %d, want 1..64", c.Concurrency)
	case c.MaxMerge < batchSize:
		return bad("max merge %d is below the batch size %d", c.MaxMerge, batchSize)
	case c.ExpireInterval < 10*time.Millisecond:
		return bad("expire interval %s, want at least 10ms", c.ExpireInterval)
	case c.ExpireBatch < 1 || c.ExpireBatch > 10000:
		return bad("expire batch %d, want 1..10000", c.ExpireBatch)
	}
	return c, nil
}
