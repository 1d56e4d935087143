package gateway

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/transfer"
	"github.com/wallet/wallet/internal/transfer/wire"
)

const (
	idA = "0b7a3f3e-6a5e-4c1b-9a55-2f0d7c1e9a01"
	idB = "1c8b4f4f-7b6f-4d2c-8b66-3f1e8d2f0b12"
	idC = "2d9c5a5a-8c7a-4e3d-9c77-4a2f9e3a1c23"
)

func TestDecodeTransfer(t *testing.T) {
	t.Parallel()
	r, p := decode(wire.Transfer, []byte(`{"id":"`+strings.ToUpper(idA)+`","from_account_id":"`+idB+`","to_account_id":"`+idC+`","amount":"100.111","currency":"usd"}`))
	if p != nil {
		t.Fatalf("problem: %v", p)
	}
	want := transfer.Request{ID: uuid.MustParse(idA), Kind: transfer.KindTransfer, From: uuid.MustParse(idB),
		To: uuid.MustParse(idC), Amount: decimal.RequireFromString("100.111"), Currency: "usd"}
	if r.ID != want.ID || r.Kind != want.Kind || r.From != want.From || r.To != want.To ||
		!r.Amount.Equal(want.Amount) || r.Currency != want.Currency {
		t.Fatalf("got %+v, want %+v", r, want)
	}
}

func TestDecodeMovement(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"` + idA + `","account_id":"` + idB + `","amount":"5","currency":"EUR"}`)
	d, p := decode(wire.Deposit, body)
	if p != nil || d.To != uuid.MustParse(idB) || d.From != uuid.Nil || d.Kind != transfer.KindDeposit {
		t.Fatalf("deposit: %+v %v", d, p)
	}
	w, p := decode(wire.Withdrawal, body)
	if p != nil || w.From != uuid.MustParse(idB) || w.To != uuid.Nil || w.Kind != transfer.KindWithdrawal {
		t.Fatalf("withdrawal: %+v %v", w, p)
	}
}

func TestDecodeLegacyNumberAmountIsExact(t *testing.T) {
	t.Parallel()
	// 0.1 + 0.2 style values must not pass through a float.
	body := `{"id":"` + idA + `","sender_account_id":"` + idB + `","receiver_account_id":"` + idC +
		`","amount":123456789012345678.123456789,"currency_code":"USD"}`
	r, p := decode(wire.Legacy, []byte(body))
	if p != nil {
		t.Fatalf("problem: %v", p)
	}
	if got := r.Amount.String(); got != "123456789012345678.123456789" {
		t.Fatalf("amount %s", got)
	}
	r, p = decode(wire.Legacy, []byte(`{"id":"`+idA+`"}`))
	if p != nil || !r.Amount.IsZero() {
		t.Fatalf("missing legacy amount: %v %v", r.Amount, p)
	}
}

// decodeCase is one body and the code and field it must be refused with
// (code "" means accepted by the decoder).
type decodeCase struct {
	name, body string
	code       transfer.Code
	field      string
}

// transferFields are POST /v1/transfers' keys, in the order tbody writes
// them.
var transferFields = []string{"id", "from_account_id", "to_account_id", "amount", "currency", "metadata", "reference"}

func tbody(fields string) string {
	base := map[string]string{"id": `"` + idA + `"`, "from_account_id": `"` + idB + `"`, "to_account_id": `"` + idC + `"`,
		"amount": `"10.00"`, "currency": `"USD"`}
	for _, kv := range strings.Split(fields, "|") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if v == "<absent>" {
			delete(base, k)
			continue
		}
		base[k] = v
	}
	var b strings.Builder
	b.WriteString("{")
	for _, k := range transferFields {
		if v, ok := base[k]; ok {
			if b.Len() > 1 {
				b.WriteString(",")
			}
			b.WriteString(`"` + k + `":` + v)
		}
	}
	b.WriteString("}")
	return b.String()
}

