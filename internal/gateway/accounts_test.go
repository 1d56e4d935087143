package gateway

import (
	"net/url"
	"testing"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/transfer"
)

func TestAccounts(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	id := uuid.New()
	body := `{"id":"` + id.String() + `","currency":"usd"}`

	r := h.do("POST", "/v1/accounts", body)
	expect(t, r, 201, "")
	if r.str("id") != id.String() || r.str("currency") != "USD" || r.str("balance") != "0.00" ||
		r.str("created_at") == "" || r.str("updated_at") == "" {
		t.Fatalf("created: %s", r.raw)
	}
	if r.header.Get("Location") != "/v1/accounts/"+id.String() {
		t.Fatalf("location %q", r.header.Get("Location"))
	}
	expect(t, h.do("POST", "/v1/accounts", body), 200, "")
	expect(t, h.do("POST", "/v1/accounts", `{"id":"`+id.String()+`","currency":"EUR"}`), 409, CodeAccountConflict)
	expect(t, h.do("POST", "/v1/accounts", `{"currency":"XXX"}`), 422, transfer.CodeCurrencyNotSupported)
	expect(t, h.do("POST", "/v1/accounts", `{"currency":"U.S"}`), 422, transfer.CodeCurrencyNotSupported)
	expect(t, h.do("POST", "/v1/accounts", `{}`), 422, transfer.CodeCurrencyNotSupported)
	expect(t, h.do("POST", "/v1/accounts", `{"id":"x","currency":"USD"}`), 400, CodeInvalidField)
	expect(t, h.do("POST", "/v1/accounts", `{"currency":"USD","extra":1}`), 400, CodeUnknownField)

	gen := h.do("POST", "/v1/accounts", `{"currency":"BTC"}`)
	expect(t, gen, 201, "")
	if _, err := uuid.Parse(gen.str("id")); err != nil || gen.str("balance") != "0.00000000" {
		t.Fatalf("generated: %s", gen.raw)
	}

	got := h.do("GET", "/v1/accounts/"+id.String(), "")
	expect(t, got, 200, "")
	if got.str("id") != id.String() || got.str("currency") != "USD" {
		t.Fatalf("get: %s", got.raw)
	}
	expect(t, h.do("GET", "/v1/accounts/"+uuid.NewString(), ""), 404, CodeNotFound)
	expect(t, h.do("GET", "/v1/accounts/not-a-uuid", ""), 400, CodeInvalidField)
}

func TestListAccountsPages(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	want := map[string]bool{}
	for range 5 {
		want[h.account("EUR", "").String()] = true
	}
	seen := map[string]bool{}
	path := "/v1/accounts?limit=2"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		r := h.do("GET", path, "")
		expect(t, r, 200, "")
		data := r.body["data"].([]any)
		if len(data) > 2 {
			t.Fatalf("page of %d", len(data))
		}
		for _, a := range data {
			seen[a.(map[string]any)["id"].(string)] = true
		}
		next, ok := r.body["next_cursor"].(string)
		if !ok {
			if r.body["next_cursor"] != nil {
				t.Fatalf("next_cursor %v", r.body["next_cursor"])
			}
			break
		}
		path = "/v1/accounts?limit=2&cursor=" + url.QueryEscape(next)
	}
	if len(seen) != len(want) {
		t.Fatalf("saw %d accounts, want %d", len(seen), len(want))
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "limit=-1"} {
		expect(t, h.do("GET", "/v1/accounts?"+q, ""), 400, CodeInvalidField)
	}
	expect(t, h.do("GET", "/v1/accounts?cursor=garbage", ""), 400, CodeBadCursor)
}

func TestEntries(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	a, b := h.account("USD", "1000"), h.account("USD", "")
	move := transfer.Request{ID: uuid.New(), Kind: transfer.KindTransfer, From: a, To: b, Amount: decimal.RequireFromString("100.111"), Currency: "USD"}
	out := h.apply(move, transfer.Request{ID: uuid.New(), Kind: transfer.KindWithdrawal, From: a, Amount: decimal.RequireFromString("0.5"), Currency: "USD"})
	for _, o := range out {
		if o.Status() != transfer.StatusApplied {
			t.Fatalf("setup: %+v", o)
		}
	}

	r := h.do("GET", "/v1/accounts/"+a.String()+"/entries", "")
	expect(t, r, 200, "")
	data := r.body["data"].([]any)
	if len(data) != 3 {
		t.Fatalf("entries: %s", r.raw)
	}
	first, second := data[0].(map[string]any), data[1].(map[string]any)
	if first["kind"] != "withdrawal" || first["direction"] != "debit" || first["amount"] != "0.50" ||
		first["balance_after"] != "899.39" || first["counterparty_account_id"] != nil {
		t.Fatalf("newest entry: %v", first)
	}
	if second["transfer_id"] != move.ID.String() || second["kind"] != "transfer" || second["amount"] != "100.11" ||
		second["balance_after"] != "899.89" || second["counterparty_account_id"] != b.String() || second["currency"] != "USD" {
		t.Fatalf("transfer entry: %v", second)
	}

	page := h.do("GET", "/v1/accounts/"+a.String()+"/entries?limit=2", "")
	expect(t, page, 200, "")
	next, _ := page.body["next_cursor"].(string)
	rest := h.do("GET", "/v1/accounts/"+a.String()+"/entries?limit=2&cursor="+url.QueryEscape(next), "")
	expect(t, rest, 200, "")
	if len(rest.body["data"].([]any)) != 1 || rest.body["next_cursor"] != nil {
		t.Fatalf("second page: %s", rest.raw)
	}

	empty := h.do("GET", "/v1/accounts/"+h.account("EUR", "").String()+"/entries", "")
	expect(t, empty, 200, "")
	if len(empty.body["data"].([]any)) != 0 {
		t.Fatalf("empty statement: %s", empty.raw)
	}
	expect(t, h.do("GET", "/v1/accounts/"+uuid.NewString()+"/entries", ""), 404, CodeNotFound)
	expect(t, h.do("GET", "/v1/accounts/"+a.String()+"/entries?cursor=-5", ""), 400, CodeBadCursor)
}

func TestCurrencies(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	r := h.do("GET", "/v1/currencies", "")
	expect(t, r, 200, "")
	found := map[string]float64{}
	for _, c := range r.body["data"].([]any) {
		m := c.(map[string]any)
		found[m["code"].(string)] = m["precision"].(float64)
	}
	if found["USD"] != 2 || found["BTC"] != 8 || found["JPY"] != 0 || found["ETH"] != 18 {
		t.Fatalf("currencies: %s", r.raw)
	}
}
