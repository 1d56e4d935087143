package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"unicode/utf8"

	"github.com/wallet/wallet/internal/transfer"
	"github.com/wallet/wallet/internal/transfer/wire"
)

// FuzzDecoders runs every request decoder on arbitrary bodies. None may
// panic, and the hand-written JSON reader must agree with encoding/json:
// what it accepts is valid JSON with the same values, and what it calls
// malformed encoding/json refuses too (or finds not to be an object).
func FuzzDecoders(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte(tc.body))
	}
	for _, s := range []string{
		`{"id":"` + idA + `","sender_account_id":"` + idB + `","receiver_account_id":"` + idC + `","amount":100.111,"currency_code":"USD"}`,
		`{"id":"` + idA + `","account_id":"` + idB + `","amount":"0.001","currency":"USD"}`,
		`{"currency":"usd"}`,
		`{"amount":-0}`, `{"amount":1E+2}`, `{"amount":01}`, `{"amount":-}`, `{"\ud800":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = decode(wire.Transfer, body)
		_, _ = decode(wire.Deposit, body)
		_, _ = decode(wire.Withdrawal, body)
		_, _ = decode(wire.Legacy, body)
		_, _ = decodeAccountRequest(body, "id", "currency", "metadata")

		names := []string{"id", "sender_account_id", "receiver_account_id", "amount", "currency_code"}
		vals := make([]wire.Value, len(names))
		rd := wire.Reader{Names: names}
		var p *Problem
		if _, err := rd.Read(body, vals); err != nil {
			p = readProblem(transfer.KindTransfer, err)
		}
		for _, v := range vals {
			if v.Kind == wire.Object || v.Kind == wire.Array {
				return // the reader stops at such a value; the rest is unread
			}
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		err := dec.Decode(&m)
		if err == nil {
			if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
				err = errors.New("trailing data")
			}
		}
		switch {
		case p == nil:
			if err != nil || m == nil {
				t.Fatalf("accepted %q, encoding/json: %v", body, err)
			}
			if !utf8.Valid(body) {
				return
			}
			for i, name := range names {
				got, want := vals[i], m[name]
				switch got.Kind {
				case wire.String:
					if s, ok := want.(string); !ok || s != string(got.Text) {
						t.Fatalf("%s: got %q, encoding/json %#v", name, got.Text, want)
					}
				case wire.Number:
					if n, ok := want.(json.Number); !ok || string(n) != string(got.Text) {
						t.Fatalf("%s: got number %q, encoding/json %#v", name, got.Text, want)
					}
				case wire.Absent:
					if _, ok := m[name]; ok {
						t.Fatalf("%s: missed, encoding/json has %#v", name, want)
					}
				}
			}
		case p.Code == CodeMalformedJSON:
			if err == nil && m != nil {
				t.Fatalf("called %q malformed (%s), encoding/json read %#v", body, p.Detail, m)
			}
		}
	})
}
