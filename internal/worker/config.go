package worker

import (
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/wallet/wallet/internal/natsbus"
)

// Defaults for Config.
const (
	// DefaultBatchSize bounds what each partition holds unacked. Every
	// partition's messages wait their turn for a writer, so the sum over
	// partitions must drain well within the ack wait: with 500 per
	// partition a backlog after a 15 s database outage was redelivered
	// 5,700-7,700 times while it drained; with 100, 450-660 times, at the
	// same throughput (writers still merge partitions into one transaction).
	DefaultBatchSize   = 100
	DefaultLinger      = 5 * time.Millisecond
	DefaultConcurrency = 2
	// DefaultMaxMerge caps the requests of one ApplyBatch when writers merge
	// several partitions' batches: batches of several hundred random
	// accounts from concurrent writers queue behind each other's row locks,
	// so larger is not faster.
	DefaultMaxMerge      = 1000
	DefaultAckWait       = 5 * time.Second
	DefaultPinnedTTL     = 10 * time.Second
	DefaultHeartbeat     = time.Second
	DefaultMemberTTL     = 4 * time.Second
	DefaultPurgeInterval = 10 * time.Second
	// DefaultExpireInterval is how often due holds are looked for: a hold
	// outlives its timeout by at most about this long when nobody posts
	// or voids it (a post after the timeout is refused at once). A sweep
	// with nothing due is one indexed query.
	DefaultExpireInterval = time.Second
	// DefaultExpireBatch bounds the holds one sweep transaction expires, so
	// that it holds few senders' locks at a time; a sweep runs rounds
	// until one finds fewer.
	DefaultExpireBatch = 500
	// DefaultMembersBucket is the bucket the worker role's NATS
	// permissions name; another needs other permissions.
	DefaultMembersBucket = natsbus.MembersBucket
)

// Config tunes a worker. Zero fields take the defaults above.
type Config struct {
	// ID names this worker in the membership bucket and in logs; default
	// host name plus a random suffix. Letters, digits, '-', '_' and '='.
	ID string
	// Streams is the stream configuration the worker ensures at start-up;
	// Streams.Partitions is the partition count.
	Streams natsbus.Config
	// BatchSize is the most messages a partition pulls into one batch and
	// the consumers' MaxAckPending. Writers merge the batches of several
	// partitions into one transaction of up to MaxMerge requests.
	BatchSize int
	// Linger is how long a partition waits for more messages after the
	// first before it hands its batch on.
	Linger time.Duration
	// Concurrency is the number of writers: batches committed at once.
	Concurrency int
	// MaxMerge caps the requests a writer merges into one ApplyBatch.
	MaxMerge int
	// AckWait is how long a delivered message may stay unacked before it is
	// redelivered; the worker sends progress while it holds a batch longer.
	// At most PinnedTTL.
	AckWait time.Duration
	// PinnedTTL is how long a partition stays pinned to a worker that
	// stopped pulling (crashed) before another may receive its messages.
	PinnedTTL time.Duration
	// Heartbeat is how often the worker refreshes its membership and
	// re-reads the member list.
	Heartbeat time.Duration
	// MemberTTL is how long a silent worker stays a member; a few heartbeats.
	MemberTTL time.Duration
	// PurgeInterval is how often the acked prefix of each owned partition is
	// purged from the requests stream.
	PurgeInterval time.Duration
	// MembersBucket is the KV bucket holding the heartbeats.
	MembersBucket string
	// ExpireInterval is how often the worker expires due holds.
	ExpireInterval time.Duration
	// ExpireBatch is the most holds one expiry transaction releases.
	ExpireBatch int
	// TracerProvider, when set, traces every batch, and each request that
	// carries a trace context (see tracing.go). Nil: no spans, no cost.
	TracerProvider trace.TracerProvider
}

var validID = regexp.MustCompile(`^[-_=a-zA-Z0-9]{1,64}$`)

