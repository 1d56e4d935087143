package gateway

import (
	"strings"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/wallet/wallet/internal/natsbus"
)

// tracerName names the spans the gateway makes.
const tracerName = "github.com/wallet/wallet/internal/gateway"

// traceRequests gives every request but the probes, /metrics and the
// console's static files a server span, "<METHOD> <route>". It
// continues the client's trace when the request carries a valid W3C
// traceparent, and starts a new one otherwise. The span is in the
// handler's UserContext, so what the handler does (reading the database,
// publishing the request) is part of it. It runs before observe, so the
// status it records is the one the client gets.
func (g *Gateway) traceRequests(tp trace.TracerProvider) fiber.Handler {
	tracer := tp.Tracer(tracerName)
	prop := propagation.TraceContext{}
	return func(c *fiber.Ctx) error {
		switch path := c.Path(); {
		case path == "/healthz", path == "/readyz", path == "/metrics", strings.HasPrefix(path, "/console/"):
			// Probes and scrapes every few seconds, and static assets:
			// traces of them would bury the rest.
			return c.Next()
		}
		ctx := prop.Extract(c.UserContext(), requestCarrier{c})
		method := methodLabel(c.Method())
		ctx, span := tracer.Start(ctx, method,
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				semconv.HTTPRequestMethodKey.String(method),
				// Copied: the path points into a buffer the next request reuses.
				semconv.URLPath(strings.ToValidUTF8(strings.Clone(clip(c.Path())), "?")),
			))
		defer span.End()
		c.SetUserContext(ctx)

		err := c.Next()

		status := c.Response().StatusCode()
		route := c.Route().Path
		if !g.paths[route] {
			route = "unmatched"
		}
		span.SetName(method + " " + route)
		span.SetAttributes(
			semconv.HTTPRoute(route),
			semconv.HTTPResponseStatusCode(status),
			attribute.String("wallet.trace_id", traceID(c)),
		)
		if err != nil {
			span.RecordError(err)
		}
		if err != nil || status >= 500 {
			// A 4xx is the client's mistake, not a failure of this span.
			span.SetStatus(codes.Error, "")
		}
		return err
	}
}

// requestCarrier reads the trace headers of a request for the propagator.
// Values are copied (Fiber reuses its buffers once the request is done,
// and a span outlives it) and bounded like a message's (natsbus).
type requestCarrier struct{ c *fiber.Ctx }

func (r requestCarrier) Get(key string) string {
	v := r.c.Get(key)
	limit := natsbus.MaxTracestateLen
	if strings.EqualFold(key, natsbus.HeaderTraceparent) {
		limit = natsbus.MaxTraceparentLen
	}
	if len(v) > limit {
		return ""
	}
	return strings.Clone(v)
}

// Set is not used: the gateway only reads a request's trace headers.
func (requestCarrier) Set(string, string) {}

func (r requestCarrier) Keys() []string {
	var keys []string
	r.c.Request().Header.VisitAll(func(k, _ []byte) { keys = append(keys, string(k)) })
	return keys
}
