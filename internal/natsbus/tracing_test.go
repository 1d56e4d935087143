package natsbus_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/wallet/wallet/internal/natsbus"
)

func TestTraceCarrierGet(t *testing.T) {
	at := func(n int) string { return strings.Repeat("a", n) }
	cases := []struct {
		name   string
		header nats.Header
		key    string
		want   string
	}{
		{"absent", nats.Header{}, "traceparent", ""},
		{"exact name", nats.Header{"traceparent": {"x"}}, "traceparent", "x"},
		{"other case", nats.Header{"TraceParent": {"x"}}, "traceparent", "x"},
		{"repeated value", nats.Header{"traceparent": {"x", "y"}}, "traceparent", ""},
		{"repeated in two cases", nats.Header{"traceparent": {"x"}, "Traceparent": {"y"}}, "traceparent", ""},
		{"traceparent at its bound", nats.Header{"traceparent": {at(natsbus.MaxTraceparentLen)}}, "traceparent", at(natsbus.MaxTraceparentLen)},
		{"traceparent past its bound", nats.Header{"traceparent": {at(natsbus.MaxTraceparentLen + 1)}}, "traceparent", ""},
		{"tracestate at its bound", nats.Header{"tracestate": {at(natsbus.MaxTracestateLen)}}, "tracestate", at(natsbus.MaxTracestateLen)},
		{"tracestate past its bound", nats.Header{"tracestate": {at(natsbus.MaxTracestateLen + 1)}}, "tracestate", ""},
	}
	for _, c := range cases {
		if got := natsbus.TraceCarrier(c.header).Get(c.key); got != c.want {
			t.Errorf("%s: Get(%q) = %.20q, want %.20q", c.name, c.key, got, c.want)
		}
	}
}

func TestTraceRoundTrip(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, err := trace.ParseTraceState("rojo=00f067aa0ba902b7")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts})
	h := nats.Header{}
	natsbus.InjectTrace(trace.ContextWithSpanContext(context.Background(), sc), h)
	if got := h.Get(natsbus.HeaderTraceparent); got != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("traceparent %q", got)
	}
	back := trace.SpanContextFromContext(natsbus.ExtractTrace(context.Background(), h))
	if !back.IsRemote() || back.TraceID() != tid || back.SpanID() != sid || back.TraceState().String() != ts.String() {
		t.Fatalf("extracted %+v, want %+v", back, sc)
	}
	// No context, no headers.
	empty := nats.Header{}
	natsbus.InjectTrace(context.Background(), empty)
	if len(empty) != 0 {
		t.Fatalf("injected %v without a span", empty)
	}
}
