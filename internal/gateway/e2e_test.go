package gateway

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// These tests run the whole write path: the gateway publishes to an
// embedded JetStream server, an in-process worker applies the requests to
// Postgres and publishes the outcomes.

func deposit(h *harness, account uuid.UUID, amount, currency string) {
	h.t.Helper()
	r := h.do("POST", "/v1/deposits", `{"id":"`+uuid.NewString()+`","account_id":"`+account.String()+
		`","amount":"`+amount+`","currency":"`+currency+`"}`, "Prefer", "wait=30")
	expect(h.t, r, 201, "")
}

func newAccount(h *harness, currency string) uuid.UUID {
	h.t.Helper()
	r := h.do("POST", "/v1/accounts", `{"currency":"`+currency+`"}`)
	expect(h.t, r, 201, "")
	return uuid.MustParse(r.str("id"))
}

func TestEndToEndSubmitPollApplied(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	a, b := newAccount(h, "USD"), newAccount(h, "USD")

	// Accepted while no worker runs: pending, and it stays so.
	fund := uuid.New()
	r := h.do("POST", "/v1/deposits", `{"id":"`+fund.String()+`","account_id":"`+a.String()+`","amount":"500","currency":"USD"}`)
	expect(t, r, 202, "")
	move := uuid.New()
	expect(t, h.do("POST", "/v1/transfers", transferJSON(move, a, b, "100.111", "USD")), 202, "")
	for _, id := range []uuid.UUID{fund, move} {
		if got := h.do("GET", "/v1/transfers/"+id.String(), ""); got.str("status") != "pending" {
			t.Fatalf("before the worker: %s", got.raw)
		}
	}

	h.startWorker()
	done := h.poll("/v1/transfers/"+move.String(), func(r reply) bool { return r.str("status") == "applied" })
	if done.str("amount") != "100.11" || done.str("processed_at") == "" || done.str("accepted_at") == "" ||
		done.str("from_account_id") != a.String() || done.str("to_account_id") != b.String() {
		t.Fatalf("applied: %s", done.raw)
	}
	if got := h.do("GET", "/v1/accounts/"+a.String(), ""); got.str("balance") != "399.89" {
		t.Fatalf("balance a: %s", got.raw)
	}
	entries := h.do("GET", "/v1/accounts/"+b.String()+"/entries", "")
	if data := entries.body["data"].([]any); len(data) != 1 || data[0].(map[string]any)["transfer_id"] != move.String() ||
		data[0].(map[string]any)["direction"] != "credit" || data[0].(map[string]any)["balance_after"] != "100.11" {
		t.Fatalf("entries: %s", entries.raw)
	}

	// Prefer: wait gets the outcome in the response.
	quick := uuid.New()
	w := h.do("POST", "/v1/transfers", transferJSON(quick, b, a, "0.11", "USD"), "Prefer", "wait=30")
	expect(t, w, 201, "")
	if w.str("status") != "applied" || w.header.Get("Preference-Applied") != "wait=30" ||
		w.header.Get("Location") != "/v1/transfers/"+quick.String() {
		t.Fatalf("wait: %v %s", w.header, w.raw)
	}
	broke := h.do("POST", "/v1/withdrawals", `{"id":"`+uuid.NewString()+`","account_id":"`+b.String()+
		`","amount":"1000","currency":"USD"}`, "Prefer", "wait=30")
	expect(t, broke, 422, transfer.CodeInsufficientFunds)
	if tr := broke.body["transfer"].(map[string]any); tr["status"] != "rejected" || tr["account_id"] != b.String() {
		t.Fatalf("rejection: %s", broke.raw)
	}
	wrong := h.do("POST", "/v1/deposits", `{"id":"`+uuid.NewString()+`","account_id":"`+b.String()+
		`","amount":"1","currency":"EUR"}`, "Prefer", "wait=30")
	expect(t, wrong, 422, transfer.CodeAccountWrongCurrency)

	// Resubmissions: the known outcome, nothing published; other fields: 409.
	before := h.requests()
	expect(t, h.do("POST", "/v1/transfers", transferJSON(quick, b, a, "0.110", "usd"), "Prefer", "wait=30"), 200, "")
	expect(t, h.do("POST", "/v1/transfers", transferJSON(quick, b, a, "0.12", "USD")), 409, transfer.CodeTransferIDConflict)
	if after := h.requests(); after > before {
		t.Fatalf("resubmissions were published: %d -> %d messages", before, after)
	}
	if got := h.do("GET", "/v1/accounts/"+b.String(), ""); got.str("balance") != "100.00" {
		t.Fatalf("balance b: %s", got.raw)
	}
	if text := h.metricsText(); !contains(text, `wallet_gateway_wait_outcomes_total{outcome="applied"}`) ||
		!contains(text, `wallet_gateway_wait_outcomes_total{outcome="rejected"} 2`) {
		t.Fatalf("wait metrics:\n%s", text)
	}
}

