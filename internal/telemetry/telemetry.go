// Package telemetry sets up a process's OpenTelemetry tracing: an OTLP
// exporter over HTTP when an endpoint is configured, and nothing at all
// otherwise. The spans themselves are made where the work is (gateway,
// natsbus, worker, postgres), each from a trace.TracerProvider it is given;
// a nil provider there means tracing is off and costs nothing.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TracesPath is the OTLP/HTTP path an endpoint without a path gets.
const TracesPath = "/v1/traces"

// tracesURL is endpoint with TracesPath when it names no path of its own.
func tracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("otel endpoint: not an http:// or https:// URL")
	}
	if strings.Trim(u.Path, "/") == "" {
		u.Path = TracesPath
	}
	return u.String(), nil
}

// Start builds a tracer provider that batches spans to the OTLP/HTTP
// collector at endpoint (protobuf; an endpoint without a path gets
// TracesPath). service and version name the process in its resource;
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override and extend it,
// and the exporter and sampler honour their usual OTEL_* variables. The
// caller shuts the provider down, which flushes what is queued.
func Start(ctx context.Context, endpoint, service, version string) (*sdktrace.TracerProvider, error) {
	target, err := tracesURL(endpoint)
	if err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(target))
	if err != nil {
		return nil, fmt.Errorf("otel exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(
			attribute.String("service.name", service),
			attribute.String("service.version", version),
		),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}
