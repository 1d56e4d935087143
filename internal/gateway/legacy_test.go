package gateway

import (
	"strconv"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// legacyClient speaks the 2020 API as its clients did, amounts as they come
// (a JSON number or a string). Without a token the body must be typed JSON
// (TestLegacyWriteNeedsJSONWithoutToken covers the untyped, tokened call).
type legacyClient struct {
	t *testing.T
	h *harness
}

func (c legacyClient) post(id, from, to uuid.UUID, amount, currency string) reply {
	c.t.Helper()
	return c.h.do("POST", "/transfers/", `{"id":"`+id.String()+`","sender_account_id":"`+from.String()+
		`","receiver_account_id":"`+to.String()+`","amount":`+amount+`,"currency_code":"`+currency+`"}`)
}

func (c legacyClient) ok(r reply) {
	c.t.Helper()
	if r.status != 200 || r.str("result") != "OK" || r.str("error") != "" || r.body["payload"] != nil {
		c.t.Fatalf("want OK: %d %s", r.status, r.raw)
	}
}

func (c legacyClient) fail(r reply, code transfer.Code) {
	c.t.Helper()
	if r.status != 200 || r.str("result") != "ERROR" || r.str("error") != string(code) {
		c.t.Fatalf("want ERROR %s: %d %s", code, r.status, r.raw)
	}
}

// list GETs a 2020 list and returns its payload.
func (c legacyClient) list(path string) []map[string]any {
	c.t.Helper()
	r := c.h.do("GET", path, "")
	if r.status != 200 || r.str("result") != "OK" {
		c.t.Fatalf("GET %s: %d %s", path, r.status, r.raw)
	}
	raw, ok := r.body["payload"].([]any)
	if !ok {
		c.t.Fatalf("GET %s: payload %s", path, r.raw)
	}
	out := make([]map[string]any, len(raw))
	for i, v := range raw {
		out[i] = v.(map[string]any)
	}
	return out
}

// TestOriginalScenario plays the 2020 service's own integration scenario,
// step by step, through its API.
func TestOriginalScenario(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	h.startWorker()
	c := legacyClient{t, h}
	usd1000, usd100 := newAccount(h, "USD"), newAccount(h, "USD")
	eur100, eur0 := newAccount(h, "EUR"), newAccount(h, "EUR")
	btc1, btc0 := newAccount(h, "BTC"), newAccount(h, "BTC")
	deposit(h, usd1000, "1000", "USD")
	deposit(h, usd100, "100.00", "USD")
	deposit(h, eur100, "100", "EUR")
	deposit(h, btc1, "1", "BTC")

	// 1. The six accounts, balances printed as stored.
	want := map[string]string{usd1000.String(): "1000", usd100.String(): "100", eur100.String(): "100",
		eur0.String(): "0", btc1.String(): "1", btc0.String(): "0"}
	accounts := c.list("/accounts/")
	if len(accounts) != len(want) {
		t.Fatalf("step 1: %d accounts, want 6", len(accounts))
	}
	for _, a := range accounts {
		if want[a["id"].(string)] != a["balance"] {
			t.Fatalf("step 1: account %v, want balance %q", a, want[a["id"].(string)])
		}
	}

	// 2-4. One id: rejected twice, for different reasons, then applied;
	// a last retry answers OK without moving money again.
	x := uuid.New()
	c.fail(c.post(x, usd1000, btc1, "1", "USD"), transfer.CodeReceiverAccountWrongCurrency)
	c.fail(c.post(x, usd1000, usd100, "1001", "USD"), transfer.CodeInsufficientFunds)
	c.ok(c.post(x, usd1000, usd100, "100.111", "usd"))
	c.ok(c.post(x, usd1000, usd100, `"100.111"`, "USD"))

	// 5. Balances and statements.
	balances := map[string]string{}
	for _, a := range c.list("/accounts/") {
		balances[a["id"].(string)] = a["balance"].(string)
	}
	if balances[usd1000.String()] != "899.89" || balances[usd100.String()] != "200.11" {
		t.Fatalf("step 5: balances %v", balances)
	}
	sender := c.list("/accounts/" + usd1000.String() + "/transfers/")
	if len(sender) != 2 || sender[0]["id"] != x.String() || sender[0]["type"] != "INTERNAL" || sender[0]["direction"] != "OUTGOING" ||
		sender[0]["amount"] != "100.11" || sender[0]["corresponding_account_id"] != usd100.String() ||
		sender[1]["type"] != "DEPOSIT" || sender[1]["direction"] != "INCOMING" || sender[1]["amount"] != "1000" ||
		sender[1]["corresponding_account_id"] != nil {
		t.Fatalf("step 5: sender's transfers %v", sender)
	}
	receiver := c.list("/accounts/" + usd100.String() + "/transfers/")
	if len(receiver) != 2 || receiver[0]["id"] != x.String() || receiver[0]["direction"] != "INCOMING" || receiver[0]["amount"] != "100.11" ||
		receiver[1]["type"] != "DEPOSIT" || receiver[1]["direction"] != "INCOMING" || receiver[1]["amount"] != "100" {
		t.Fatalf("step 5: receiver's transfers %v", receiver)
	}

	// The v1 API shows the id's one decision, the applied one.
	v1 := h.do("GET", "/v1/transfers/"+x.String(), "")
	if v1.str("status") != "applied" || v1.str("amount") != "100.11" || v1.str("to_account_id") != usd100.String() {
		t.Fatalf("v1 view: %s", v1.raw)
	}
}

// TestLegacyAndV1RulesMeet: a v1 rejection is final for v1 and retried
// afresh by the 2020 API; a 2020 rejection is final for v1 too.
func TestLegacyAndV1RulesMeet(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	h.startWorker()
	c := legacyClient{t, h}
	a, b := newAccount(h, "USD"), newAccount(h, "USD")
	deposit(h, a, "10", "USD")

	id := uuid.New()
	expect(t, h.do("POST", "/v1/transfers", transferJSON(id, a, b, "50", "USD"), "Prefer", "wait=30"), 422, transfer.CodeInsufficientFunds)
	expect(t, h.do("POST", "/v1/transfers", transferJSON(id, a, b, "50", "USD")), 422, transfer.CodeInsufficientFunds)
	expect(t, h.do("POST", "/v1/transfers", transferJSON(id, a, b, "5", "USD")), 409, transfer.CodeTransferIDConflict)
	c.ok(c.post(id, a, b, "5", "USD"))
	got := h.do("GET", "/v1/transfers/"+id.String(), "")
	if got.str("status") != "applied" || got.str("amount") != "5.00" {
		t.Fatalf("after the 2020 retry: %s", got.raw)
	}
	expect(t, h.do("POST", "/v1/transfers", transferJSON(id, a, b, "5", "USD")), 200, "")
	expect(t, h.do("POST", "/v1/transfers", transferJSON(id, a, b, "50", "USD")), 409, transfer.CodeTransferIDConflict)

	other := uuid.New()
	c.fail(c.post(other, a, b, "500", "USD"), transfer.CodeInsufficientFunds)
	expect(t, h.do("POST", "/v1/transfers", transferJSON(other, a, b, "500", "USD")), 422, transfer.CodeInsufficientFunds)
	expect(t, h.do("POST", "/v1/transfers", transferJSON(other, a, b, "1", "USD")), 409, transfer.CodeTransferIDConflict)
	if got := h.do("GET", "/v1/transfers/"+other.String(), ""); got.str("status") != "rejected" || got.str("reason") != string(transfer.CodeInsufficientFunds) {
		t.Fatalf("2020 rejection seen through v1: %s", got.raw)
	}
	if h.balance(a) != "5" || h.balance(b) != "5" {
		t.Fatalf("balances %s / %s", h.balance(a), h.balance(b))
	}
}

// TestLegacyConcurrentRetries: simultaneous 2020 retries of a rejected id,
// some with the fields that now succeed, move the money once.
func TestLegacyConcurrentRetries(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	h.startWorker()
	c := legacyClient{t, h}
	const clients, ids = 6, 5
	a, b := newAccount(h, "USD"), newAccount(h, "USD")
	for round := 0; round < ids; round++ {
		id := uuid.New()
		c.fail(c.post(id, a, b, "7", "USD"), transfer.CodeInsufficientFunds)
		deposit(h, a, "7", "USD")
		var wg sync.WaitGroup
		replies := make([]reply, clients)
		for i := range replies {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				replies[i] = c.post(id, a, b, "7", "USD")
			}(i)
		}
		wg.Wait()
		for _, r := range replies {
			c.ok(r)
		}
	}
	if h.balance(a) != "0" || h.balance(b) != strconv.Itoa(7*ids) {
		t.Fatalf("balances %s / %s, want 0 / %d", h.balance(a), h.balance(b), 7*ids)
	}
}

