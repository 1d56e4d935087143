package gateway

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/transfer"
)

// TestHostileInputs sends every kind of bad request to the write endpoints:
// each gets its documented 4xx and code, nothing reaches the stream, and
// no balance changes. (Oversized bodies are refused before any handler
// runs, which app.Test reports as an error; TestBodyTooLargeOverTheWire
// covers them.)
func TestHostileInputs(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	a, b, btc := h.account("USD", "1000"), h.account("USD", "100"), h.account("BTC", "")
	ok := func(id string) string { return transferJSON(uuid.MustParse(id), a, b, "1", "USD") }
	with := func(field, value string) string {
		base := map[string]string{"id": `"` + uuid.NewString() + `"`, "from_account_id": `"` + a.String() + `"`,
			"to_account_id": `"` + b.String() + `"`, "amount": `"1"`, "currency": `"USD"`}
		base[field] = value
		parts := []string{}
		for _, k := range transferFields {
			if v, ok := base[k]; ok && v != "<absent>" {
				parts = append(parts, `"`+k+`":`+v)
			}
		}
		return "{" + strings.Join(parts, ",") + "}"
	}

	cases := []struct {
		name, path, body string
		headers          []string
		status           int
		code             transfer.Code
	}{
		{"malformed json", "/v1/transfers", `{"id":`, nil, 400, CodeMalformedJSON},
		{"not json", "/v1/transfers", `id=1&amount=2`, nil, 400, CodeMalformedJSON},
		{"empty body", "/v1/transfers", ``, []string{"Content-Type", "application/json"}, 400, CodeMalformedJSON},
		{"trailing data", "/v1/transfers", ok(uuid.NewString()) + `{}`, nil, 400, CodeMalformedJSON},
		{"text/plain", "/v1/transfers", ok(uuid.NewString()), []string{"Content-Type", "text/plain"}, 415, CodeUnsupportedMediaType},
		{"no content type", "/v1/transfers", ok(uuid.NewString()), []string{"Content-Type", ""}, 415, CodeUnsupportedMediaType},
		{"form content type", "/v1/deposits", ok(uuid.NewString()), []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, CodeUnsupportedMediaType},
		{"latin-1 charset", "/v1/transfers", ok(uuid.NewString()), []string{"Content-Type", "application/json; charset=latin1"}, 415, CodeUnsupportedMediaType},
		{"gzip encoding", "/v1/transfers", ok(uuid.NewString()), []string{"Content-Encoding", "gzip"}, 415, CodeUnsupportedMediaType},
		{"unknown field", "/v1/transfers", `{"id":"` + uuid.NewString() + `","fee":"1"}`, nil, 400, CodeUnknownField},
		{"duplicate key", "/v1/transfers", `{"amount":"1","amount":"999"}`, nil, 400, CodeDuplicateField},
		{"invalid uuid", "/v1/transfers", with("id", `"1234"`), nil, 400, CodeInvalidField},
		{"invalid account uuid", "/v1/transfers", with("to_account_id", `"not-a-uuid"`), nil, 400, CodeInvalidField},
		{"subject breaking id", "/v1/transfers", with("id", `"a.b.>"`), nil, 400, CodeInvalidField},
		{"subject wildcard account", "/v1/deposits", `{"id":"` + uuid.NewString() + `","account_id":"*","amount":"1","currency":"USD"}`, nil, 400, CodeInvalidField},
		{"id with whitespace", "/v1/transfers", with("id", `"`+uuid.NewString()[:35]+` "`), nil, 400, CodeInvalidField},
		{"amount 1e400 number", "/v1/transfers", with("amount", `1e400`), nil, 400, transfer.CodeInvalidAmount},
		{"amount 1e400 string", "/v1/transfers", with("amount", `"1e400"`), nil, 400, transfer.CodeInvalidAmount},
		{"amount NaN", "/v1/transfers", with("amount", `"NaN"`), nil, 400, transfer.CodeInvalidAmount},
		{"amount 40 digits", "/v1/transfers", with("amount", `"`+strings.Repeat("1", 40)+`"`), nil, 400, transfer.CodeInvalidAmount},
		{"amount number", "/v1/transfers", with("amount", `100.11`), nil, 400, transfer.CodeInvalidAmount},
		{"amount minus zero", "/v1/transfers", with("amount", `"-0"`), nil, 422, transfer.CodeTransferAmountMustBePositive},
		{"amount negative", "/v1/withdrawals", `{"id":"` + uuid.NewString() + `","account_id":"` + a.String() + `","amount":"-5","currency":"USD"}`, nil, 422, transfer.CodeTransferAmountMustBePositive},
		{"amount rounds to zero", "/v1/transfers", with("amount", `"0.001"`), nil, 422, transfer.CodeTransferAmountMustBePositive},
		{"unknown currency", "/v1/transfers", with("currency", `"XYZ"`), nil, 422, transfer.CodeCurrencyNotSupported},
		{"currency shape", "/v1/transfers", with("currency", `"US D"`), nil, 422, transfer.CodeCurrencyNotSupported},
		{"same account", "/v1/transfers", with("to_account_id", `"`+a.String()+`"`), nil, 422, transfer.CodeAccountsMustBeDifferent},
		{"missing id", "/v1/transfers", with("id", `<absent>`), nil, 422, transfer.CodeTransferIDIsEmpty},
		{"nil id", "/v1/transfers", with("id", `"00000000-0000-0000-0000-000000000000"`), nil, 422, transfer.CodeTransferIDIsEmpty},
		{"missing sender", "/v1/transfers", with("from_account_id", `<absent>`), nil, 422, transfer.CodeSenderAccountIDIsEmpty},
		{"missing deposit account", "/v1/deposits", `{"id":"` + uuid.NewString() + `","amount":"1","currency":"USD"}`, nil, 422, transfer.CodeAccountIDIsEmpty},
		{"to a BTC account in USD is the worker's", "/v1/transfers", `{"id":"` + uuid.NewString() + `","from_account_id":"` + a.String() + `","to_account_id":"` + btc.String() + `","amount":"1","currency":"XBT"}`, nil, 422, transfer.CodeCurrencyNotSupported},
	}
	for _, tc := range cases {
		r := h.do("POST", tc.path, tc.body, tc.headers...)
		if err := checkProblem(r, tc.status, tc.code); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if body := withoutTraceID(r.raw); strings.Contains(body, "runtime.") || strings.Contains(body, "SQL") {
			t.Errorf("%s: internals leaked: %s", tc.name, r.raw)
		}
	}
	if n := h.requests(); n != 0 {
		t.Fatalf("%d hostile requests were published", n)
	}
	if h.transfers() != 2 || h.balance(a) != "1000" || h.balance(b) != "100" || h.balance(btc) != "0" {
		t.Fatalf("state changed: %d transfers, balances %s %s %s", h.transfers(), h.balance(a), h.balance(b), h.balance(btc))
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	expect(t, h.do("GET", "/v2/nothing", ""), 404, CodeNotFound)
	expect(t, h.do("DELETE", "/v1/transfers", ""), 405, CodeMethodNotAllowed)
	expect(t, h.do("GET", "/V1/currencies", ""), 404, CodeNotFound)
}

// TestBodyTooLargeOverTheWire announces a 10 MB body to a listening
// gateway: it is refused from the Content-Length alone, before a byte of it
// is read, with a problem document.
func TestBodyTooLargeOverTheWire(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	base := h.listen()
	// Only the head is sent: the answer must not wait for the body.
	resp, err := sendHeadOnly(base, "POST", "/v1/transfers", 10<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var p map[string]any
	if resp.StatusCode != 413 || json.Unmarshal(raw, &p) != nil || p["code"] != string(CodeBodyTooLarge) ||
		resp.Header.Get("Content-Type") != problemContentType {
		t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	if n := h.requests(); n != 0 {
		t.Fatalf("%d published", n)
	}
}

// TestLegacyWriteNeedsJSONWithoutToken: with authentication off, the 2020
// POST /transfers/ takes only application/json, so a cross-site page cannot
// move money with a simple (untyped or text/plain) request that a browser
// sends without a preflight. A call authenticated by a bearer token, which
// a browser never adds by itself, keeps the original's optional type.
func TestLegacyWriteNeedsJSONWithoutToken(t *testing.T) {
	t.Parallel()
	body := func(a, b uuid.UUID) string {
		return `{"id":"` + uuid.NewString() + `","sender_account_id":"` + a.String() +
			`","receiver_account_id":"` + b.String() + `","amount":"1","currency_code":"USD"}`
	}
	h := setup(t, Config{LegacyWait: 50 * time.Millisecond})
	a, b := h.account("USD", "10"), h.account("USD", "")
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded"} {
		r := h.do("POST", "/transfers/", body(a, b), "Content-Type", ct)
		if r.status != 415 || r.str("result") != "ERROR" || r.str("error") != string(CodeUnsupportedMediaType) {
			t.Fatalf("Content-Type %q without a token: %d %s", ct, r.status, r.raw)
		}
	}
	if n := h.requests(); n != 0 {
		t.Fatalf("%d published", n)
	}
	if r := h.do("POST", "/transfers/", body(a, b)); r.str("error") != string(CodeTransferPending) {
		t.Fatalf("application/json: %d %s", r.status, r.raw)
	}

	authed := setup(t, Config{LegacyWait: 50 * time.Millisecond, Tokens: []Token{{Hash: tokenHash("w"), Scope: ScopeWrite}}})
	a, b = authed.account("USD", "10"), authed.account("USD", "")
	r := authed.do("POST", "/transfers/", body(a, b), "Content-Type", "", "Authorization", "Bearer w")
	if r.str("error") != string(CodeTransferPending) {
		t.Fatalf("no Content-Type with a token: %d %s", r.status, r.raw)
	}
}

// withoutTraceID is a problem body without its trace_id, which is random
// and may spell SQL (it did: "YSQLHXBDUlHhtiAZb3OUc3"); a body that is not
// a JSON object is returned as it is.
func withoutTraceID(raw []byte) string {
	var problem map[string]any
	if json.Unmarshal(raw, &problem) != nil {
		return string(raw)
	}
	delete(problem, "trace_id")
	b, err := json.Marshal(problem)
	if err != nil {
		return string(raw)
	}
	return string(b)
}
