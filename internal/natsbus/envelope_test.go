package natsbus_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

const (
	tID   = "6f1c1b2e-3d4a-4b5c-8d6e-7f8091a2b3c4"
	tFrom = "11111111-2222-4333-8444-555555555555"
	tTo   = "99999999-8888-4777-8666-555555555555"
)

func TestDecodeRequestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, r := range []transfer.Request{
		{ID: uuid.New(), Kind: transfer.KindTransfer, From: uuid.New(), To: uuid.New(), Amount: decimal.RequireFromString("100.11"), Currency: "USD"},
		{ID: uuid.New(), Kind: transfer.KindDeposit, To: uuid.New(), Amount: decimal.RequireFromString("0.00000001"), Currency: "btc"},
		{ID: uuid.New(), Kind: transfer.KindWithdrawal, From: uuid.New(), Amount: decimal.RequireFromString("-5"), Currency: "EUR"},
		{ID: uuid.New(), Kind: transfer.KindTransfer, From: uuid.New(), Amount: decimal.RequireFromString("1"), Currency: `"\`},
		{ID: uuid.New(), Kind: transfer.KindTransfer, From: uuid.New(), To: uuid.New(), Amount: decimal.RequireFromString("1"), Currency: "USD", Attempt: uuid.New()},
	} {
		data, err := natsbus.EncodeRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := natsbus.DecodeRequest(data)
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if got.ID != r.ID || got.Kind != r.Kind || got.From != r.From || got.To != r.To ||
			!got.Amount.Equal(r.Amount) || got.Currency != r.Currency || got.Fingerprint() != r.Fingerprint() || got.Attempt != r.Attempt {
			t.Fatalf("round trip of %s: %+v", data, got)
		}
	}
}

func TestDecodeRequestAcceptsBusinessRuleViolations(t *testing.T) {
	t.Parallel()
	// These decode: the store rejects them with an outcome.
	for _, body := range []string{
		`{"v":1,"kind":"transfer","id":"` + tID + `","from_account_id":"` + tFrom + `","to_account_id":"` + tTo + `","amount":"-5","currency":"USD"}`,
		`{"v":1,"kind":"transfer","id":"` + tID + `","from_account_id":"` + tFrom + `","to_account_id":"` + tFrom + `","amount":"5","currency":"USD"}`,
		`{"v":1,"kind":"transfer","id":"` + tID + `","from_account_id":"` + tFrom + `","amount":"0","currency":"XXX"}`,
		`{"v":1,"kind":"deposit","id":"` + strings.ToUpper(tID) + `","account_id":"` + tTo + `","amount":"0.001","currency":""}`,
		` {"id":"` + tID + `","v":1,"kind":"withdrawal","account_id":"` + tFrom + `","amount":"+1.5","currency":"usd"} ` + "\n",
	} {
		if _, err := natsbus.DecodeRequest([]byte(body)); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

func TestDecodeRequestPoison(t *testing.T) {
	t.Parallel()
	valid := func(mod func(m map[string]any)) string {
		m := map[string]any{"v": 1, "kind": "transfer", "id": tID, "from_account_id": tFrom, "to_account_id": tTo, "amount": "1.00", "currency": "USD"}
		mod(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	cases := []struct {
		body string
		want natsbus.Reason
	}{
		{"", natsbus.ReasonMalformedJSON},
		{"\x00\xff garbage", natsbus.ReasonMalformedJSON},
		{"[1,2]", natsbus.ReasonMalformedJSON},
		{`{"v":1`, natsbus.ReasonMalformedJSON},
		{valid(func(map[string]any) {}) + "x", natsbus.ReasonMalformedJSON},
		{valid(func(map[string]any) {}) + "{}", natsbus.ReasonMalformedJSON},
		{`{"v":1,"v":1}`, natsbus.ReasonDuplicateField},
		{`{"v":1,"kind":"transfer","id":"` + tID + `","id":"` + tID + `"}`, natsbus.ReasonDuplicateField},
		{`{"v":1,"kind":{"a":1}}`, natsbus.ReasonInvalidFieldType},
		{valid(func(m map[string]any) { delete(m, "v") }), natsbus.ReasonMissingVersion},
		{valid(func(m map[string]any) { m["v"] = 2 }), natsbus.ReasonUnsupportedVersion},
		{valid(func(m map[string]any) { m["v"] = "1" }), natsbus.ReasonUnsupportedVersion},
		{strings.Replace(valid(func(map[string]any) {}), `"v":1`, `"v":1.0`, 1), natsbus.ReasonUnsupportedVersion},
		{valid(func(m map[string]any) { m["kind"] = "refund" }), natsbus.ReasonInvalidKind},
		{valid(func(m map[string]any) { m["kind"] = 1 }), natsbus.ReasonInvalidFieldType},
		{valid(func(m map[string]any) { m["memo"] = "hi" }), natsbus.ReasonUnknownField},
		{valid(func(m map[string]any) { m["account_id"] = tFrom }), natsbus.ReasonUnknownField},
		{valid(func(m map[string]any) { m["ID"] = tID }), natsbus.ReasonUnknownField},
		{valid(func(m map[string]any) { delete(m, "id") }), natsbus.ReasonInvalidID},
		{valid(func(m map[string]any) { m["id"] = "not-a-uuid" }), natsbus.ReasonInvalidID},
		{valid(func(m map[string]any) { m["id"] = "00000000-0000-0000-0000-000000000000" }), natsbus.ReasonInvalidID},
		{valid(func(m map[string]any) { m["id"] = "{" + tID + "}" }), natsbus.ReasonInvalidID},
		{valid(func(m map[string]any) { m["id"] = "a.b.>" }), natsbus.ReasonInvalidID},
		{valid(func(m map[string]any) { m["attempt"] = "" }), natsbus.ReasonInvalidAttempt},
		{valid(func(m map[string]any) { m["attempt"] = "00000000-0000-0000-0000-000000000000" }), natsbus.ReasonInvalidAttempt},
		{valid(func(m map[string]any) { m["attempt"] = "x." + tID }), natsbus.ReasonInvalidAttempt},
		{valid(func(m map[string]any) { m["attempt"] = 7 }), natsbus.ReasonInvalidFieldType},
		{valid(func(m map[string]any) { m["from_account_id"] = "x" }), natsbus.ReasonInvalidAccountID},
		{valid(func(m map[string]any) { m["to_account_id"] = nil }), natsbus.ReasonInvalidFieldType},
		{valid(func(m map[string]any) { m["amount"] = 100.11 }), natsbus.ReasonInvalidAmount},
		{strings.Replace(valid(func(map[string]any) {}), `"amount":"1.00"`, `"amount":1e400`, 1), natsbus.ReasonInvalidAmount},
		{valid(func(m map[string]any) { m["amount"] = "1e400" }), natsbus.ReasonInvalidAmount},
		{valid(func(m map[string]any) { m["amount"] = "NaN" }), natsbus.ReasonInvalidAmount},
		{valid(func(m map[string]any) { m["amount"] = "Infinity" }), natsbus.ReasonInvalidAmount},
		{valid(func(m map[string]any) { m["amount"] = "" }), natsbus.ReasonInvalidAmount},
		{valid(func(m map[string]any) { delete(m, "amount") }), natsbus.ReasonInvalidAmount},
		{valid(func(m map[string]any) { m["amount"] = strings.Repeat("9", 40) }), natsbus.ReasonInvalidAmount},
		{valid(func(m map[string]any) { m["amount"] = "0x10" }), natsbus.ReasonInvalidAmount},
		{valid(func(m map[string]any) { m["currency"] = "US\u0000D" }), natsbus.ReasonInvalidCurrency},
		{valid(func(m map[string]any) { m["currency"] = strings.Repeat("A", 33) }), natsbus.ReasonInvalidCurrency},
		{valid(func(m map[string]any) { m["currency"] = 840 }), natsbus.ReasonInvalidFieldType},
		{valid(func(m map[string]any) { m["currency"] = strings.Repeat("A", natsbus.MaxRequestSize) }), natsbus.ReasonPayloadTooLarge},
	}
	for _, c := range cases {
		_, err := natsbus.DecodeRequest([]byte(c.body))
		var derr *natsbus.DecodeError
		if !errors.As(err, &derr) {
			t.Errorf("%.80q: err %v, want reason %s", c.body, err, c.want)
			continue
		}
		if derr.Reason != c.want {
			t.Errorf("%.80q: reason %s (%s), want %s", c.body, derr.Reason, derr.Detail, c.want)
		}
		if len(derr.Detail) > 300 {
			t.Errorf("%.80q: detail of %d bytes", c.body, len(derr.Detail))
		}
	}
}

func TestCheckSubject(t *testing.T) {
	t.Parallel()
	r := transfer.Request{ID: uuid.MustParse(tID), Kind: transfer.KindTransfer, From: uuid.MustParse(tFrom), To: uuid.MustParse(tTo)}
	good := "wallet.requests.3." + tID + "." + tFrom
	if s, err := natsbus.CheckSubject(good, r); err != nil || s.Partition != 3 {
		t.Fatalf("good subject: %+v %v", s, err)
	}
	for subject, want := range map[string]natsbus.Reason{
		"wallet.requests.3." + tID + "." + tTo:                    natsbus.ReasonSubjectMismatch,
		"wallet.requests.3." + tFrom + "." + tFrom:                natsbus.ReasonSubjectMismatch,
		"wallet.requests.3." + strings.ToUpper(tID) + "." + tFrom: natsbus.ReasonInvalidSubject,
		"wallet.requests.x." + tID + "." + tFrom:                  natsbus.ReasonInvalidSubject,
		"wallet.requests.3.abc.def":                               natsbus.ReasonInvalidSubject,
		"wallet.requests.3." + tID:                                natsbus.ReasonInvalidSubject,
		"other.3." + tID + "." + tFrom:                            natsbus.ReasonInvalidSubject,
	} {
		_, err := natsbus.CheckSubject(subject, r)
		var derr *natsbus.DecodeError
		if !errors.As(err, &derr) || derr.Reason != want {
			t.Errorf("%s: %v, want %s", subject, err, want)
		}
	}
	dep := transfer.Request{ID: uuid.MustParse(tID), Kind: transfer.KindDeposit, To: uuid.MustParse(tTo)}
	if _, err := natsbus.CheckSubject("wallet.requests.0."+tID+"."+tTo, dep); err != nil {
		t.Fatalf("deposit is filed under its credited account: %v", err)
	}
}

func TestResultEncoding(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600))
	tr := transfer.Transfer{ID: uuid.MustParse(tID), Kind: transfer.KindTransfer, Status: transfer.StatusApplied,
		From: uuid.MustParse(tFrom), To: uuid.MustParse(tTo), Amount: decimal.RequireFromString("100.1"), Currency: "USD",
		AcceptedAt: at, ProcessedAt: at.Add(time.Millisecond)}
	res := natsbus.ResultFromTransfer(tr, map[string]int32{"USD": 2})
	data, err := natsbus.EncodeResult(res)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"id":"` + tID + `","kind":"transfer","status":"applied","from_account_id":"` + tFrom + `","to_account_id":"` + tTo +
		`","amount":"100.10","currency":"USD","accepted_at":"2025-01-02T02:04:05.0000006Z","processed_at":"2025-01-02T02:04:05.0010006Z"}`
	if string(data) != want {
		t.Fatalf("got  %s\nwant %s", data, want)
	}
	back, err := natsbus.DecodeResult(data)
	if err != nil || back.Amount != "100.10" || back.ID != tr.ID {
		t.Fatalf("decode: %+v %v", back, err)
	}

	rej := tr
	rej.Kind, rej.Status, rej.Reason, rej.From, rej.Amount, rej.Currency = transfer.KindDeposit, transfer.StatusRejected, transfer.CodeCurrencyNotSupported, uuid.Nil, decimal.RequireFromString("1.234"), "XYZ"
	res = natsbus.ResultFromTransfer(rej, map[string]int32{"USD": 2})
	if res.Amount != "1.234" || res.AccountID != tr.To || res.ToAccountID != uuid.Nil || res.Reason != transfer.CodeCurrencyNotSupported {
		t.Fatalf("rejected deposit: %+v", res)
	}
	data, _ = natsbus.EncodeResult(res)
	if strings.Contains(string(data), "to_account_id") || !strings.Contains(string(data), `"reason":"currency_not_supported"`) {
		t.Fatalf("deposit fields: %s", data)
	}

	for _, bad := range []string{
		`{}`,
		`{"v":2,"id":"` + tID + `"}`,
		`{"v":1,"id":"` + tID + `","extra":1}`,
		`{"v":1,"id":"` + tID + `"} x`,
		`{"v":1,"id":"` + tID + `","id":"` + tFrom + `"}`,
	} {
		if _, err := natsbus.DecodeResult([]byte(bad)); !errors.Is(err, natsbus.ErrInvalidResult) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
