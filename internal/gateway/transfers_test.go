package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

func TestSubmitIsPendingWithoutWorker(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	a, b := h.account("USD", "100"), h.account("USD", "")
	id := uuid.New()
	body := transferJSON(id, a, b, "10.005", "usd")

	r := h.do("POST", "/v1/transfers", body, "X-Trace-Id", "trace-42")
	expect(t, r, 202, "")
	if r.header.Get("Location") != "/v1/transfers/"+id.String() || r.header.Get("X-Trace-Id") != "trace-42" {
		t.Fatalf("headers: %v", r.header)
	}
	if r.str("status") != "pending" || r.str("id") != id.String() || r.str("amount") != "10.01" ||
		r.str("currency") != "USD" || r.str("from_account_id") != a.String() || r.str("accepted_at") == "" {
		t.Fatalf("body: %s", r.raw)
	}
	if n := h.requests(); n != 1 {
		t.Fatalf("%d messages in the stream", n)
	}
	// The message carries the trace id and the contract's subject.
	s, _ := h.js.Stream(testCtx(t), natsbus.RequestsStream)
	m, err := s.GetMsg(testCtx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(natsbus.HeaderTraceID) != "trace-42" || m.Header.Get(natsbus.HeaderMsgID) != id.String() ||
		!strings.HasSuffix(m.Subject, "."+id.String()+"."+a.String()) {
		t.Fatalf("message %s %v", m.Subject, m.Header)
	}

	got := h.do("GET", "/v1/transfers/"+strings.ToUpper(id.String()), "")
	expect(t, got, 200, "")
	if got.str("status") != "pending" || got.str("accepted_at") == "" || got.str("amount") != "10.01" ||
		got.str("to_account_id") != b.String() || got.body["processed_at"] != nil {
		t.Fatalf("status: %s", got.raw)
	}

	// A duplicate while pending is accepted again; the stream drops it.
	expect(t, h.do("POST", "/v1/transfers", body), 202, "")
	// The same id with other fields is a conflict, shown with what is stored.
	c := h.do("POST", "/v1/transfers", transferJSON(id, a, b, "11", "USD"))
	expect(t, c, 409, transfer.CodeTransferIDConflict)
	if tr, _ := c.body["transfer"].(map[string]any); tr["amount"] != "10.01" || tr["status"] != "pending" {
		t.Fatalf("conflict body: %s", c.raw)
	}
	if n := h.requests(); n != 1 {
		t.Fatalf("%d messages after duplicates", n)
	}

	// Prefer: wait with no worker running runs out and answers 202.
	waited := h.do("POST", "/v1/transfers", transferJSON(uuid.New(), a, b, "1", "USD"), "Prefer", "wait=1")
	expect(t, waited, 202, "")
	if waited.header.Get("Preference-Applied") != "wait=1" || waited.str("status") != "pending" {
		t.Fatalf("wait: %v %s", waited.header, waited.raw)
	}

	dep := h.do("POST", "/v1/deposits", `{"id":"`+uuid.NewString()+`","account_id":"`+b.String()+`","amount":"5","currency":"USD"}`)
	expect(t, dep, 202, "")
	if dep.str("kind") != "deposit" || dep.str("account_id") != b.String() || dep.body["from_account_id"] != nil {
		t.Fatalf("deposit: %s", dep.raw)
	}
	wd := h.do("POST", "/v1/withdrawals", `{"id":"`+uuid.NewString()+`","account_id":"`+a.String()+`","amount":"5","currency":"USD"}`)
	expect(t, wd, 202, "")
	if wd.str("kind") != "withdrawal" || wd.str("account_id") != a.String() {
		t.Fatalf("withdrawal: %s", wd.raw)
	}
	if n := h.requests(); n != 4 {
		t.Fatalf("%d messages, want 4", n)
	}
	if h.transfers() != 1 { // the funding deposit only
		t.Fatal("a submission reached the database without a worker")
	}

	expect(t, h.do("GET", "/v1/transfers/"+uuid.NewString(), ""), 404, CodeNotFound)
	expect(t, h.do("GET", "/v1/transfers/a.b.>", ""), 400, CodeInvalidField)
}

func TestPreferWaitIsCapped(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{MaxWait: time.Second})
	a, b := h.account("USD", "100"), h.account("USD", "")
	r := h.do("POST", "/v1/transfers", transferJSON(uuid.New(), a, b, "1", "USD"), "Prefer", "respond-async, wait=3600")
	expect(t, r, 202, "")
	if r.header.Get("Preference-Applied") != "wait=1" {
		t.Fatalf("Preference-Applied %q", r.header.Get("Preference-Applied"))
	}
	// A malformed preference is ignored, as RFC 7240 allows.
	r = h.do("POST", "/v1/transfers", transferJSON(uuid.New(), a, b, "1", "USD"), "Prefer", "wait=soon")
	expect(t, r, 202, "")
	if r.header.Get("Preference-Applied") != "" {
		t.Fatalf("Preference-Applied %q", r.header.Get("Preference-Applied"))
	}
}