var decodeCases = []decodeCase{
	{"valid", tbody(""), "", ""},
	{"empty body", ``, CodeMalformedJSON, ""},
	{"whitespace only", " \n\t", CodeMalformedJSON, ""},
	{"not an object", `["id"]`, CodeMalformedJSON, ""},
	{"string", `"hello"`, CodeMalformedJSON, ""},
	{"truncated", `{"id":"` + idA, CodeMalformedJSON, ""},
	{"missing colon", `{"id" "x"}`, CodeMalformedJSON, ""},
	{"trailing comma", `{"id":"` + idA + `",}`, CodeMalformedJSON, ""},
	{"trailing garbage", tbody("") + `x`, CodeMalformedJSON, ""},
	{"two objects", tbody("") + tbody(""), CodeMalformedJSON, ""},
	{"single quotes", `{'id':'x'}`, CodeMalformedJSON, ""},
	{"control char in string", "{\"currency\":\"US\x01D\"}", CodeMalformedJSON, ""},
	{"bad escape", `{"currency":"\x"}`, CodeMalformedJSON, ""},
	{"unknown field", `{"id":"` + idA + `","memo":"hi"}`, CodeUnknownField, "memo"},
	{"key case differs", `{"ID":"` + idA + `"}`, CodeUnknownField, "ID"},
	{"duplicate key", `{"amount":"1","amount":"1000"}`, CodeDuplicateField, "amount"},
	{"duplicate key via escape", `{"id":"` + idA + `","\u0069d":"` + idB + `"}`, CodeDuplicateField, "id"},
	{"id number", tbody(`id=7`), CodeInvalidField, "id"},
	{"id object", tbody(`id={"a":1}`), CodeInvalidField, "id"},
	{"id not uuid", tbody(`id="abc"`), CodeInvalidField, "id"},
	{"subject breaking id", tbody(`id="a.b.>"`), CodeInvalidField, "id"},
	{"subject wildcard account", tbody(`from_account_id="*"`), CodeInvalidField, "from_account_id"},
	{"uuid with spaces", tbody(`to_account_id=" ` + idC[1:] + `"`), CodeInvalidField, "to_account_id"},
	{"uuid in braces", tbody(`id="{` + idA[:34] + `}"`), CodeInvalidField, "id"},
	{"uuid urn", tbody(`id="urn:uuid:` + idA + `"`), CodeInvalidField, "id"},
	{"uuid without dashes", tbody(`id="` + strings.ReplaceAll(idA, "-", "") + `"`), CodeInvalidField, "id"},
	{"amount number", tbody(`amount=10`), transfer.CodeInvalidAmount, "amount"},
	{"amount 1e400 number", tbody(`amount=1e400`), transfer.CodeInvalidAmount, "amount"},
	{"amount 1e400 string", tbody(`amount="1e400"`), transfer.CodeInvalidAmount, "amount"},
	{"amount NaN", tbody(`amount="NaN"`), transfer.CodeInvalidAmount, "amount"},
	{"amount Infinity", tbody(`amount="Infinity"`), transfer.CodeInvalidAmount, "amount"},
	{"amount 40 digits", tbody(`amount="` + strings.Repeat("9", 40) + `"`), transfer.CodeInvalidAmount, "amount"},
	{"amount hex", tbody(`amount="0x10"`), transfer.CodeInvalidAmount, "amount"},
	{"amount empty", tbody(`amount=""`), transfer.CodeInvalidAmount, "amount"},
	{"amount absent", tbody(`amount=<absent>`), transfer.CodeInvalidAmount, "amount"},
	{"amount bool", tbody(`amount=true`), transfer.CodeInvalidAmount, "amount"},
	{"amount spaces", tbody(`amount=" 10"`), transfer.CodeInvalidAmount, "amount"},
	{"currency number", tbody(`currency=840`), CodeInvalidField, "currency"},
	{"null id is absent", tbody(`id=null`), "", ""},
	{"minus zero decodes", tbody(`amount="-0"`), "", ""},
}

func TestDecodeCases(t *testing.T) {
	t.Parallel()
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			_, p := decode(wire.Transfer, []byte(tc.body))
			switch {
			case tc.code == "" && p != nil:
				t.Fatalf("unexpected problem %v", p)
			case tc.code == "":
			case p == nil:
				t.Fatalf("accepted; want %s", tc.code)
			case p.Code != tc.code || p.Field != tc.field:
				t.Fatalf("got %s field %q (%s); want %s field %q", p.Code, p.Field, p.Detail, tc.code, tc.field)
			case p.Status != 400:
				t.Fatalf("status %d", p.Status)
			}
		})
	}
}
