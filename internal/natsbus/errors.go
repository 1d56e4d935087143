package natsbus

import "errors"

// Sentinel errors callers may test for with errors.Is.
var (
	// ErrPartitionMismatch: the existing requests stream was created with
	// another partition count. Changing it would move accounts between
	// partitions and break per-account ordering, so start-up refuses.
	ErrPartitionMismatch = errors.New("natsbus: requests stream has a different partition count")
	// ErrInvalidConfig: a setting is out of range.
	ErrInvalidConfig = errors.New("natsbus: invalid config")
	// ErrInvalidSubject: a subject does not have the shape of the stream's subjects.
	ErrInvalidSubject = errors.New("natsbus: invalid subject")
	// ErrBatcherClosed: the batcher was closed (or its connection was)
	// before it took the message; the message was not published.
	ErrBatcherClosed = errors.New("natsbus: batcher closed")
)

// ErrOutcomeUnknown means a publish was sent but its answer did not arrive (the
// caller's deadline or the publish timeout passed, or the connection broke
// while waiting): the message may be stored. A caller must not report it as
// not stored; retrying with the same Nats-Msg-Id is safe.
var ErrOutcomeUnknown = errors.New("natsbus: publish outcome unknown, the message may be stored")

// Errors of the Consumer.
var (
	// ErrConsumerRunning: Run was called twice.
	ErrConsumerRunning = errors.New("natsbus: consumer already running")
	// ErrAbandoned: the consumer stopped without finishing the batches in
	// hand (the stop timeout passed or the connection closed); they stay
	// unacked and are delivered again.
	ErrAbandoned = errors.New("natsbus: stopped with batches in hand abandoned unacked")
	// errAborted: the hard stop ended a batch in hand.
	errAborted = errors.New("natsbus: aborted")
	// errHandedBack: a partition gave its batch back after waiting too
	// long for older messages held elsewhere, and pulls again.
	errHandedBack = errors.New("natsbus: batch handed back")
)
