package worker

import (
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Defaults for Config.
const (
	// DefaultConcurrency is one writer: while it commits, the next
	// requests queue and its next transaction takes them all. Under load
	// on two cores, two writers halved the average batch (18 requests
	// against 35) and cost about a sixth more machine CPU per applied
	// request (docs/performance-log.md); a faster database or several worker
	// processes may want more.
	DefaultConcurrency = 1
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

// Config tunes a worker. Zero fields take DefaultConfig's values. What the
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

// DefaultConfig returns the worker's defaults. New fills a zero field of
// its Config from it. MaxMerge stays zero, which New reads as
// DefaultMaxMerge or the consumer's batch size, whichever is larger.
func DefaultConfig() Config {
	return Config{
		Concurrency:    DefaultConcurrency,
		ExpireInterval: DefaultExpireInterval,
		ExpireBatch:    DefaultExpireBatch,
	}
}

// Validate reports whether c, with its zero fields taking the defaults, is
// a worker New accepts with a consumer of batch size 1; New checks
// MaxMerge against the real batch size.
func (c Config) Validate() error {
	_, err := c.withDefaults(1)
	return err
}

func (c Config) withDefaults(batchSize int) (Config, error) {
	d := DefaultConfig()
	if c.Concurrency == 0 {
		c.Concurrency = d.Concurrency
	}
	if c.MaxMerge == 0 {
		c.MaxMerge = max(DefaultMaxMerge, batchSize)
	}
	if c.ExpireInterval == 0 {
		c.ExpireInterval = d.ExpireInterval
	}
	if c.ExpireBatch == 0 {
		c.ExpireBatch = d.ExpireBatch
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
