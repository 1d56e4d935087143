package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/transfer"
)

// TestTraceContinuesProducerTrace publishes requests the way a producer
// in another process does, some with their own W3C trace headers, and
// checks that a valid traceparent is continued (the worker's spans join
// the producer's trace, and the outcome message carries it on), while a
// malformed, repeated or oversized header is ignored, never copied, and
// does not stop the request from being applied.
func TestTraceContinuesProducerTrace(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e := setup(t)
	store := dbtest.NewStore(t, postgres.WithTracing(tp))
	e.store = store
	cfg := e.cfg
	cfg.TracerProvider = tp

	a := e.account("USD")
	const (
		producerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		producerSpan  = "00f067aa0ba902b7"
		parent        = "00-" + producerTrace + "-" + producerSpan + "-01"
		state         = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
	)
	// A valid tracestate (30 members, W3C allows 32) past the bound.
	var members []string
	for i := range 30 {
		members = append(members, fmt.Sprintf("k%02d=%s", i, strings.Repeat("v", 20)))
	}
	longState := strings.Join(members, ",")
	if len(longState) <= natsbus.MaxTracestateLen {
		t.Fatalf("tracestate of %d bytes is within the bound", len(longState))
	}
	cases := []struct {
		name      string
		headers   map[string][]string
		continued bool   // the worker's spans join the producer's trace
		state     string // the tracestate the outcome carries on
	}{
		{"traceparent and tracestate", map[string][]string{"traceparent": {parent}, "tracestate": {state}}, true, state},
		{"name in other case", map[string][]string{"Traceparent": {parent}}, true, ""},
		{"oversized tracestate dropped", map[string][]string{"traceparent": {parent}, "tracestate": {longState}}, true, ""},
		{"no trace headers", nil, false, ""},
		{"bad flags", map[string][]string{"traceparent": {"00-" + producerTrace + "-" + producerSpan + "-0g"}}, false, ""},
		{"zero trace id", map[string][]string{"traceparent": {"00-00000000000000000000000000000000-" + producerSpan + "-01"}}, false, ""},
		{"repeated", map[string][]string{"traceparent": {parent, parent}}, false, ""},
		// A later version may add fields, which the bound limits.
		{"later version", map[string][]string{"traceparent": {"01-" + producerTrace + "-" + producerSpan + "-01-extra"}}, true, ""},
		{"oversized", map[string][]string{"traceparent": {"01-" + producerTrace + "-" + producerSpan + "-01-" +
			strings.Repeat("a", natsbus.MaxTraceparentLen)}}, false, ""},
	}
	ids := make([]uuid.UUID, len(cases))
	for i, c := range cases {
		r := deposit(a, "1", "USD")
		ids[i] = r.ID
		m, err := natsbus.RequestMsg(r, "")
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range c.headers {
			m.Header[k] = v
		}
		if _, err := e.js.PublishMsg(ctx(t), m); err != nil {
			t.Fatal(err)
		}
	}
	exp.Reset()
	w := e.startWorker(cfg, store)
	results := make([]*jetstream.RawStreamMsg, len(cases))
	stream, err := e.js.Stream(ctx(t), natsbus.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if res := e.waitResult(id); res.Status != transfer.StatusApplied {
			t.Fatalf("%s: %+v, want applied", cases[i].name, res)
		}
		if results[i], err = stream.GetLastMsgForSubject(ctx(t), natsbus.ResultSubject(id)); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.balance(a); !got.Equal(dec("9")) {
		t.Fatalf("balance %s, want 9", got)
	}

	// The request spans end after the ack; a stopped worker has ended all.
	w.stop(t)
	want := 0
	for _, c := range cases {
		if c.continued {
			want++
		}
	}
	spans := exp.GetSpans()

	tid, _ := trace.TraceIDFromHex(producerTrace)
	sid, _ := trace.SpanIDFromHex(producerSpan)
	processOf := map[string]tracetest.SpanStub{}
	sendOf := map[trace.SpanID]tracetest.SpanStub{}
	var links, batches int
	for _, sp := range spans {
		switch sp.Name {
		case "process wallet.requests":
			for _, kv := range sp.Attributes {
				if kv.Key == "messaging.message.id" {
					processOf[kv.Value.AsString()] = sp
				}
			}
		case "send wallet.results":
			sendOf[sp.Parent.SpanID()] = sp
		case "process batch":
			batches++
			for _, l := range sp.Links {
				if l.SpanContext.TraceID() == tid && l.SpanContext.SpanID() == sid {
					links++
				}
			}
		}
	}
	if batches == 0 {
		t.Fatal("no batch span")
	}
	if links != want {
		t.Errorf("batch spans link to the producer's span %d times, want %d", links, want)
	}
	for i, c := range cases {
		process, traced := processOf[ids[i].String()]
		header := results[i].Header
		if !c.continued {
			if traced {
				t.Errorf("%s: the worker traced the request as %s", c.name, process.SpanContext.TraceID())
			}
			if header.Get(natsbus.HeaderTraceparent) != "" || header.Get(natsbus.HeaderTracestate) != "" {
				t.Errorf("%s: the outcome carries trace headers %v", c.name, header)
			}
			continue
		}
		if !traced {
			t.Errorf("%s: no request span", c.name)
			continue
		}
		if process.SpanContext.TraceID() != tid || process.Parent.SpanID() != sid || !process.Parent.IsRemote() {
			t.Errorf("%s: request span in trace %s under %s, want the producer's %s under %s", c.name,
				process.SpanContext.TraceID(), process.Parent.SpanID(), tid, sid)
		}
		send, ok := sendOf[process.SpanContext.SpanID()]
		if !ok {
			t.Errorf("%s: no outcome span under the request span", c.name)
			continue
		}
		if got, want := header.Get(natsbus.HeaderTraceparent), "00-"+producerTrace+"-"+send.SpanContext.SpanID().String()+"-01"; got != want {
			t.Errorf("%s: outcome traceparent %q, want %q", c.name, got, want)
		}
		if got := header.Get(natsbus.HeaderTracestate); got != c.state {
			t.Errorf("%s: outcome tracestate %q, want %q", c.name, got, c.state)
		}
	}
}
