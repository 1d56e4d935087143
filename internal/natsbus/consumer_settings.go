package natsbus

import (
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"time"
)

// Defaults for ConsumerSettings.
const (
	// DefaultConsumerBatch bounds what each partition holds unacked. Every
	// partition's messages wait their turn for a writer, so the sum over
	// partitions must drain well within the ack wait: with 500 per
	// partition a backlog after a 15 s database outage was redelivered
	// 5,700-7,700 times while it drained; with 100, 450-660 times, at the
	// same throughput (writers still merge partitions into one transaction).
	DefaultConsumerBatch  = 100
	DefaultConsumerLinger = 5 * time.Millisecond
	DefaultAckWait        = 5 * time.Second
	DefaultPinnedTTL      = 10 * time.Second
	DefaultHeartbeat      = time.Second
	DefaultMemberTTL      = 4 * time.Second
	// DefaultPurgeInterval is short for NATS restarts: the same loop
	// recreates partition consumers a restarted server lost (samplePartition),
	// and new ones replay from the oldest unpurged request. In the long
	// fault run 2s against 10s brought the recovery after NATS restarts and
	// kills from 4.2s to 2.8s on average (one run each; which of the two
	// bought it is not measured). One purge by sequence costs little.
	DefaultPurgeInterval = 2 * time.Second
	// DefaultStopTimeout bounds the soft stop: what is still in hand then
	// is abandoned unacked, to be redelivered and applied once elsewhere.
	DefaultStopTimeout = 30 * time.Second
)

// ConsumerSettings tune a Consumer. Zero fields take the defaults above.
type ConsumerSettings struct {
	// ID names this consumer (the worker) in the membership bucket and in
	// logs; default host name plus a random suffix. Letters, digits, '-',
	// '_' and '='.
	ID string
	// Streams is the stream configuration ensured at start-up;
	// Streams.Partitions is the partition count.
	Streams Config
	// BatchSize is the most messages a partition pulls into one batch and
	// the consumers' MaxAckPending.
	BatchSize int
	// Linger is how long a busy partition waits for more messages after
	// the first before it hands its batch on. A partition whose first
	// message came alone (nothing else had arrived behind it) hands it on
	// at once.
	Linger time.Duration
	// AckWait is how long a delivered message may stay unacked before it is
	// redelivered; the consumer sends progress while it is held longer.
	// At most PinnedTTL.
	AckWait time.Duration
	// PinnedTTL is how long a partition stays pinned to a worker that
	// stopped pulling (crashed) before another may receive its messages.
	PinnedTTL time.Duration
	// Heartbeat is how often the membership is refreshed and re-read.
	Heartbeat time.Duration
	// MemberTTL is how long a silent worker stays a member; a few heartbeats.
	MemberTTL time.Duration
	// PurgeInterval is how often the acked prefix of the requests stream is
	// purged.
	PurgeInterval time.Duration
	// MembersBucket is the KV bucket holding the heartbeats; the worker
	// role's NATS permissions name MembersBucket, another needs other
	// permissions.
	MembersBucket string
	// StopTimeout is how long a soft stop may take to finish the batches in
	// hand; after it they are abandoned unacked.
	StopTimeout time.Duration

	// BeforeFinish, when set, runs when a partition is released, before it
	// applies what was delivered while its pull drained. Tests use it to
	// stop there.
	BeforeFinish func(partition int)
}

var validConsumerID = regexp.MustCompile(`^[-_=a-zA-Z0-9]{1,64}$`)

// DefaultConsumerSettings returns the consumer's defaults. NewConsumer
// fills a zero field of its ConsumerSettings from it; an empty ID is
// generated there (host name plus a random suffix), so each start has its
// own.
func DefaultConsumerSettings() ConsumerSettings {
	return ConsumerSettings{
		Streams:       DefaultConfig(),
		BatchSize:     DefaultConsumerBatch,
		Linger:        DefaultConsumerLinger,
		AckWait:       DefaultAckWait,
		PinnedTTL:     DefaultPinnedTTL,
		Heartbeat:     DefaultHeartbeat,
		MemberTTL:     DefaultMemberTTL,
		PurgeInterval: DefaultPurgeInterval,
		MembersBucket: MembersBucket,
		StopTimeout:   DefaultStopTimeout,
	}
}

// Validate reports whether c, with its zero fields taking the defaults, is
// a consumer NewConsumer accepts.
func (c ConsumerSettings) Validate() error {
	_, err := c.withDefaults()
	return err
}

func (c ConsumerSettings) withDefaults() (ConsumerSettings, error) {
	if c.ID == "" {
		host, _ := os.Hostname()
		host = regexp.MustCompile(`[^-_a-zA-Z0-9]`).ReplaceAllString(host, "_")
		if len(host) > 40 {
			host = host[:40]
		}
		c.ID = fmt.Sprintf("%s-%06x", strings.Trim(host, "_"), rand.Uint32()&0xffffff) //nolint:gosec // tells restarts apart; not a secret
	}
	d := DefaultConsumerSettings()
	fillZero(&c.Streams.Partitions, d.Streams.Partitions)
	fillZero(&c.BatchSize, d.BatchSize)
	fillZero(&c.Linger, d.Linger)
	fillZero(&c.AckWait, d.AckWait)
	fillZero(&c.PinnedTTL, d.PinnedTTL)
	fillZero(&c.Heartbeat, d.Heartbeat)
	fillZero(&c.MemberTTL, d.MemberTTL)
	fillZero(&c.PurgeInterval, d.PurgeInterval)
	fillZero(&c.StopTimeout, d.StopTimeout)
	fillZero(&c.MembersBucket, d.MembersBucket)
	bad := func(format string, args ...any) (ConsumerSettings, error) {
		return c, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case !validConsumerID.MatchString(c.ID):
		return bad("id %q: 1-64 letters, digits, '-', '_' or '='", c.ID)
	case c.BatchSize < 1 || c.BatchSize > 10000:
		return bad("batch size %d, want 1..10000", c.BatchSize)
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
	case c.StopTimeout < 0:
		return bad("stop timeout %s, want at least 0", c.StopTimeout)
	}
	return c, nil
}

// handBackAfter is how long a partition waits for older messages held
// elsewhere before it hands its batch back and pulls again: a crashed
// owner's messages come back within one ack wait, so three mean they are
// held by a worker that is itself waiting.
func (c ConsumerSettings) handBackAfter() time.Duration { return 3 * c.AckWait }

// pullExpiry is how long each pull request lives. The server renews a pin
// only when a new pull request arrives, so requests must be renewed well
// within PinnedTTL even when the partition is idle.
func (c ConsumerSettings) pullExpiry() time.Duration {
	e := c.PinnedTTL / 3
	if e < time.Second {
		e = time.Second
	}
	if e > 30*time.Second {
		e = 30 * time.Second
	}
	return e
}

// progressEvery is how often held messages get InProgress.
func (c ConsumerSettings) progressEvery() time.Duration {
	return c.AckWait / 3
}

// opTimeout bounds one membership request. It is longer than a heartbeat:
// a slow request delays the next heartbeat rather than failing it.
func (c ConsumerSettings) opTimeout() time.Duration {
	return max(2*time.Second, c.Heartbeat)
}

// consumerConfig describes the partition consumers these settings expect.
func (c ConsumerSettings) consumerConfig() ConsumerConfig {
	return ConsumerConfig{
		Partitions:    c.Streams.Partitions,
		MaxAckPending: c.BatchSize,
		AckWait:       c.AckWait,
		PinnedTTL:     c.PinnedTTL,
	}
}
