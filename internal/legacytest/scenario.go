// Package legacytest plays the 2020 service's own integration scenario
// against a running gateway over HTTP, as a client of the original service
// would, so that walletd and the separate gateway and workers can both be
// held to it. Test-only.
package legacytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Client talks to one gateway.
type Client struct {
	t    testing.TB
	base string
	http *http.Client
}

// New returns a client of the gateway at base ("http://host:port").
func New(t testing.TB, base string) *Client {
	return &Client{t: t, base: base, http: &http.Client{Timeout: 60 * time.Second}}
}

// envelope is the original API's answer.
type envelope struct {
	Result  string          `json:"result"`
	Error   string          `json:"error"`
	Payload json.RawMessage `json:"payload"`
}

func (c *Client) do(method, path, contentType string, body []byte) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, data
}

// Account opens an account through the v1 API (the original had no such
// call: its scenario seeded the database) and deposits funds when not "".
func (c *Client) Account(currency, funds string) uuid.UUID {
	c.t.Helper()
	id := uuid.New()
	body, _ := json.Marshal(map[string]string{"id": id.String(), "currency": currency})
	if code, data := c.do("POST", "/v1/accounts", "application/json", body); code != 201 {
		c.t.Fatalf("open account: %d %s", code, data)
	}
	if funds != "" {
		body, _ = json.Marshal(map[string]string{"id": uuid.NewString(), "account_id": id.String(), "amount": funds, "currency": currency})
		req, _ := http.NewRequest("POST", c.base+"/v1/deposits", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Prefer", "wait=30")
		resp, err := c.http.Do(req)
		if err != nil {
			c.t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 {
			c.t.Fatalf("deposit: %d %s", resp.StatusCode, data)
		}
	}
	return id
}

// Transfer posts to the original POST /transfers/ with the amount as given
// (a JSON number, or a quoted string), and returns the envelope's result
// and error. The body is typed JSON: without a bearer token the gateway
// refuses an untyped one (a cross-site request could send it).
func (c *Client) Transfer(id, from, to uuid.UUID, amount, currency string) (result, code string) {
	c.t.Helper()
	body := `{"id":"` + id.String() + `","sender_account_id":"` + from.String() + `","receiver_account_id":"` + to.String() +
		`","amount":` + amount + `,"currency_code":"` + currency + `"}`
	status, data := c.do("POST", "/transfers/", "application/json", []byte(body))
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil || status != 200 {
		c.t.Fatalf("POST /transfers/: %d %s", status, data)
	}
	return e.Result, e.Error
}

// List GETs one of the original list endpoints and returns its payload.
func (c *Client) List(path string) []map[string]any {
	c.t.Helper()
	status, data := c.do("GET", path, "", nil)
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil || status != 200 || e.Result != "OK" {
		c.t.Fatalf("GET %s: %d %s", path, status, data)
	}
	var out []map[string]any
	if err := json.Unmarshal(e.Payload, &out); err != nil {
		c.t.Fatalf("GET %s payload: %v", path, err)
	}
	return out
}

// PlayOriginalScenario runs the original service's integration scenario on
// a gateway whose database holds no accounts yet, checking every step.
func PlayOriginalScenario(t testing.TB, base string) {
	t.Helper()
	c := New(t, base)
	usd1000, usd100 := c.Account("USD", "1000"), c.Account("USD", "100")
	eur100, eur0 := c.Account("EUR", "100"), c.Account("EUR", "")
	btc1, btc0 := c.Account("BTC", "1"), c.Account("BTC", "")

	step := func(n int, format string, args ...any) {
		t.Helper()
		t.Fatalf("step %d: "+format, append([]any{n}, args...)...)
	}
	balances := func() map[uuid.UUID]string {
		out := map[uuid.UUID]string{}
		for _, a := range c.List("/accounts/") {
			out[uuid.MustParse(a["id"].(string))] = fmt.Sprint(a["balance"])
		}
		return out
	}

	// 1. Six accounts, balances as the original printed them.
	want := map[uuid.UUID]string{usd1000: "1000", usd100: "100", eur100: "100", eur0: "0", btc1: "1", btc0: "0"}
	got := balances()
	if len(got) != len(want) {
		step(1, "%d accounts listed, want 6: %v", len(got), got)
	}
	for id, b := range want {
		if got[id] != b {
			step(1, "account %s has balance %q, want %q", id, got[id], b)
		}
	}

	// 2-4. One id, rejected twice for different reasons, then applied,
	// then retried.
	x := uuid.New()
	if r, code := c.Transfer(x, usd1000, btc1, "1", "USD"); r != "ERROR" || code != "receiver_account_wrong_currency" {
		step(2, "%s %s", r, code)
	}
	if r, code := c.Transfer(x, usd1000, usd100, "1001", "USD"); r != "ERROR" || code != "insufficient_funds" {
		step(3, "%s %s", r, code)
	}
	if r, code := c.Transfer(x, usd1000, usd100, "100.111", "USD"); r != "OK" || code != "" {
		step(4, "%s %s", r, code)
	}
	if r, code := c.Transfer(x, usd1000, usd100, `"100.111"`, "usd"); r != "OK" || code != "" {
		step(4, "again: %s %s", r, code)
	}

	// 5. Money moved once; the statements.
	got = balances()
	if got[usd1000] != "899.89" || got[usd100] != "200.11" {
		step(5, "balances %s and %s, want 899.89 and 200.11", got[usd1000], got[usd100])
	}
	sender := c.List("/accounts/" + usd1000.String() + "/transfers/")
	if len(sender) != 2 || sender[0]["id"] != x.String() || sender[0]["type"] != "INTERNAL" || sender[0]["direction"] != "OUTGOING" ||
		sender[0]["amount"] != "100.11" || sender[0]["corresponding_account_id"] != usd100.String() ||
		sender[1]["type"] != "DEPOSIT" || sender[1]["direction"] != "INCOMING" || sender[1]["amount"] != "1000" {
		step(5, "sender's transfers %v", sender)
	}
	receiver := c.List("/accounts/" + usd100.String() + "/transfers/")
	if len(receiver) != 2 || receiver[0]["id"] != x.String() || receiver[0]["direction"] != "INCOMING" ||
		receiver[0]["amount"] != "100.11" || receiver[0]["corresponding_account_id"] != usd1000.String() ||
		receiver[1]["type"] != "DEPOSIT" || receiver[1]["direction"] != "INCOMING" || receiver[1]["amount"] != "100" {
		step(5, "receiver's transfers %v", receiver)
	}
}
