package natsbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for Config. See docs/messaging.md for the reasoning.
const (
	DefaultPartitions = 32
	// DefaultRequestsMaxMsgs bounds the requests stream. The server keeps
	// about 200 bytes of memory per distinct retained subject (every request
	// has its own), so a full stream costs ~200 MB of server memory; at the
	// store's 20-30k transfers/s it is well under a minute of backlog.
	DefaultRequestsMaxMsgs  = 1_000_000
	DefaultRequestsMaxBytes = 1 << 30
	DefaultDuplicates       = 2 * time.Minute
	DefaultResultsMaxAge    = 7 * 24 * time.Hour
	DefaultResultsMaxBytes  = 4 << 30
	DefaultDeadLetterMaxAge = 30 * 24 * time.Hour
	// DefaultDeadLetterMaxBytes keeps a flood of poison from filling the
	// disk; the oldest dead letters go first.
	DefaultDeadLetterMaxBytes = 1 << 30
	// MaxStoredRequest is the requests stream's own message size limit,
	// headers included: larger messages are refused at publish. Up to it
	// they are stored and then dead-lettered as payload_too_large, so a
	// producer learns why. It is a quarter of the server's default
	// max_payload (1 MiB), which leaves room for everything a worker adds
	// when it copies a message's summary into a dead letter or an outcome,
	// with a server configured down to 512 KiB.
	MaxStoredRequest = 256 << 10
)

// Config describes the streams. Zero fields take the defaults above.
type Config struct {
	// Partitions is the number of request partitions, fixed for the life of
	// the stream: EnsureStreams refuses another count.
	Partitions int
	// Replicas of every stream: 1 for a single server, 3 on a cluster.
	Replicas int
	// RequestsMaxMsgs and RequestsMaxBytes bound the requests stream. When
	// it is full a publish fails (DiscardNew) rather than drop a request
	// that has not been applied.
	RequestsMaxMsgs  int64
	RequestsMaxBytes int64
	// Duplicates is the window in which JetStream drops a request whose
	// Nats-Msg-Id it has seen (the store catches later duplicates).
	Duplicates time.Duration
	// ResultsMaxAge and ResultsMaxBytes bound the results stream. Outcomes
	// can be re-derived from Postgres, so the oldest are dropped first.
	ResultsMaxAge   time.Duration
	ResultsMaxBytes int64
	// ResultsSync makes the results stream sync every write like the
	// requests stream. Off by default on one replica: outcomes are derived
	// data, and syncing them would halve the workers' throughput.
	ResultsSync bool
	// DeadLetterMaxAge and DeadLetterMaxBytes bound the dead-letter stream.
	DeadLetterMaxAge   time.Duration
	DeadLetterMaxBytes int64
}

// DefaultConfig returns the stream defaults. Every constructor and setup
// function fills a zero field of its Config from it.
func DefaultConfig() Config {
	return Config{
		Partitions:         DefaultPartitions,
		Replicas:           1,
		RequestsMaxMsgs:    DefaultRequestsMaxMsgs,
		RequestsMaxBytes:   DefaultRequestsMaxBytes,
		Duplicates:         DefaultDuplicates,
		ResultsMaxAge:      DefaultResultsMaxAge,
		ResultsMaxBytes:    DefaultResultsMaxBytes,
		DeadLetterMaxAge:   DefaultDeadLetterMaxAge,
		DeadLetterMaxBytes: DefaultDeadLetterMaxBytes,
	}
}

// Validate reports whether c, with its zero fields taking the defaults,
// describes streams the server can hold.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	fillZero(&c.Partitions, d.Partitions)
	fillZero(&c.Replicas, d.Replicas)
	fillZero(&c.RequestsMaxMsgs, d.RequestsMaxMsgs)
	fillZero(&c.RequestsMaxBytes, d.RequestsMaxBytes)
	fillZero(&c.Duplicates, d.Duplicates)
	fillZero(&c.ResultsMaxAge, d.ResultsMaxAge)
	fillZero(&c.ResultsMaxBytes, d.ResultsMaxBytes)
	fillZero(&c.DeadLetterMaxAge, d.DeadLetterMaxAge)
	fillZero(&c.DeadLetterMaxBytes, d.DeadLetterMaxBytes)
	switch {
	case c.Partitions < 1 || c.Partitions > 1000:
		return c, fmt.Errorf("%w: partitions %d, want 1..1000", ErrInvalidConfig, c.Partitions)
	case c.Replicas < 1 || c.Replicas > 5:
		return c, fmt.Errorf("%w: replicas %d, want 1..5", ErrInvalidConfig, c.Replicas)
	case c.RequestsMaxMsgs < 1 || c.RequestsMaxBytes < 1:
		return c, fmt.Errorf("%w: requests stream limits must be positive", ErrInvalidConfig)
	case c.ResultsMaxBytes < 1 || c.DeadLetterMaxBytes < 1:
		return c, fmt.Errorf("%w: results and dead-letter stream limits must be positive", ErrInvalidConfig)
	case c.Duplicates < 0 || c.ResultsMaxAge < 0 || c.DeadLetterMaxAge < 0:
		return c, fmt.Errorf("%w: negative duration", ErrInvalidConfig)
	}
	return c, nil
}

