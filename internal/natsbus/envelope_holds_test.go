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

const tHold = "abcdefab-cdef-4abc-8def-abcdefabcdef"

func TestHoldKindsRoundTrip(t *testing.T) {
	t.Parallel()
	d := decimal.RequireFromString
	for _, r := range []transfer.Request{
		{ID: uuid.New(), Kind: transfer.KindHold, From: uuid.New(), To: uuid.New(), Amount: d("60.5"), Currency: "usd", Timeout: 90 * time.Second},
		{ID: uuid.New(), Kind: transfer.KindHold, From: uuid.New(), To: uuid.New(), Amount: d("1"), Currency: "USD"},
		{ID: uuid.New(), Kind: transfer.KindHold, From: uuid.New(), To: uuid.New(), Amount: d("1"), Currency: "USD", Timeout: -time.Second},
		{ID: uuid.New(), Kind: transfer.KindPost, HoldID: uuid.New(), Amount: d("25.5")},
		{ID: uuid.New(), Kind: transfer.KindPost, HoldID: uuid.New()},
		{ID: uuid.New(), Kind: transfer.KindVoid, HoldID: uuid.New()},
		{ID: uuid.New(), Kind: transfer.KindReversal, Reverses: uuid.New(), Amount: d("0.01")},
		{ID: uuid.New(), Kind: transfer.KindReversal, Reverses: uuid.New()},
		{ID: uuid.New(), Kind: transfer.KindVoid}, // no hold: the store rejects it
	} {
		data, err := natsbus.EncodeRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := natsbus.DecodeRequest(data)
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if got.ID != r.ID || got.Kind != r.Kind || got.From != r.From || got.To != r.To || got.HoldID != r.HoldID ||
			got.Reverses != r.Reverses || got.Timeout != r.Timeout || !got.Amount.Equal(r.Amount) ||
			got.Currency != r.Currency || got.Fingerprint() != r.Fingerprint() {
			t.Fatalf("round trip of %s: %+v", data, got)
		}
		if r.Kind.NamesNoAccount() && (strings.Contains(string(data), "currency") || strings.Contains(string(data), "account")) {
			t.Fatalf("%s names what its hold or transfer tells: %s", r.Kind, data)
		}
	}
	// A timeout that is not whole seconds cannot be written.
	_, err := natsbus.EncodeRequest(transfer.Request{ID: uuid.New(), Kind: transfer.KindHold, Timeout: 1500 * time.Millisecond})
	if err == nil {
		t.Fatal("a timeout of 1.5s was encoded")
	}
}

