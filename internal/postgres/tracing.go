package postgres

import (
	"context"

	"github.com/exaring/otelpgx"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the spans the store makes.
const tracerName = "github.com/wallet/wallet/internal/postgres"

// Option tunes Open.
type Option func(*options)

type options struct {
	tp trace.TracerProvider
}

// WithTracing traces the store with tp: ApplyBatch gets a span of its own
// ("ApplyBatch", around every attempt of its transaction), and each
// statement, batch and pool acquire made under a recording span gets a
// child span (otelpgx; statements without their parameters). Work that is
// not part of a trace (the health checks, the pool's own connections)
// makes no spans. A nil tp leaves tracing off.
func WithTracing(tp trace.TracerProvider) Option {
	return func(o *options) { o.tp = tp }
}

// queryTracer is the pgx tracer that makes the statements' spans. Its
// metrics are switched off: the service's metrics are Prometheus's.
func queryTracer(tp trace.TracerProvider) *otelpgx.Tracer {
	return otelpgx.NewTracer(
		otelpgx.WithTracerProvider(tp),
		otelpgx.WithMeterProvider(noop.NewMeterProvider()),
	)
}

// startApply starts the span of one ApplyBatch of n requests.
func (s *Store) startApply(ctx context.Context, n int) (context.Context, trace.Span) {
	return s.tracer.Start(ctx, "ApplyBatch",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.DBSystemNamePostgreSQL,
			semconv.DBOperationName("ApplyBatch"),
			attribute.Int("wallet.batch.requests", n),
		))
}

// endApply ends an ApplyBatch span after attempts transactions.
func endApply(span trace.Span, attempts int, err error) {
	span.SetAttributes(attribute.Int("wallet.db.attempts", attempts))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "not committed")
	}
	span.End()
}