// TestEndToEndConcurrentDuplicates submits one request from many clients
// at once: it is applied once, and every client learns it was applied.
func TestEndToEndConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	h.startWorker()
	a, b := newAccount(h, "EUR"), newAccount(h, "EUR")
	deposit(h, a, "10", "EUR")
	body := transferJSON(uuid.New(), a, b, "7", "EUR")
	const clients = 12
	var wg sync.WaitGroup
	statuses := make(chan int, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- h.do("POST", "/v1/transfers", body, "Prefer", "wait=30").status
		}()
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 200 && s != 201 {
			t.Fatalf("a duplicate got %d", s)
		}
	}
	if got := h.do("GET", "/v1/accounts/"+a.String(), ""); got.str("balance") != "3.00" {
		t.Fatalf("applied more than once: %s", got.raw)
	}
}

// TestEndToEndConflictWhilePending: the same id with other fields while the
// first is waiting in the stream is refused; the first is applied.
func TestEndToEndConflictWhilePending(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	a, b := newAccount(h, "USD"), newAccount(h, "USD")
	fund := `{"id":"` + uuid.NewString() + `","account_id":"` + a.String() + `","amount":"50","currency":"USD"}`
	expect(t, h.do("POST", "/v1/deposits", fund), 202, "")
	id := uuid.New()
	expect(t, h.do("POST", "/v1/transfers", transferJSON(id, a, b, "20", "USD")), 202, "")
	expect(t, h.do("POST", "/v1/transfers", transferJSON(id, a, b, "30", "USD"), "Prefer", "wait=1"), 409, transfer.CodeTransferIDConflict)
	h.startWorker()
	h.poll("/v1/transfers/"+id.String(), func(r reply) bool { return r.str("status") == "applied" && r.str("amount") == "20.00" })
	expect(t, h.do("POST", "/v1/transfers", transferJSON(id, a, b, "30", "USD")), 409, transfer.CodeTransferIDConflict)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestEndToEndIDTakenByMalformedMessage: a producer published something
// that is not a request under an id (the workers dead-letter it), then the
// real request comes through HTTP within the stream's dedupe window. The
// stream drops it as a duplicate of the malformed message; the gateway must
// still get it stored and applied rather than answer 202 for nothing. The
// same holds for a body filed under another account's subject.
func TestEndToEndIDTakenByMalformedMessage(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	h.startWorker()
	a, other := newAccount(h, "USD"), newAccount(h, "USD")
	for _, poison := range []func(id uuid.UUID) *nats.Msg{
		func(id uuid.UUID) *nats.Msg {
			m := nats.NewMsg(natsbus.RequestSubject(a, id))
			m.Data = []byte(`{"v":1,"kind":"deposit","id":"` + id.String() + `","account_id":"` + a.String() + `","amount":12.5,"currency":"USD"}`)
			return m
		},
		func(id uuid.UUID) *nats.Msg {
			m := nats.NewMsg(natsbus.RequestSubject(other, id))
			m.Data = []byte(`{"v":1,"kind":"deposit","id":"` + id.String() + `","account_id":"` + a.String() + `","amount":"12.5","currency":"USD"}`)
			return m
		},
	} {
		id := uuid.New()
		m := poison(id)
		m.Header.Set(natsbus.HeaderMsgID, id.String())
		if _, err := h.js.PublishMsg(testCtx(t), m); err != nil {
			t.Fatal(err)
		}
		body := `{"id":"` + id.String() + `","account_id":"` + a.String() + `","amount":"12.5","currency":"USD"}`
		r := h.do("POST", "/v1/deposits", body, "Prefer", "wait=30")
		expect(t, r, 201, "")
		if r.str("status") != "applied" {
			t.Fatalf("deposit %s: %s", id, r.raw)
		}
		// A retry answers from the database.
		expect(t, h.do("POST", "/v1/deposits", body), 200, "")
	}
	if got := h.do("GET", "/v1/accounts/"+a.String(), ""); got.str("balance") != "25.00" {
		t.Fatalf("balance: %s", got.raw)
	}
}

// TestConflictAfterMalformedThenValid: a producer's malformed message takes
// an id, the real request is then stored under a message id of its own, and
// a third request with other fields under the same id must be told 409:
// the stream holds a valid request for the id, and it is the one that will
// be applied. No worker runs, so all three stay in the stream.
func TestConflictAfterMalformedThenValid(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	a := newAccount(h, "USD")
	id := uuid.New()
	m := nats.NewMsg(natsbus.RequestSubject(a, id))
	m.Data = []byte(`{"v":1,"kind":"deposit","id":"` + id.String() + `","account_id":"` + a.String() + `","amount":12.5,"currency":"USD"}`)
	m.Header.Set(natsbus.HeaderMsgID, id.String())
	if _, err := h.js.PublishMsg(testCtx(t), m); err != nil {
		t.Fatal(err)
	}
	valid := `{"id":"` + id.String() + `","account_id":"` + a.String() + `","amount":"12.5","currency":"USD"}`
	expect(t, h.do("POST", "/v1/deposits", valid), 202, "")
	other := `{"id":"` + id.String() + `","account_id":"` + a.String() + `","amount":"99","currency":"USD"}`
	r := h.do("POST", "/v1/deposits", other)
	expect(t, r, 409, transfer.CodeTransferIDConflict)
	if tr, _ := r.body["transfer"].(map[string]any); tr["amount"] != "12.50" {
		t.Fatalf("conflict shows %v, want the stored request of 12.50", r.body["transfer"])
	}
	// The same fields again are still the pending request.
	expect(t, h.do("POST", "/v1/deposits", valid), 202, "")
	if got := h.do("GET", "/v1/transfers/"+id.String(), ""); got.str("amount") != "12.50" || got.str("status") != "pending" {
		t.Fatalf("GET: %s", got.raw)
	}
}

// TestConflictBeyondDedupeWindow: a request still pending after the
// stream's dedupe window (a backlog during an outage) and a new request
// with other fields under the same id: the second is told 409, as for a
// conflict within the window, and nothing more is stored; the same fields
// again are 202 without a second copy.
func TestConflictBeyondDedupeWindow(t *testing.T) {
	t.Parallel()
	h := setupStreams(t, Config{}, natsbus.Config{Partitions: 4, Duplicates: time.Second})
	a := newAccount(h, "USD")
	id := uuid.New()
	first := `{"id":"` + id.String() + `","account_id":"` + a.String() + `","amount":"5","currency":"USD"}`
	expect(t, h.do("POST", "/v1/deposits", first), 202, "")
	// Past the window: JetStream no longer knows the id.
	time.Sleep(1500 * time.Millisecond)
	other := `{"id":"` + id.String() + `","account_id":"` + a.String() + `","amount":"6","currency":"USD"}`
	r := h.do("POST", "/v1/deposits", other)
	expect(t, r, 409, transfer.CodeTransferIDConflict)
	if tr, _ := r.body["transfer"].(map[string]any); tr["amount"] != "5.00" {
		t.Fatalf("conflict shows %v, want the pending request of 5.00", r.body["transfer"])
	}
	expect(t, h.do("POST", "/v1/deposits", first), 202, "")
	if n := h.requests(); n != 1 {
		t.Fatalf("%d messages stored, want 1", n)
	}
}