// TestLegacyContract covers the rest of the original contract: codes and
// their precedence, currency case, amounts as strings or numbers, the 100
// caps and the order of the lists.
func TestLegacyContract(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	h.startWorker()
	c := legacyClient{t, h}
	usd, usd2, eur := h.account("USD", "10"), h.account("usd", ""), h.account("EUR", "10")
	missing := uuid.New()

	for i, tc := range []struct {
		id             uuid.UUID
		from, to       uuid.UUID
		amount, cur    string
		want           transfer.Code
		beforePublish  bool
		wantStatusHTTP int
	}{
		{uuid.Nil, usd, usd2, "1", "USD", transfer.CodeTransferIDIsEmpty, true, 200},
		{uuid.New(), uuid.Nil, usd2, "1", "USD", transfer.CodeSenderAccountIDIsEmpty, true, 200},
		{uuid.New(), usd, uuid.Nil, "1", "USD", transfer.CodeReceiverAccountIDIsEmpty, true, 200},
		{uuid.New(), usd, usd, "-1", "GBP", transfer.CodeAccountsMustBeDifferent, true, 200},
		{uuid.New(), usd, usd2, "-1", "GBP", transfer.CodeTransferAmountMustBePositive, true, 200},
		{uuid.New(), usd, usd2, "1", "GBP", transfer.CodeCurrencyNotSupported, true, 200},
		{uuid.New(), usd, usd2, "0.004", "USD", transfer.CodeTransferAmountMustBePositive, true, 200},
		{uuid.New(), missing, uuid.New(), "1", "USD", transfer.CodeSenderAccountNotExist, false, 200},
		{uuid.New(), usd, missing, "100", "EUR", transfer.CodeReceiverAccountNotExist, false, 200},
		{uuid.New(), eur, usd, "100", "USD", transfer.CodeSenderAccountWrongCurrency, false, 200},
		{uuid.New(), usd, eur, "100", "USD", transfer.CodeReceiverAccountWrongCurrency, false, 200},
		{uuid.New(), usd, usd2, "100", "USD", transfer.CodeInsufficientFunds, false, 200},
	} {
		published := h.lastSeq()
		r := c.post(tc.id, tc.from, tc.to, tc.amount, tc.cur)
		if tc.id == uuid.Nil {
			r = h.do("POST", "/transfers/", `{"sender_account_id":"`+usd.String()+`","receiver_account_id":"`+usd2.String()+
				`","amount":1,"currency_code":"USD"}`)
		}
		c.fail(r, tc.want)
		if got := h.lastSeq() - published; tc.beforePublish != (got == 0) {
			t.Fatalf("case %d (%s): %d published", i, tc.want, got)
		}
	}

	// Currency codes in any case, amounts as numbers or strings, rounded
	// half away from zero.
	c.ok(c.post(uuid.New(), usd, usd2, "1.005", "uSd"))
	c.ok(c.post(uuid.New(), usd, usd2, `"2.004"`, "usd"))
	if h.balance(usd2) != "3.01" {
		t.Fatalf("credited %s, want 3.01", h.balance(usd2))
	}

	// The lists are capped at 100, newest first.
	var deposits []transfer.Request
	for i := 0; i < 105; i++ {
		deposits = append(deposits, transfer.Request{ID: uuid.New(), Kind: transfer.KindDeposit, To: usd, Amount: decimal.NewFromInt(int64(i + 1)), Currency: "USD"})
	}
	h.apply(deposits...)
	moves := c.list("/accounts/" + usd.String() + "/transfers/")
	if len(moves) != 100 || moves[0]["amount"] != "105" || moves[99]["amount"] != "6" || moves[0]["type"] != "DEPOSIT" {
		t.Fatalf("transfers: %d, first %v, last %v", len(moves), moves[0], moves[len(moves)-1])
	}
	h.apply(transfer.Request{ID: uuid.New(), Kind: transfer.KindWithdrawal, From: usd, Amount: decimal.NewFromInt(1), Currency: "USD"})
	if m := c.list("/accounts/" + usd.String() + "/transfers/")[0]; m["type"] != "WITHDRAW" || m["direction"] != "OUTGOING" || m["corresponding_account_id"] != nil {
		t.Fatalf("withdrawal: %v", m)
	}
	for i := 0; i < 101; i++ {
		h.account("JPY", "")
	}
	if n := len(c.list("/accounts/")); n != 100 {
		t.Fatalf("%d accounts listed, want 100", n)
	}
}

// lastSeq is the requests stream's last sequence: unlike its message count,
// it does not fall when the workers purge what they applied.
func (h *harness) lastSeq() uint64 {
	h.t.Helper()
	s, err := h.js.Stream(testCtx(h.t), natsbus.RequestsStream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(testCtx(h.t))
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.LastSeq
}
