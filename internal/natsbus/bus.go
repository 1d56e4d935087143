package natsbus

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/wallet/wallet/internal/transfer"
)

// Bus is a producer's and reader's handle on the streams: publish a request,
// ask whether one is pending, read an outcome. It is safe for concurrent use.
type Bus struct {
	js       jetstream.JetStream
	requests jetstream.Stream
	results  jetstream.Stream
	tracer   trace.Tracer // nil: tracing is off
}

// Option tunes Open.
type Option func(*Bus)

// Open binds to the existing streams (EnsureStreams creates them).
func Open(ctx context.Context, js jetstream.JetStream, opts ...Option) (*Bus, error) {
	requests, err := js.Stream(ctx, RequestsStream)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", RequestsStream, err)
	}
	results, err := js.Stream(ctx, ResultsStream)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", ResultsStream, err)
	}
	b := &Bus{js: js, requests: requests, results: results}
	for _, o := range opts {
		o(b)
	}
	return b, nil
}

// PublishRequest publishes r on its own, without a Batcher (a Producer
// batches), and waits for its PubAck: from then on the request is stored. A PubAck with Duplicate set means the id was already
// in the stream within the dedupe window.
func (b *Bus) PublishRequest(ctx context.Context, r transfer.Request, traceID string) (*jetstream.PubAck, error) {
	return b.publishRequest(ctx, r, traceID, RequestMsgID(r))
}

// ResubmitRequest is PublishRequest under ResubmitMsgID(r.ID): for a request
// whose own id is taken in the dedupe window by a message that is not a
// valid request.
func (b *Bus) ResubmitRequest(ctx context.Context, r transfer.Request, traceID string) (*jetstream.PubAck, error) {
	return b.publishRequest(ctx, r, traceID, ResubmitMsgID(r.ID))
}

func (b *Bus) publishRequest(ctx context.Context, r transfer.Request, traceID, msgID string) (ack *jetstream.PubAck, err error) {
	msg, err := RequestMsg(r, traceID)
	if err != nil {
		return nil, err
	}
	msg.Header.Set(HeaderMsgID, msgID)
	if b.tracer != nil {
		var span trace.Span
		ctx, span = b.startPublish(ctx, msg, msgID)
		defer func() { endPublish(span, ack, err) }()
	}
	ack, err = b.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(RequestsStream))
	var refused *jetstream.APIError
	switch {
	case err == nil:
	case errors.As(err, &refused), errors.Is(err, jetstream.ErrNoStreamResponse):
		return nil, fmt.Errorf("publish request %s: %w", r.ID, err)
	default:
		return nil, fmt.Errorf("publish request %s: %w", r.ID, unsent(err))
	}
	return ack, nil
}

// lookupReads bounds the messages LookupPending reads under one id. A
// producer could publish any number of poison messages under an id; past
// this many the id is reported as not pending, which is safe: the database
// still decides each id once.
const lookupReads = 16

// LookupPending finds request id in the requests stream: the first valid
// request stored under it, with the stream's timestamp as its AcceptedAt.
// The first one is the one the workers apply (a later one under the same
// id is a conflict), and messages that are not valid requests (a
// producer's poison, which the workers dead-letter) are skipped. A request
// leaves the stream some time after it is applied (workers purge the
// acked prefix), so a caller checks the database after this lookup, not
// before: a request is then found in one place or the other.
func (b *Bus) LookupPending(ctx context.Context, id uuid.UUID) (transfer.Request, bool, error) {
	// A get by sequence with a subject filter answers the first matching
	// message at or after that sequence.
	var seq uint64
	for range lookupReads {
		m, err := b.requests.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(pendingFilter(id)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return transfer.Request{}, false, nil
		}
		if err != nil {
			return transfer.Request{}, false, fmt.Errorf("lookup pending %s: %w", id, err)
		}
		r, err := DecodeStoredRequest(m.Subject, m.Data)
		if err == nil {
			r.AcceptedAt = m.Time.UTC()
			return r, true, nil
		}
		seq = m.Sequence + 1
	}
	return transfer.Request{}, false, nil
}

// LookupResult reads the outcome of request id from the results stream.
// Outcomes expire (ResultsMaxAge); the database has them for good.
func (b *Bus) LookupResult(ctx context.Context, id uuid.UUID) (Result, bool, error) {
	m, err := b.results.GetLastMsgForSubject(ctx, ResultSubject(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, fmt.Errorf("lookup result %s: %w", id, err)
	}
	r, err := DecodeResult(m.Data)
	if err != nil {
		return Result{}, false, err
	}
	return r, true, nil
}