// fillZero sets *v to d when it is the zero value: the convention by which
// a zero field of every configuration in this package takes its default.
func fillZero[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// transformDestination is the partition transform for n partitions.
func transformDestination(n int) string {
	return RequestsPrefix + "{{partition(" + strconv.Itoa(n) + ",1)}}.{{wildcard(2)}}.{{wildcard(1)}}"
}

// RequestsStreamConfig is the requests stream's configuration.
func RequestsStreamConfig(c Config) (jetstream.StreamConfig, error) {
	c, err := c.withDefaults()
	if err != nil {
		return jetstream.StreamConfig{}, err
	}
	return jetstream.StreamConfig{
		Name:        RequestsStream,
		Description: "Wallet requests, filed by partition; see docs/messaging.md",
		Subjects:    []string{RequestsPrefix + "*.*"},
		SubjectTransform: &jetstream.SubjectTransformConfig{
			Source:      RequestsPrefix + "*.*",
			Destination: transformDestination(c.Partitions),
		},
		// Limits retention: acks are cheap (a work queue syncs every
		// removal), and workers purge the acked prefix themselves.
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardNew,
		MaxMsgs:    c.RequestsMaxMsgs,
		MaxBytes:   c.RequestsMaxBytes,
		MaxMsgSize: MaxStoredRequest,
		// No MaxAge: it would drop requests nobody has applied yet.
		Storage:            jetstream.FileStorage,
		Replicas:           c.Replicas,
		Duplicates:         c.Duplicates,
		AllowDirect:        true,
		AllowAtomicPublish: true,
	}, nil
}

// ResultsStreamConfig is the results stream's configuration.
func ResultsStreamConfig(c Config) (jetstream.StreamConfig, error) {
	c, err := c.withDefaults()
	if err != nil {
		return jetstream.StreamConfig{}, err
	}
	cfg := jetstream.StreamConfig{
		Name:        ResultsStream,
		Description: "Wallet request outcomes and conflict notices; see docs/messaging.md",
		Subjects:    []string{ResultsPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      c.ResultsMaxAge,
		MaxBytes:    c.ResultsMaxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Duplicates:  c.Duplicates,
		AllowDirect: true,
	}
	if !c.ResultsSync && c.Replicas == 1 {
		// Outcomes are re-derivable from Postgres: a power loss may lose the
		// last ones written, which the gateway then reads from the database.
		cfg.PersistMode = jetstream.AsyncPersistMode
	}
	return cfg, nil
}

// DeadLetterStreamConfig is the dead-letter stream's configuration.
func DeadLetterStreamConfig(c Config) (jetstream.StreamConfig, error) {
	c, err := c.withDefaults()
	if err != nil {
		return jetstream.StreamConfig{}, err
	}
	return jetstream.StreamConfig{
		Name:        DeadLetterStream,
		Description: "Wallet requests that could not be decoded, with the reason; see docs/messaging.md",
		Subjects:    []string{DeadLetterPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      c.DeadLetterMaxAge,
		MaxBytes:    c.DeadLetterMaxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Duplicates:  c.Duplicates,
		AllowDirect: true,
	}, nil
}

// EnsureStreams creates or updates the three streams. It is safe to call
// from several processes at once. It fails with ErrPartitionMismatch when
// the requests stream exists with another partition count.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, c Config) error {
	return eachStream(ctx, js, c, ensureStream)
}

// CreateStreams creates whichever of the three streams is missing and
// leaves the existing ones as they are. It is the gateway's start-up: the
// gateway may start before any worker, but changing a stream's settings is
// the workers' job, and the gateway's NATS role may not. It fails with
// ErrPartitionMismatch as EnsureStreams does.
func CreateStreams(ctx context.Context, js jetstream.JetStream, c Config) error {
	return eachStream(ctx, js, c, createMissingStream)
}

// eachStream checks the server and the partition count, then hands each of
// the three streams' configurations to do.
func eachStream(ctx context.Context, js jetstream.JetStream, c Config, do func(context.Context, jetstream.JetStream, jetstream.StreamConfig) error) error {
	if err := checkServerVersion(js); err != nil {
		return err
	}
	c, err := c.withDefaults()
	if err != nil {
		return err
	}
	if err := checkPartitions(ctx, js, c.Partitions); err != nil {
		return err
	}
	for _, build := range []func(Config) (jetstream.StreamConfig, error){RequestsStreamConfig, ResultsStreamConfig, DeadLetterStreamConfig} {
		cfg, err := build(c)
		if err != nil {
			return err
		}
		if err := do(ctx, js, cfg); err != nil {
			return err
		}
	}
	return nil
}

// createMissingStream creates cfg's stream unless it exists. Another
// process may create it first; with another config (a worker's settings)
// it is in use, which is as good.
func createMissingStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	_, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("create stream %s: %w", cfg.Name, err)
	}
	return nil
}

