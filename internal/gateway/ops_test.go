package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{Tokens: []Token{
		{Hash: tokenHash("reader-secret"), Scope: ScopeRead},
		{Hash: tokenHash("writer-secret"), Scope: ScopeWrite},
	}})
	a, b := h.account("USD", "10"), h.account("USD", "")
	body := transferJSON(uuid.New(), a, b, "1", "USD")

	r := h.do("GET", "/v1/currencies", "")
	expect(t, r, 401, CodeUnauthorized)
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
	expect(t, h.do("GET", "/v1/currencies", "", "Authorization", "Bearer wrong"), 401, CodeUnauthorized)
	expect(t, h.do("GET", "/v1/currencies", "", "Authorization", "Basic cmVhZGVyLXNlY3JldA=="), 401, CodeUnauthorized)
	expect(t, h.do("GET", "/v1/currencies", "", "Authorization", "Bearer reader-secret"), 200, "")
	expect(t, h.do("GET", "/openapi.json", "", "Authorization", "bearer writer-secret"), 200, "")
	expect(t, h.do("GET", "/accounts/", "", "Authorization", "Bearer reader-secret"), 200, "")

	expect(t, h.do("POST", "/v1/transfers", body), 401, CodeUnauthorized)
	forbidden := h.do("POST", "/v1/transfers", body, "Authorization", "Bearer reader-secret")
	expect(t, forbidden, 403, CodeForbidden)
	expect(t, h.do("POST", "/transfers/", body, "Authorization", "Bearer reader-secret"), 403, CodeForbidden)
	expect(t, h.do("POST", "/v1/accounts", `{"currency":"USD"}`, "Authorization", "Bearer reader-secret"), 403, CodeForbidden)
	if n := h.requests(); n != 0 {
		t.Fatalf("%d published without a write token", n)
	}
	expect(t, h.do("POST", "/v1/transfers", body, "Authorization", "Bearer writer-secret"), 202, "")

	// Probes stay open for the platform; metrics, served on the API's
	// port, need a token like every read.
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := h.do("GET", p, ""); r.status != 200 {
			t.Fatalf("%s: %d", p, r.status)
		}
	}
	expect(t, h.do("GET", "/metrics", ""), 401, CodeUnauthorized)
	if r := h.do("GET", "/metrics", "", "Authorization", "Bearer reader-secret"); r.status != 200 || !strings.Contains(string(r.raw), "wallet_gateway_") {
		t.Fatalf("metrics with a read token: %d", r.status)
	}
	if strings.Contains(string(forbidden.raw), "reader-secret") {
		t.Fatal("token echoed")
	}
}

