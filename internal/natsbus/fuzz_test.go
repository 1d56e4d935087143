package natsbus_test

import (
	"errors"
	"testing"

	"github.com/wallet/wallet/internal/natsbus"
)

var fuzzSeeds = []string{
	`{"v":1,"kind":"transfer","id":"` + tID + `","from_account_id":"` + tFrom + `","to_account_id":"` + tTo + `","amount":"100.11","currency":"USD"}`,
	`{"v":1,"kind":"deposit","id":"` + tID + `","account_id":"` + tTo + `","amount":"1","currency":"btc"}`,
	`{"v":1,"kind":"withdrawal","id":"` + tID + `","account_id":"` + tFrom + `","amount":"-0","currency":"EUR"}`,
	`{"v":1,"kind":"transfer","id":"` + tID + `","amount":1e400,"currency":"USD"}`,
	`{"v":1,"kind":"transfer","id":"` + tID + `","amount":"NaN","currency":"USD"}`,
	`{"v":2}`, `{"v":1,"v":1}`, `{"v":1} {}`, `[]`, `null`, "\xff\xfe", `{"v":1,"kind":"transfer","id":"a.b.>"}`,
	`{"v":1,"kind":"transfer","id":"` + tID + `","from_account_id":"` + tFrom + `","to_account_id":"` + tTo + `","amount":"0.001","currency":"US\u0000D"}`,
	`{"v":1,"kind":"deposit","id":"` + tID + `","account_id":"` + tTo + `","amount":"1","currency":"USD","metadata":{"k":"v","a.b":"\u00e9"},"reference":"r"}`,
	`{"v":1,"kind":"void","id":"` + tID + `","hold_id":"` + tFrom + `","metadata":{},"reference":"x y"}`,
	`{"v":1,"kind":"post","id":"` + tID + `","metadata":{"k":1}}`,
}

// FuzzDecodeRequest checks that any input either decodes to a request that
// encodes and decodes back to the same fingerprint, or fails with a reason.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := natsbus.DecodeRequest(data)
		if err != nil {
			var derr *natsbus.DecodeError
			if !errors.As(err, &derr) || derr.Reason == "" {
				t.Fatalf("error without reason: %v", err)
			}
			return
		}
		enc, err := natsbus.EncodeRequest(r)
		if err != nil {
			t.Fatalf("decoded request does not encode: %v", err)
		}
		back, err := natsbus.DecodeRequest(enc)
		if err != nil {
			t.Fatalf("re-decode %s: %v", enc, err)
		}
		if back.Fingerprint() != r.Fingerprint() || back.ID != r.ID {
			t.Fatalf("round trip changed the request: %s", enc)
		}
	})
}

// FuzzDecodeResult checks that DecodeResult never panics and that what it
// accepts encodes and decodes back unchanged.
func FuzzDecodeResult(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"` + tID + `","kind":"transfer","status":"applied","from_account_id":"` + tFrom + `","to_account_id":"` + tTo + `","amount":"100.10","currency":"USD","accepted_at":"2025-01-02T02:04:05.0000006Z","processed_at":"2025-01-02T02:04:05.0010006Z"}`))
	f.Add([]byte(`{"v":1,"id":"` + tID + `","status":"pending","accepted_at":"2025-01-02T02:04:05Z"}`))
	f.Add([]byte(`{"v":1,"id":"` + tID + `","id":"` + tID + `"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := natsbus.DecodeResult(data)
		if err != nil {
			return
		}
		enc, err := natsbus.EncodeResult(r)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		back, err := natsbus.DecodeResult(enc)
		if err != nil {
			t.Fatalf("re-decode %s: %v", enc, err)
		}
		if back.ID != r.ID || back.Amount != r.Amount || back.Status != r.Status || !back.AcceptedAt.Equal(r.AcceptedAt) {
			t.Fatalf("round trip changed the result: %s", enc)
		}
	})
}