func (c Config) withDefaults() (Config, error) {
	if c.ID == "" {
		host, _ := os.Hostname()
		host = regexp.MustCompile(`[^-_a-zA-Z0-9]`).ReplaceAllString(host, "_")
		if len(host) > 40 {
			host = host[:40]
		}
		c.ID = fmt.Sprintf("%s-%06x", strings.Trim(host, "_"), rand.Uint32()&0xffffff) //nolint:gosec // tells restarts apart; not a secret
	}
	if c.Streams.Partitions == 0 {
		c.Streams.Partitions = natsbus.DefaultPartitions
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.BatchSize, DefaultBatchSize)
	def(&c.Concurrency, DefaultConcurrency)
	def(&c.MaxMerge, DefaultMaxMerge)
	defDur(&c.Linger, DefaultLinger)
	defDur(&c.AckWait, DefaultAckWait)
	defDur(&c.PinnedTTL, DefaultPinnedTTL)
	defDur(&c.Heartbeat, DefaultHeartbeat)
	defDur(&c.MemberTTL, DefaultMemberTTL)
	defDur(&c.PurgeInterval, DefaultPurgeInterval)
	defDur(&c.ExpireInterval, DefaultExpireInterval)
	def(&c.ExpireBatch, DefaultExpireBatch)
	if c.MembersBucket == "" {
		c.MembersBucket = DefaultMembersBucket
	}
	bad := func(format string, args ...any) (Config, error) {
		return c, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case !validID.MatchString(c.ID):
		return bad("id %q: 1-64 letters, digits, '-', '_' or '='", c.ID)
	case c.BatchSize < 1 || c.BatchSize > 10000:
		return bad("batch size %d, want 1..10000", c.BatchSize)
	case c.Concurrency < 1 || c.Concurrency > 64:
		return bad("concurrency %d, want 1..64", c.Concurrency)
	case c.MaxMerge < c.BatchSize:
		return bad("max merge %d is below the batch size %d", c.MaxMerge, c.BatchSize)
	case c.Linger < 0 || c.Linger > time.Second:
		return bad("linger %s, want 0..1s", c.Linger)
	case c.PinnedTTL < 2*time.Second:
		// The pull requests that keep the pin are at least 1s long (a
		// client library minimum) and must be renewed within the TTL.
		return bad("pinned TTL %s, want at least 2s", c.PinnedTTL)
	case c.AckWait < 300*time.Millisecond || c.AckWait > c.PinnedTTL:
		return bad("ack wait %s, want 300ms..pinned TTL (%s)", c.AckWait, c.PinnedTTL)
	case c.Heartbeat < 50*time.Millisecond:
		return bad("heartbeat %s, want at least 50ms", c.Heartbeat)
	case c.MemberTTL < 2*c.Heartbeat:
		return bad("member TTL %s, want at least two heartbeats (%s)", c.MemberTTL, 2*c.Heartbeat)
	case c.PurgeInterval < 100*time.Millisecond:
		return bad("purge interval %s, want at least 100ms", c.PurgeInterval)
	case c.ExpireInterval < 10*time.Millisecond:
		return bad("expire interval %s, want at least 10ms", c.ExpireInterval)
	case c.ExpireBatch < 1 || c.ExpireBatch > 10000:
		return bad("expire batch %d, want 1..10000", c.ExpireBatch)
	}
	return c, nil
}

// pullExpiry is how long each pull request lives. The server renews a pin
// only when a new pull request arrives, so requests must be renewed well
// within PinnedTTL even when the partition is idle.
func (c Config) pullExpiry() time.Duration {
	e := c.PinnedTTL / 3
	if e < time.Second {
		e = time.Second
	}
	if e > 30*time.Second {
		e = 30 * time.Second
	}
	return e
}

// progressEvery is how often a held batch's messages get InProgress.
func (c Config) progressEvery() time.Duration {
	return c.AckWait / 3
}

// opTimeout bounds one membership request. It is longer than a heartbeat:
// a slow request delays the next heartbeat rather than failing it.
func (c Config) opTimeout() time.Duration {
	return max(2*time.Second, c.Heartbeat)
}