func TestNATSDown(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{PublishTimeout: 300 * time.Millisecond})
	a, b := h.account("USD", "10"), h.account("USD", "")
	// Wait until the gateway's own connection has seen the server go, as
	// it has in a real outage: a publish sent before that is unanswered,
	// and its outcome is unknown (504), not unavailable.
	down := h.queue.Conn.StatusChanged(nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	h.nats.Shutdown()
	<-down

	r := h.do("POST", "/v1/transfers", transferJSON(uuid.New(), a, b, "1", "USD"))
	expect(t, r, 503, CodeServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	expect(t, h.do("GET", "/readyz", ""), 503, CodeServiceUnavailable)
	// Reads need only Postgres.
	expect(t, h.do("GET", "/v1/accounts/"+a.String(), ""), 200, "")
	expect(t, h.do("GET", "/healthz", ""), 200, "")
	legacy := h.do("POST", "/transfers/", `{"id":"`+uuid.NewString()+`","sender_account_id":"`+a.String()+
		`","receiver_account_id":"`+b.String()+`","amount":"1","currency_code":"USD"}`)
	if legacy.status != 503 || legacy.str("result") != "ERROR" || legacy.str("error") != string(CodeServiceUnavailable) {
		t.Fatalf("legacy: %d %s", legacy.status, legacy.raw)
	}
	if h.balance(a) != "10" {
		t.Fatal("balance changed")
	}
}

func TestPostgresDown(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	a, b := h.account("USD", "10"), h.account("USD", "")
	// Load the currencies, then lose the database: a closed pool fails
	// every query, as an unreachable server does.
	expect(t, h.do("GET", "/v1/currencies", ""), 200, "")
	h.store.Close()

	// A new id needs no database to be accepted: it waits in the stream
	// until the workers can apply it.
	expect(t, h.do("POST", "/v1/transfers", transferJSON(uuid.New(), a, b, "1", "USD")), 202, "")
	if n := h.requests(); n != 1 {
		t.Fatalf("%d stored while the database was down, want 1", n)
	}
	r := h.do("GET", "/v1/accounts/"+a.String(), "")
	expect(t, r, 503, CodeServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	expect(t, h.do("GET", "/v1/transfers/"+uuid.NewString(), ""), 503, CodeServiceUnavailable)
	expect(t, h.do("GET", "/readyz", ""), 503, CodeServiceUnavailable)
	if strings.Contains(string(r.raw), "closed pool") {
		t.Fatalf("cause leaked: %s", r.raw)
	}
}

func TestReadyAndDrain(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	expect(t, h.do("GET", "/healthz", ""), 200, "")
	expect(t, h.do("GET", "/readyz", ""), 200, "")

	a, b := h.account("USD", "10"), h.account("USD", "")
	waiting := make(chan reply, 1)
	go func() {
		waiting <- h.do("POST", "/v1/transfers", transferJSON(uuid.New(), a, b, "1", "USD"), "Prefer", "wait=30")
	}()
	// Drain once the request is published (it then waits for an outcome
	// no worker will produce); draining answers it at once.
	deadline := time.Now().Add(20 * time.Second)
	for h.requests() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("request never published")
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.g.Drain()
	select {
	case r := <-waiting:
		expect(t, r, 202, "")
	case <-time.After(20 * time.Second):
		t.Fatal("a waiting request was not released by Drain")
	}
	expect(t, h.do("GET", "/readyz", ""), 503, CodeServiceUnavailable)
	expect(t, h.do("GET", "/healthz", ""), 200, "")
	if !strings.Contains(h.metricsText(), `wallet_gateway_wait_outcomes_total{outcome="drained"} 1`) {
		t.Fatal("drained wait not counted")
	}
}

func (h *harness) metricsText() string {
	h.t.Helper()
	r := h.do("GET", "/metrics", "")
	if r.status != 200 {
		h.t.Fatalf("metrics: %d", r.status)
	}
	return string(r.raw)
}

func TestMetricsAndTraceID(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	a, b := h.account("USD", "10"), h.account("USD", "")
	r := h.do("POST", "/v1/transfers", transferJSON(uuid.New(), a, b, "1", "USD"))
	expect(t, r, 202, "")
	if id := r.header.Get("X-Trace-Id"); id == "" || r.header.Get("X-Request-Id") != "" {
		t.Fatalf("trace id generated: %q, old header %q", id, r.header.Get("X-Request-Id"))
	}
	// A trace id that could smuggle text into logs is replaced.
	bad := h.do("GET", "/v1/accounts/"+a.String(), "", "X-Trace-Id", "two words")
	if got := bad.header.Get("X-Trace-Id"); got == "" || got == "two words" {
		t.Fatalf("trace id %q", got)
	}
	// The header's old name is still read, and answered under both names.
	old := h.do("GET", "/v1/accounts/"+a.String(), "", "X-Request-Id", "trace-old")
	if old.header.Get("X-Trace-Id") != "trace-old" || old.header.Get("X-Request-Id") != "trace-old" {
		t.Fatalf("old header: %q / %q", old.header.Get("X-Trace-Id"), old.header.Get("X-Request-Id"))
	}
	// The new name wins over the old one.
	both := h.do("GET", "/v1/accounts/"+a.String(), "", "X-Trace-Id", "trace-new", "X-Request-Id", "trace-old")
	if both.header.Get("X-Trace-Id") != "trace-new" {
		t.Fatalf("both headers: %q", both.header.Get("X-Trace-Id"))
	}
	expect(t, h.do("GET", "/v1/accounts/nope", ""), 400, CodeInvalidField)
	expect(t, h.do("GET", "/no/such/route", ""), 404, CodeNotFound)

	text := h.metricsText()
	for _, want := range []string{
		`wallet_gateway_http_request_duration_seconds_count{method="POST",route="/v1/transfers",status="202"} 1`,
		`wallet_gateway_http_request_duration_seconds_count{method="GET",route="/v1/accounts/:id",status="400"} 1`,
		`wallet_gateway_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"} 1`,
		`wallet_gateway_publish_duration_seconds_count{result="ok"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s:\n%s", want, text)
		}
	}
}

// TestNewSharesMetrics builds two gateways on one registry, as a process
// that rebuilds its HTTP side does: the second reuses the series.
func TestNewSharesMetrics(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	if _, err := New(Config{}, dbtest.NewStore(t), h.nats.StartProducer(t, natsbus.BatcherConfig{}), zap.NewNop(), h.reg); err != nil {
		t.Fatal(err)
	}
}

func TestLegacyReads(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	older := h.account("USD", "5")
	newer := h.account("BTC", "0.5")
	r := h.do("GET", "/accounts/", "", "Content-Type", "")
	expect(t, r, 200, "")
	if r.str("result") != "OK" || r.str("error") != "" {
		t.Fatalf("envelope: %s", r.raw)
	}
	list := r.body["payload"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["id"] != newer.String() || list[1].(map[string]any)["id"] != older.String() ||
		list[0].(map[string]any)["currency_code"] != "BTC" || list[0].(map[string]any)["balance"] != "0.5" {
		t.Fatalf("accounts: %s", r.raw)
	}
	empty := h.do("GET", "/accounts/"+uuid.NewString()+"/transfers/", "")
	expect(t, empty, 200, "")
	if p, ok := empty.body["payload"].([]any); !ok || len(p) != 0 || empty.str("result") != "OK" {
		t.Fatalf("unknown account: %s", empty.raw)
	}
	bad := h.do("GET", "/accounts/x.y/transfers/", "")
	if bad.status != 400 || bad.str("result") != "ERROR" || bad.str("error") != string(CodeInvalidField) {
		t.Fatalf("bad id: %d %s", bad.status, bad.raw)
	}
	for _, path := range []string{"/accounts", "/accounts/" + older.String() + "/transfers"} {
		if r := h.do("GET", path, ""); r.status != 200 || r.str("result") != "OK" {
			t.Fatalf("%s without trailing slash: %d", path, r.status)
		}
	}
	// A legacy body the gateway cannot read keeps its 4xx, in the envelope.
	mal := h.do("POST", "/transfers/", `{"id":`)
	if mal.status != 400 || mal.str("result") != "ERROR" || mal.str("error") != string(CodeMalformedJSON) {
		t.Fatalf("malformed: %d %s", mal.status, mal.raw)
	}
	// A business rule broken before publishing is HTTP 200 with the code.
	same := h.do("POST", "/transfers/", `{"id":"`+uuid.NewString()+`","sender_account_id":"`+older.String()+
		`","receiver_account_id":"`+older.String()+`","amount":1,"currency_code":"USD"}`)
	if same.status != 200 || same.str("result") != "ERROR" || same.str("error") != string(transfer.CodeAccountsMustBeDifferent) {
		t.Fatalf("same account: %d %s", same.status, same.raw)
	}
	if n := h.requests(); n != 0 {
		t.Fatalf("%d published", n)
	}
}
