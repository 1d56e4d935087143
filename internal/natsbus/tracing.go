package natsbus

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// The W3C Trace Context headers. A producer that traces may set them on a
// request (docs/messaging.md); the gateway sets them on every request it
// publishes and the workers on every outcome of a traced request, each
// naming the span that sent the message.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// Bounds on the trace headers a producer may send; a longer value is
// ignored, as if absent. A version-00 traceparent is 55 characters; the
// W3C asks that at least 512 characters of tracestate be carried on.
const (
	MaxTraceparentLen = 128
	MaxTracestateLen  = 512
)

// tracerName names the spans natsbus makes.
const tracerName = "github.com/wallet/wallet/internal/natsbus"

// traceContext is the W3C propagator: it accepts a traceparent only in its
// exact format (version, 32 and 16 hex digits, not all zero, flags) and a
// tracestate only as a valid list; anything else is dropped, never copied.
var traceContext = propagation.TraceContext{}

// TraceCarrier lets the W3C propagator read and write a message's headers.
// NATS headers are case-sensitive; Get matches the name in any case, so a
// producer's "Traceparent" is read too, and a header sent more than once,
// or longer than its bound, reads as absent.
type TraceCarrier nats.Header

// Get implements propagation.TextMapCarrier.
func (c TraceCarrier) Get(key string) string {
	var value string
	n := 0
	for k, vs := range c {
		if !strings.EqualFold(k, key) {
			continue
		}
		n += len(vs)
		if len(vs) > 0 {
			value = vs[0]
		}
	}
	if n != 1 {
		return ""
	}
	limit := MaxTracestateLen
	if strings.EqualFold(key, HeaderTraceparent) {
		limit = MaxTraceparentLen
	}
	if len(value) > limit {
		return ""
	}
	return value
}

// Set implements propagation.TextMapCarrier.
func (c TraceCarrier) Set(key, value string) { c[key] = []string{value} }

// Keys implements propagation.TextMapCarrier.
func (c TraceCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// ExtractTrace returns ctx with the span context that h's trace headers
// name as its remote parent, or ctx itself when h carries none that is
// valid.
func ExtractTrace(ctx context.Context, h nats.Header) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return traceContext.Extract(ctx, TraceCarrier(h))
}

// InjectTrace sets h's trace headers to name the span in ctx; it sets
// nothing when ctx has no valid span context. h must not be nil.
func InjectTrace(ctx context.Context, h nats.Header) {
	traceContext.Inject(ctx, TraceCarrier(h))
}

// MessagingNATS is the messaging.system attribute of the wallet's spans.
var MessagingNATS = semconv.MessagingSystemKey.String("nats")

// WithTracing makes PublishRequest and a Producer's Publish record a
// producer span for each publish
// ("send wallet.requests", a child of the span in the caller's context) and
// carry its context in the message's traceparent header, so the workers'
// spans join the caller's trace. A nil tp leaves tracing off.
func WithTracing(tp trace.TracerProvider) Option {
	return func(b *Bus) {
		if tp != nil {
			b.tracer = tp.Tracer(tracerName)
		}
	}
}

// startPublish starts the span of publishing msg, request r's message, and
// sets msg's trace headers to it. The caller ends it with endPublish.
func (b *Bus) startPublish(ctx context.Context, msg *nats.Msg, msgID string) (context.Context, trace.Span) {
	ctx, span := b.tracer.Start(ctx, "send "+strings.TrimSuffix(RequestsPrefix, "."),
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			MessagingNATS,
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(msg.Subject),
			semconv.MessagingMessageID(msgID),
		))
	InjectTrace(ctx, msg.Header)
	return ctx, span
}

// endPublish ends a publish span with the PubAck or the error.
func endPublish(span trace.Span, ack *jetstream.PubAck, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "not stored")
	} else if ack != nil {
		span.SetAttributes(
			attribute.Int64("wallet.stream.sequence", int64(ack.Sequence)),
			attribute.Bool("wallet.duplicate", ack.Duplicate))
	}
	span.End()
}