// checkPartitions refuses a requests stream made for another partition count.
func checkPartitions(ctx context.Context, js jetstream.JetStream, n int) error {
	s, err := js.Stream(ctx, RequestsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("requests stream info: %w", err)
	}
	got := StreamPartitions(s.CachedInfo().Config)
	if got != n {
		return fmt.Errorf("%w: stream %s has %d, configured %d (the count cannot change: recreate the stream once it is drained)",
			ErrPartitionMismatch, RequestsStream, got, n)
	}
	return nil
}

// StreamPartitions reads the partition count from a requests stream's
// transform, or returns 0 if it has none.
func StreamPartitions(cfg jetstream.StreamConfig) int {
	if cfg.SubjectTransform == nil {
		return 0
	}
	dest := cfg.SubjectTransform.Destination
	_, after, ok := strings.Cut(dest, "{{partition(")
	if !ok {
		return 0
	}
	num, _, ok := strings.Cut(after, ",")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil {
		return 0
	}
	return n
}

// ensureStream creates or updates one stream. Two processes creating the
// same stream at once race between "not found" and "create"; the loser's
// create fails with "name in use" when the configs differ in any detail, and
// a second update then succeeds.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		_, err = js.CreateOrUpdateStream(ctx, cfg)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && !errors.Is(err, jetstream.ErrStreamNotFound) {
			break
		}
	}
	return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
}

// checkServerVersion refuses servers older than 2.11, which lack priority
// groups and the partition transform semantics the contract relies on.
func checkServerVersion(js jetstream.JetStream) error {
	v := js.Conn().ConnectedServerVersion()
	if v == "" {
		return nil // not connected yet: the first request reports it
	}
	var major, minor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil {
		return nil
	}
	if major < 2 || (major == 2 && minor < 11) {
		return fmt.Errorf("natsbus: nats-server %s is too old, 2.11 or later is required", v)
	}
	return nil
}

// ConsumerConfig describes the partition consumers.
type ConsumerConfig struct {
	Partitions int
	// MaxAckPending is the worker's batch size: a partition's batch must be
	// acked before anything newer is delivered, which keeps per-account order
	// across redeliveries.
	MaxAckPending int
	// AckWait must not exceed PinnedTTL.
	AckWait   time.Duration
	PinnedTTL time.Duration
}

// PartitionConsumerConfig is partition p's durable consumer.
//
// Its state is kept in memory. With the server syncing every write, file
// consumers write and sync their ack state up to ten times a second each;
// with 32 partitions that took more syncs than the disk has and made every
// request's PubAck wait (profiled: a third of the server's time in the
// consumer state flush, publishes averaging 69 ms). Losing consumer state
// is safe: the database decides exactly-once, so a consumer recreated after
// a server restart (the worker recreates a missing one) redelivers the
// stream's unpurged messages from the start, in order, and they replay.
func PartitionConsumerConfig(c ConsumerConfig, p int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		MemoryStorage:  true,
		Durable:        ConsumerName(p),
		Description:    "wallet worker partition " + strconv.Itoa(p),
		FilterSubject:  PartitionFilter(p),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  c.MaxAckPending,
		ReplayPolicy:   jetstream.ReplayInstantPolicy,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PinnedTTL:      c.PinnedTTL,
		PriorityGroups: []string{PriorityGroup},
	}
}

// EnsureConsumers creates or updates every partition's consumer. It is safe
// to call from several processes at once.
func EnsureConsumers(ctx context.Context, js jetstream.JetStream, c ConsumerConfig) error {
	switch {
	case c.Partitions < 1:
		return fmt.Errorf("%w: partitions %d", ErrInvalidConfig, c.Partitions)
	case c.MaxAckPending < 1:
		return fmt.Errorf("%w: max ack pending %d", ErrInvalidConfig, c.MaxAckPending)
	case c.AckWait <= 0 || c.PinnedTTL <= 0:
		return fmt.Errorf("%w: ack wait and pinned TTL must be positive", ErrInvalidConfig)
	case c.AckWait > c.PinnedTTL:
		return fmt.Errorf("%w: ack wait %s exceeds pinned TTL %s", ErrInvalidConfig, c.AckWait, c.PinnedTTL)
	}
	s, err := js.Stream(ctx, RequestsStream)
	if err != nil {
		return fmt.Errorf("requests stream: %w", err)
	}
	if got := StreamPartitions(s.CachedInfo().Config); got != c.Partitions {
		return fmt.Errorf("%w: stream %s has %d, configured %d", ErrPartitionMismatch, RequestsStream, got, c.Partitions)
	}
	for p := 0; p < c.Partitions; p++ {
		cfg := PartitionConsumerConfig(c, p)
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			if _, err = s.CreateOrUpdateConsumer(ctx, cfg); err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrConsumerExists) && !errors.Is(err, jetstream.ErrConsumerNotFound) &&
				!errors.Is(err, jetstream.ErrConsumerDoesNotExist) {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("ensure consumer %s: %w", cfg.Durable, err)
		}
	}
	return nil
}