func TestResubmitDecided(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	a, b := h.account("USD", "100"), h.account("USD", "")
	applied := transfer.Request{ID: uuid.New(), Kind: transfer.KindTransfer, From: a, To: b, Amount: decimal.RequireFromString("60"), Currency: "USD"}
	rejected := transfer.Request{ID: uuid.New(), Kind: transfer.KindTransfer, From: a, To: b, Amount: decimal.RequireFromString("60"), Currency: "USD"}
	h.apply(applied, rejected)
	// The gateway reads the database before publishing only for ids it has
	// seen decided (TestResubmitDecidedUnknown covers the others).
	for _, id := range []uuid.UUID{applied.ID, rejected.ID} {
		expect(t, h.do("GET", "/v1/transfers/"+id.String(), ""), 200, "")
	}

	// Trailing zeros and case do not make a different request.
	r := h.do("POST", "/v1/transfers", transferJSON(applied.ID, a, b, "60.000", "usd"), "Prefer", "wait=5")
	expect(t, r, 200, "")
	if r.str("status") != "applied" || r.str("amount") != "60.00" || r.str("processed_at") == "" ||
		r.header.Get("Location") != "/v1/transfers/"+applied.ID.String() {
		t.Fatalf("resubmitted applied: %s", r.raw)
	}
	c := h.do("POST", "/v1/transfers", transferJSON(applied.ID, a, b, "61", "USD"))
	expect(t, c, 409, transfer.CodeTransferIDConflict)
	if tr, _ := c.body["transfer"].(map[string]any); tr["status"] != "applied" || tr["amount"] != "60.00" {
		t.Fatalf("conflict: %s", c.raw)
	}
	rej := h.do("POST", "/v1/transfers", transferJSON(rejected.ID, a, b, "60", "USD"))
	expect(t, rej, 422, transfer.CodeInsufficientFunds)
	if tr, _ := rej.body["transfer"].(map[string]any); tr["status"] != "rejected" || tr["reason"] != "insufficient_funds" ||
		rej.str("field") != "from_account_id" {
		t.Fatalf("rejected: %s", rej.raw)
	}
	if n := h.requests(); n != 0 {
		t.Fatalf("decided ids were published: %d messages", n)
	}

	got := h.do("GET", "/v1/transfers/"+rejected.ID.String(), "")
	expect(t, got, 200, "")
	if got.str("status") != "rejected" || got.str("reason") != "insufficient_funds" || got.str("accepted_at") == "" {
		t.Fatalf("get rejected: %s", got.raw)
	}
	if h.balance(a) != "40" || h.balance(b) != "60" {
		t.Fatalf("balances %s %s", h.balance(a), h.balance(b))
	}
}

// TestResubmitDecidedUnknown: an id decided without the gateway seeing it
// (through another gateway, or before a restart) is published again, and
// the workers replay its recorded outcome: a client that waits gets it, as
// a resubmission (200), and nothing is applied twice.
func TestResubmitDecidedUnknown(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	h.startWorker()
	a, b := h.account("USD", "100"), h.account("USD", "")
	applied := transfer.Request{ID: uuid.New(), Kind: transfer.KindTransfer, From: a, To: b, Amount: decimal.RequireFromString("60"), Currency: "USD"}
	h.apply(applied)

	r := h.do("POST", "/v1/transfers", transferJSON(applied.ID, a, b, "60", "USD"), "Prefer", "wait=30")
	expect(t, r, 200, "")
	if r.str("status") != "applied" || r.str("amount") != "60.00" {
		t.Fatalf("resubmitted applied: %s", r.raw)
	}
	c := h.do("POST", "/v1/transfers", transferJSON(applied.ID, a, b, "61", "USD"))
	expect(t, c, 409, transfer.CodeTransferIDConflict)
	if h.balance(a) != "40" || h.balance(b) != "60" {
		t.Fatalf("balances %s %s", h.balance(a), h.balance(b))
	}
}

// TestWaitersAreCapped: with MaxWaiters waiting already, a further
// Prefer: wait request is accepted and answered 202 at once (no
// Preference-Applied), and a 2020 POST is answered transfer_pending at once;
// both are stored, and the refusals to wait are counted.
func TestWaitersAreCapped(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{MaxWaiters: 1, MaxWait: time.Minute, LegacyWait: time.Minute})
	a, b := h.account("USD", "100"), h.account("USD", "")
	first := make(chan reply, 1)
	go func() {
		first <- h.do("POST", "/v1/transfers", transferJSON(uuid.New(), a, b, "1", "USD"), "Prefer", "wait=60")
	}()
	deadline := time.Now().Add(30 * time.Second)
	for h.metric("wallet_gateway_waiters") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first request never started waiting")
		}
		time.Sleep(10 * time.Millisecond)
	}

	r := h.do("POST", "/v1/transfers", transferJSON(uuid.New(), a, b, "1", "USD"), "Prefer", "wait=60")
	expect(t, r, 202, "")
	if r.str("status") != "pending" || r.header.Get("Preference-Applied") != "" {
		t.Fatalf("over the cap: %v %s", r.header, r.raw)
	}
	legacy := h.do("POST", "/transfers/", `{"id":"`+uuid.NewString()+`","sender_account_id":"`+a.String()+
		`","receiver_account_id":"`+b.String()+`","amount":"1","currency_code":"USD"}`)
	if legacy.status != 202 || legacy.str("result") != "ERROR" || legacy.str("error") != string(CodeTransferPending) ||
		legacy.header.Get("Retry-After") == "" {
		t.Fatalf("2020 API over the cap: %d %v %s", legacy.status, legacy.header, legacy.raw)
	}
	select {
	case r := <-first:
		t.Fatalf("the first waiter ended before the others were answered: %d %s", r.status, r.raw)
	default:
	}
	if got := h.metric("wallet_gateway_waits_over_cap_total"); got != 2 {
		t.Fatalf("over-cap count %v, want 2", got)
	}
	if n := h.requests(); n != 3 {
		t.Fatalf("%d requests stored, want 3", n)
	}
	h.g.Drain()
	expect(t, <-first, 202, "")
	if got := h.metric("wallet_gateway_waiters"); got != 0 {
		t.Fatalf("waiters after the wait: %v", got)
	}
}
