package worker

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// tracerName names the spans the worker makes.
const tracerName = "github.com/wallet/wallet/internal/worker"

// batchTrace is the spans of one commit. A batch serves many traces, so
// its own span, "process batch", starts a trace of its own and links to
// the span each request was sent from; the database's spans are its
// children. Each request that came with a trace context also gets a span
// in its own trace, "process wallet.requests", linked back to the batch,
// and under it "send wallet.results" while its outcome is published, whose
// context the outcome message carries on. A nil *batchTrace (tracing off)
// does nothing.
type batchTrace struct {
	tracer trace.Tracer
	span   trace.Span
	reqs   map[*natsbus.Delivery]*requestTrace
}

type requestTrace struct {
	span    trace.Span
	send    trace.Span // nil until the outcome is published
	decided bool
	sent    bool
}

// startBatch starts the spans of committing items. The context it returns
// carries the batch span; ApplyBatch runs in it.
func (w *Worker) startBatch(ctx context.Context, items []*natsbus.Delivery) (context.Context, *batchTrace) {
	if w.tracer == nil {
		return ctx, nil
	}
	parents := make([]trace.SpanContext, len(items))
	// The SDK keeps the first 128 links of a span by default
	// (OTEL_SPAN_LINK_COUNT_LIMIT); each request's own span links back
	// to the batch in any case.
	links := make([]trace.Link, 0, len(items))
	for i, it := range items {
		sc := it.TraceParent()
		if sc.IsValid() {
			parents[i] = sc
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	ctx, span := w.tracer.Start(ctx, "process batch",
		trace.WithNewRoot(),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...),
		trace.WithAttributes(
			natsbus.MessagingNATS,
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(requestsDestination),
			semconv.MessagingBatchMessageCount(len(items)),
			attribute.String("wallet.worker", w.consumer.ID()),
		))
	bt := &batchTrace{tracer: w.tracer, span: span, reqs: make(map[*natsbus.Delivery]*requestTrace, len(links))}
	batchLink := trace.Link{SpanContext: span.SpanContext()}
	for i, it := range items {
		if !parents[i].IsValid() {
			continue
		}
		attrs := []attribute.KeyValue{
			natsbus.MessagingNATS,
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(it.Subject),
			semconv.MessagingMessageID(it.Request.ID.String()),
			attribute.Int64("wallet.stream.sequence", int64(it.Seq)), //nolint:gosec // stream sequences stay far below 2^63
		}
		if it.TraceID != "" {
			attrs = append(attrs, attribute.String("wallet.trace_id", it.TraceID))
		}
		_, rs := w.tracer.Start(trace.ContextWithRemoteSpanContext(context.Background(), parents[i]),
			"process "+requestsDestination,
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithLinks(batchLink),
			trace.WithAttributes(attrs...))
		bt.reqs[it] = &requestTrace{span: rs}
	}
	return ctx, bt
}

// requestsDestination and resultsDestination name the streams' subject
// spaces in span names, which must not carry ids.
var (
	requestsDestination = strings.TrimSuffix(natsbus.RequestsPrefix, ".")
	resultsDestination  = strings.TrimSuffix(natsbus.ResultsPrefix, ".")
)

// decided records each applied item's outcome on its span.
func (bt *batchTrace) decided(items []*natsbus.Delivery, outcomes []transfer.Outcome) {
	if bt == nil {
		return
	}
	bt.span.SetAttributes(attribute.Int("wallet.batch.applied", len(items)))
	for i, it := range items {
		rt := bt.reqs[it]
		if rt == nil || i >= len(outcomes) {
			continue
		}
		o := outcomes[i]
		rt.decided = true
		rt.span.SetAttributes(
			attribute.String("wallet.transfer.id", it.Request.ID.String()),
			attribute.String("wallet.status", string(o.Status())),
			attribute.Bool("wallet.replayed", o.Replayed),
			attribute.Bool("wallet.conflict", o.Conflict),
		)
		if r := o.Reason(); r != "" {
			rt.span.SetAttributes(attribute.String("wallet.reason", string(r)))
		}
	}
}

// Sending starts the span of publishing it's outcome on subject; the
// outcome message carries the context it returns.
func (bt *batchTrace) Sending(it *natsbus.Delivery, subject string) context.Context {
	rt := bt.request(it)
	if rt == nil {
		return nil
	}
	ctx, send := bt.tracer.Start(trace.ContextWithSpan(context.Background(), rt.span), "send "+resultsDestination,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			natsbus.MessagingNATS,
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(subject),
		))
	rt.send = send
	return ctx
}

// Sent ends the span of publishing it's outcome, which is stored.
func (bt *batchTrace) Sent(it *natsbus.Delivery) {
	if rt := bt.request(it); rt != nil && rt.send != nil && !rt.sent {
		rt.sent = true
		rt.send.End()
	}
}

// Refused ends the span of publishing it's outcome, which the stream
// refused for good.
func (bt *batchTrace) Refused(it *natsbus.Delivery, err error) {
	if rt := bt.request(it); rt != nil && rt.send != nil && !rt.sent {
		rt.sent = true
		rt.send.RecordError(err)
		rt.send.SetStatus(codes.Error, "outcome refused")
		rt.send.End()
	}
}

func (bt *batchTrace) request(it *natsbus.Delivery) *requestTrace {
	if bt == nil {
		return nil
	}
	return bt.reqs[it]
}

// end ends every span of the commit; err is the commit's error (nil: all
// acked). A request that was not decided was isolated (dead-lettered).
func (bt *batchTrace) end(err error) {
	if bt == nil {
		return
	}
	for _, rt := range bt.reqs {
		if rt.send != nil && !rt.sent {
			if err != nil {
				rt.send.SetStatus(codes.Error, "not stored")
			}
			rt.send.End()
		}
		switch {
		case err != nil:
			rt.span.SetStatus(codes.Error, "not committed; it will be delivered again")
		case !rt.decided:
			rt.span.SetStatus(codes.Error, "isolated: dead-lettered, not applied")
		}
		rt.span.End()
	}
	if err != nil {
		bt.span.RecordError(err)
		bt.span.SetStatus(codes.Error, "not committed")
	}
	bt.span.End()
}
