package gateway

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/worker"
)

// tracedHarness is a harness whose gateway, bus, store and worker all
// record their spans in exp.
func tracedHarness(t *testing.T) (*harness, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	streams := natsbus.Config{Partitions: 4}
	h := &harness{t: t, store: dbtest.NewStore(t, postgres.WithTracing(tp)), nats: natstest.Start(t), reg: prometheus.NewRegistry()}
	h.nc, h.js = h.nats.Setup(t, streams)
	h.queue = h.nats.StartProducer(t, natsbus.BatcherConfig{}, natsbus.WithTracing(tp))
	var err error
	if h.g, err = New(Config{TracerProvider: tp}, h.store, h.queue, zap.NewNop(), h.reg); err != nil {
		t.Fatal(err)
	}

	wnc, err := nats.Connect(h.nats.URL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := natsbus.NewConsumer(wnc, natsbus.ConsumerSettings{
		Streams: streams, BatchSize: 50, Linger: 2 * time.Millisecond, AckWait: time.Second, PinnedTTL: 2 * time.Second,
		Heartbeat: 100 * time.Millisecond, MemberTTL: 700 * time.Millisecond, PurgeInterval: 200 * time.Millisecond,
		StopTimeout: 20 * time.Second,
	}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(c, h.store, worker.Config{TracerProvider: tp}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	runWorker(t, w, wnc)
	return h, exp
}

// spanSet indexes ended spans.
type spanSet []tracetest.SpanStub

func (s spanSet) named(name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, sp := range s {
		if sp.Name == name {
			out = append(out, sp)
		}
	}
	return out
}

// one returns the single span named name in trace tid (any trace when tid
// is invalid), failing when there is not exactly one.
func (s spanSet) one(t *testing.T, name string, tid trace.TraceID) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, sp := range s.named(name) {
		if !tid.IsValid() || sp.SpanContext.TraceID() == tid {
			found = append(found, sp)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans %q in trace %s, want 1; spans:\n%s", len(found), name, tid, s)
	}
	return found[0]
}

func (s spanSet) String() string {
	var b strings.Builder
	for _, sp := range s {
		fmt.Fprintf(&b, "  %s trace=%s span=%s parent=%s links=%d\n", sp.Name, sp.SpanContext.TraceID(),
			sp.SpanContext.SpanID(), sp.Parent.SpanID(), len(sp.Links))
	}
	return b.String()
}

func attr(sp tracetest.SpanStub, key string) (attribute.Value, bool) {
	for _, kv := range sp.Attributes {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func linksTo(sp tracetest.SpanStub, sc trace.SpanContext) bool {
	for _, l := range sp.Links {
		if l.SpanContext.TraceID() == sc.TraceID() && l.SpanContext.SpanID() == sc.SpanID() {
			return true
		}
	}
	return false
}

// awaitSpans polls exp until done holds for its spans.
func awaitSpans(t *testing.T, exp *tracetest.InMemoryExporter, done func(spanSet) bool) spanSet {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		spans := spanSet(exp.GetSpans())
		if done(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("spans never complete; have:\n%s", spans)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTraceOfOneTransfer follows one transfer through HTTP, NATS, the
// worker, Postgres and its outcome, and checks that it makes one connected
// trace rooted at the HTTP request, joined by a link to the batch that
// applied it, whose database spans are its children.
func TestTraceOfOneTransfer(t *testing.T) {
	t.Parallel()
	h, exp := tracedHarness(t)
	a, b := h.account("USD", "100"), h.account("USD", "")
	exp.Reset()

	id := uuid.New()
	r := h.do("POST", "/v1/transfers", transferJSON(id, a, b, "1.25", "USD"), "Prefer", "wait=30")
	expect(t, r, 201, "")
	if r.str("status") != "applied" {
		t.Fatalf("not applied: %s", r.raw)
	}

	// The worker ends its request's spans after the ack, which may come
	// after the client has its answer.
	spans := awaitSpans(t, exp, func(s spanSet) bool {
		return len(s.named("POST /v1/transfers")) == 1 && len(s.named("process wallet.requests")) == 1 &&
			len(s.named("send wallet.results")) == 1 && len(s.named("process batch")) >= 1
	})

	root := spans.one(t, "POST /v1/transfers", trace.TraceID{})
	tid := root.SpanContext.TraceID()
	if root.Parent.IsValid() || root.SpanKind != trace.SpanKindServer {
		t.Fatalf("HTTP span: parent %v, kind %v; want a server span at the root", root.Parent, root.SpanKind)
	}
	if v, _ := attr(root, "http.response.status_code"); v.AsInt64() != 201 {
		t.Errorf("HTTP span status code %v, want 201", v.String())
	}
	if v, _ := attr(root, "http.route"); v.AsString() != "/v1/transfers" {
		t.Errorf("HTTP span route %q", v.AsString())
	}
	if v, _ := attr(root, "wallet.trace_id"); v.AsString() != r.header.Get("X-Trace-Id") {
		t.Errorf("HTTP span request id %q, response's %q", v.AsString(), r.header.Get("X-Trace-Id"))
	}

	publish := spans.one(t, "send wallet.requests", tid)
	if publish.Parent.SpanID() != root.SpanContext.SpanID() || publish.SpanKind != trace.SpanKindProducer {
		t.Fatalf("publish span's parent %s, want the HTTP span %s", publish.Parent.SpanID(), root.SpanContext.SpanID())
	}
	if v, _ := attr(publish, "messaging.message.id"); v.AsString() != id.String() {
		t.Errorf("publish span message id %q, want %s", v.AsString(), id)
	}

	process := spans.one(t, "process wallet.requests", tid)
	if process.Parent.SpanID() != publish.SpanContext.SpanID() || !process.Parent.IsRemote() {
		t.Fatalf("worker's request span's parent %s, want the publish span %s, remote", process.Parent.SpanID(), publish.SpanContext.SpanID())
	}
	if v, _ := attr(process, "wallet.status"); v.AsString() != "applied" {
		t.Errorf("worker's request span status %q, want applied", v.AsString())
	}

	sent := spans.one(t, "send wallet.results", tid)
	if sent.Parent.SpanID() != process.SpanContext.SpanID() {
		t.Fatalf("outcome span's parent %s, want the worker's request span %s", sent.Parent.SpanID(), process.SpanContext.SpanID())
	}

	// The batch: its own trace, linked to the publish span; the request's
	// span links back to it.
	var batch tracetest.SpanStub
	for _, sp := range spans.named("process batch") {
		if linksTo(sp, publish.SpanContext) {
			batch = sp
		}
	}
	if !batch.SpanContext.IsValid() {
		t.Fatalf("no batch span links to the publish span:\n%s", spans)
	}
	if !linksTo(process, batch.SpanContext) {
		t.Errorf("the worker's request span does not link to its batch")
	}
	apply := spans.one(t, "ApplyBatch", batch.SpanContext.TraceID())
	if apply.Parent.SpanID() != batch.SpanContext.SpanID() {
		t.Fatalf("ApplyBatch's parent %s, want the batch span %s", apply.Parent.SpanID(), batch.SpanContext.SpanID())
	}
	statements := 0
	for _, sp := range spans {
		if sp.Parent.SpanID() == apply.SpanContext.SpanID() {
			statements++
		}
	}
	if statements == 0 {
		t.Errorf("ApplyBatch has no statement spans under it:\n%s", spans)
	}

	// One connected trace: every span of the transfer's trace hangs from
	// the HTTP span (the database reads the handler made included).
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, sp := range spans {
		if sp.SpanContext.TraceID() == tid {
			byID[sp.SpanContext.SpanID()] = sp
		}
	}
	for _, sp := range byID {
		for cur := sp; cur.SpanContext.SpanID() != root.SpanContext.SpanID(); {
			parent, ok := byID[cur.Parent.SpanID()]
			if !ok {
				t.Fatalf("span %q of the trace does not lead to the HTTP span (parent %s missing)", sp.Name, cur.Parent.SpanID())
			}
			cur = parent
		}
	}
	if len(byID) < 5 {
		t.Errorf("the transfer's trace has %d spans:\n%s", len(byID), spans)
	}

	// The outcome message carries the outcome span's context on.
	m, err := h.js.Stream(testCtx(t), natsbus.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := m.GetLastMsgForSubject(testCtx(t), natsbus.ResultSubject(id))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("00-%s-%s-01", tid, sent.SpanContext.SpanID())
	if got := stored.Header.Get(natsbus.HeaderTraceparent); got != want {
		t.Errorf("outcome traceparent %q, want %q", got, want)
	}
}

// TestTraceContinuesClientTrace checks that a client's own W3C traceparent
// makes the HTTP span its child, that a malformed one is ignored, and that
// probes are not traced.
func TestTraceContinuesClientTrace(t *testing.T) {
	t.Parallel()
	h, exp := tracedHarness(t)
	a, b := h.account("USD", "100"), h.account("USD", "")
	exp.Reset()

	const client = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	expect(t, h.do("POST", "/v1/transfers", transferJSON(uuid.New(), a, b, "1", "USD"), "traceparent", client), 202, "")
	expect(t, h.do("POST", "/v1/transfers", transferJSON(uuid.New(), a, b, "1", "USD"),
		"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-zz"), 202, "")

	expect(t, h.do("GET", "/healthz", ""), 200, "")

	spans := awaitSpans(t, exp, func(s spanSet) bool { return len(s.named("POST /v1/transfers")) == 2 })
	if probes := spans.named("GET /healthz"); len(probes) != 0 {
		t.Errorf("the liveness probe was traced")
	}
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	continued := spans.one(t, "POST /v1/transfers", tid)
	if continued.Parent.SpanID().String() != "b7ad6b7169203331" || !continued.Parent.IsRemote() {
		t.Errorf("HTTP span's parent %s, want the client's b7ad6b7169203331", continued.Parent.SpanID())
	}
	for _, sp := range spans.named("POST /v1/transfers") {
		if sp.SpanContext.TraceID() != tid && sp.Parent.IsValid() {
			t.Errorf("a malformed traceparent became the parent %s", sp.Parent.SpanID())
		}
	}
}