func TestHoldKindsDecode(t *testing.T) {
	t.Parallel()
	r, err := natsbus.DecodeRequest([]byte(`{"v":1,"kind":"hold","id":"` + tID + `","from_account_id":"` + tFrom +
		`","to_account_id":"` + tTo + `","amount":"10.00","currency":"USD","timeout_seconds":2592000}`))
	if err != nil || r.Timeout != transfer.MaxHoldTimeout || r.From.String() != tFrom || !r.Amount.Equal(decimal.NewFromInt(10)) {
		t.Fatalf("hold: %+v %v", r, err)
	}
	r, err = natsbus.DecodeRequest([]byte(`{"v":1,"kind":"post","id":"` + tID + `","hold_id":"` + tHold + `","amount":"3"}`))
	if err != nil || r.HoldID.String() != tHold || !r.Amount.Equal(decimal.NewFromInt(3)) {
		t.Fatalf("post: %+v %v", r, err)
	}
	r, err = natsbus.DecodeRequest([]byte(`{"v":1,"kind":"reversal","id":"` + tID + `","transfer_id":"` + tHold + `"}`))
	if err != nil || r.Reverses.String() != tHold || !r.Amount.IsZero() {
		t.Fatalf("reversal: %+v %v", r, err)
	}
	// Business rules decode: the store rejects them with an outcome.
	for _, body := range []string{
		`{"v":1,"kind":"hold","id":"` + tID + `","from_account_id":"` + tFrom + `","to_account_id":"` + tFrom + `","amount":"1","currency":"USD","timeout_seconds":-1}`,
		`{"v":1,"kind":"hold","id":"` + tID + `","from_account_id":"` + tFrom + `","to_account_id":"` + tTo + `","amount":"1","currency":"USD","timeout_seconds":999999999}`,
		`{"v":1,"kind":"post","id":"` + tID + `","amount":"-1"}`,
		`{"v":1,"kind":"void","id":"` + tID + `"}`,
		`{"v":1,"kind":"reversal","id":"` + tID + `","transfer_id":"","amount":"0.001"}`,
	} {
		if _, err := natsbus.DecodeRequest([]byte(body)); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

func TestHoldKindsPoison(t *testing.T) {
	t.Parallel()
	with := func(base map[string]any, mod func(m map[string]any)) string {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		mod(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	hold := map[string]any{"v": 1, "kind": "hold", "id": tID, "from_account_id": tFrom, "to_account_id": tTo, "amount": "1.00", "currency": "USD", "timeout_seconds": 60}
	post := map[string]any{"v": 1, "kind": "post", "id": tID, "hold_id": tHold, "amount": "1.00"}
	void := map[string]any{"v": 1, "kind": "void", "id": tID, "hold_id": tHold}
	rev := map[string]any{"v": 1, "kind": "reversal", "id": tID, "transfer_id": tHold, "amount": "1.00"}
	same := func(map[string]any) {}
	for _, base := range []map[string]any{hold, post, void, rev} {
		if _, err := natsbus.DecodeRequest([]byte(with(base, same))); err != nil {
			t.Fatalf("%v: %v", base, err)
		}
	}
	cases := []struct {
		body string
		want natsbus.Reason
	}{
		{with(hold, func(m map[string]any) { m["timeout_seconds"] = "60" }), natsbus.ReasonInvalidTimeout},
		{with(hold, func(m map[string]any) { m["timeout_seconds"] = 1.5 }), natsbus.ReasonInvalidTimeout},
		{with(hold, func(m map[string]any) { m["timeout_seconds"] = 1e20 }), natsbus.ReasonInvalidTimeout},
		{strings.Replace(with(hold, same), `"timeout_seconds":60`, `"timeout_seconds":6e1`, 1), natsbus.ReasonInvalidTimeout},
		{with(hold, func(m map[string]any) { m["timeout_seconds"] = nil }), natsbus.ReasonInvalidTimeout},
		{with(hold, func(m map[string]any) { m["timeout_seconds"] = true }), natsbus.ReasonInvalidTimeout},
		{with(hold, func(m map[string]any) { m["attempt"] = tID }), natsbus.ReasonUnknownField},
		{with(hold, func(m map[string]any) { m["hold_id"] = tHold }), natsbus.ReasonUnknownField},
		{with(hold, func(m map[string]any) { m["amount"] = 1 }), natsbus.ReasonInvalidAmount},
		{with(hold, func(m map[string]any) { delete(m, "amount") }), natsbus.ReasonInvalidAmount},
		{with(hold, func(m map[string]any) { m["from_account_id"] = "x" }), natsbus.ReasonInvalidAccountID},
		{with(hold, func(m map[string]any) { m["currency"] = "U\u0001SD" }), natsbus.ReasonInvalidCurrency},
		{with(post, func(m map[string]any) { m["amount"] = "0" }), natsbus.ReasonInvalidAmount},
		{with(post, func(m map[string]any) { m["amount"] = "-0.00" }), natsbus.ReasonInvalidAmount},
		{with(post, func(m map[string]any) { m["amount"] = "" }), natsbus.ReasonInvalidAmount},
		{with(post, func(m map[string]any) { m["amount"] = 3 }), natsbus.ReasonInvalidAmount},
		{with(post, func(m map[string]any) { m["amount"] = nil }), natsbus.ReasonInvalidAmount},
		{with(post, func(m map[string]any) { m["hold_id"] = "x" }), natsbus.ReasonInvalidHoldID},
		{with(post, func(m map[string]any) { m["hold_id"] = 5 }), natsbus.ReasonInvalidFieldType},
		{with(post, func(m map[string]any) { m["currency"] = "USD" }), natsbus.ReasonUnknownField},
		{with(post, func(m map[string]any) { m["from_account_id"] = tFrom }), natsbus.ReasonUnknownField},
		{with(post, func(m map[string]any) { m["transfer_id"] = tHold }), natsbus.ReasonUnknownField},
		{with(void, func(m map[string]any) { m["amount"] = "1" }), natsbus.ReasonUnknownField},
		{with(void, func(m map[string]any) { m["hold_id"] = "{" + tHold + "}" }), natsbus.ReasonInvalidHoldID},
		{with(rev, func(m map[string]any) { m["amount"] = "0.000" }), natsbus.ReasonInvalidAmount},
		{with(rev, func(m map[string]any) { m["amount"] = 0 }), natsbus.ReasonInvalidAmount},
		{with(rev, func(m map[string]any) { m["transfer_id"] = "a.b" }), natsbus.ReasonInvalidTransferID},
		{with(rev, func(m map[string]any) { m["hold_id"] = tHold }), natsbus.ReasonUnknownField},
		{with(rev, func(m map[string]any) { m["account_id"] = tFrom }), natsbus.ReasonUnknownField},
		{with(rev, func(m map[string]any) { m["kind"] = "refund" }), natsbus.ReasonInvalidKind},
	}
	for _, c := range cases {
		_, err := natsbus.DecodeRequest([]byte(c.body))
		var derr *natsbus.DecodeError
		if !errors.As(err, &derr) || derr.Reason != c.want {
			t.Errorf("%s: %v, want %s", c.body, err, c.want)
		}
	}
}

// TestCheckSubjectOfHoldKinds: a post, void or reversal is accepted under
// any account, which DecodeStoredRequest hands on as its Partition for the
// store to check; its id must still match.
func TestCheckSubjectOfHoldKinds(t *testing.T) {
	t.Parallel()
	body := `{"v":1,"kind":"post","id":"` + tID + `","hold_id":"` + tHold + `"}`
	r, err := natsbus.DecodeStoredRequest("wallet.requests.2."+tID+"."+tFrom, []byte(body))
	if err != nil || r.Partition.String() != tFrom || r.PartitionAccount().String() != tFrom {
		t.Fatalf("post under its sender: %+v %v", r, err)
	}
	// The partition travels with the message: RequestMsg files it there.
	msg, err := natsbus.RequestMsg(r, "")
	if err != nil || msg.Subject != natsbus.RequestSubject(uuid.MustParse(tFrom), r.ID) {
		t.Fatalf("request msg: %v %v", msg, err)
	}
	r.Partition = uuid.Nil
	if _, err := natsbus.RequestMsg(r, ""); err == nil {
		t.Fatal("a post without its partition account was given a subject")
	}
	for subject, want := range map[string]natsbus.Reason{
		"wallet.requests.2." + tHold + "." + tFrom:                           natsbus.ReasonSubjectMismatch,
		"wallet.requests.2." + tID + ".00000000-0000-0000-0000-000000000000": natsbus.ReasonSubjectMismatch,
		"wallet.requests.2." + tID + "." + strings.ToUpper(tHold):            natsbus.ReasonInvalidSubject,
	} {
		_, err := natsbus.DecodeStoredRequest(subject, []byte(body))
		var derr *natsbus.DecodeError
		if !errors.As(err, &derr) || derr.Reason != want {
			t.Errorf("%s: %v, want %s", subject, err, want)
		}
	}
}

func TestResultOfHoldKinds(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	post := transfer.Transfer{ID: uuid.MustParse(tID), Kind: transfer.KindPost, Status: transfer.StatusApplied,
		From: uuid.MustParse(tFrom), To: uuid.MustParse(tTo), Amount: decimal.RequireFromString("5"), Currency: "USD",
		HoldID: uuid.MustParse(tHold), AcceptedAt: at, ProcessedAt: at}
	data, err := natsbus.EncodeResult(natsbus.ResultFromTransfer(post, map[string]int32{"USD": 2}))
	if err != nil || !strings.Contains(string(data), `"kind":"post"`) || !strings.Contains(string(data), `"hold_id":"`+tHold+`"`) ||
		strings.Contains(string(data), "reverses") || !strings.Contains(string(data), `"amount":"5.00"`) {
		t.Fatalf("post result %s %v", data, err)
	}
	back, err := natsbus.DecodeResult(data)
	if err != nil || back.HoldID != post.HoldID || back.Kind != transfer.KindPost {
		t.Fatalf("decode post result: %+v %v", back, err)
	}
	rev := transfer.Transfer{ID: uuid.New(), Kind: transfer.KindReversal, Status: transfer.StatusApplied,
		From: uuid.MustParse(tTo), Amount: decimal.RequireFromString("1"), Currency: "USD", Reverses: uuid.MustParse(tHold),
		AcceptedAt: at, ProcessedAt: at}
	data, _ = natsbus.EncodeResult(natsbus.ResultFromTransfer(rev, nil))
	back, err = natsbus.DecodeResult(data)
	if err != nil || back.Reverses != rev.Reverses || back.FromAccountID != rev.From || back.HoldID != uuid.Nil ||
		!strings.Contains(string(data), `"reverses":"`+tHold+`"`) {
		t.Fatalf("reversal result %s: %+v %v", data, back, err)
	}
	conflict := natsbus.ConflictNotice(transfer.Request{ID: uuid.New(), Kind: transfer.KindVoid, HoldID: uuid.MustParse(tHold)}, at, nil)
	if conflict.HoldID.String() != tHold || conflict.Reason != transfer.CodeTransferIDConflict {
		t.Fatalf("conflict notice %+v", conflict)
	}
}
