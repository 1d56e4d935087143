package gateway

import (
	"testing"

	"github.com/wallet/wallet/internal/transfer/wire"
)

var (
	benchTransfer = []byte(`{"id":"` + idA + `","from_account_id":"` + idB + `","to_account_id":"` + idC + `","amount":"100.11","currency":"USD"}`)
	benchDeposit  = []byte(`{"id":"` + idA + `","account_id":"` + idB + `","amount":"1000","currency":"USD"}`)
	benchLegacy   = []byte(`{"id":"` + idA + `","sender_account_id":"` + idB + `","receiver_account_id":"` + idC + `","amount":100.111,"currency_code":"usd"}`)
	benchEscaped  = []byte(`{"id":"` + idA + `","from_account_id":"` + idB + `","to_account_id":"` + idC + `","amount":"100.11","currency":"\u0055SD"}`)
)

func BenchmarkDecodeTransfer(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchTransfer)))
	for b.Loop() {
		if _, p := decode(wire.Transfer, benchTransfer); p != nil {
			b.Fatal(p)
		}
	}
}

func BenchmarkDecodeDeposit(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchDeposit)))
	for b.Loop() {
		if _, p := decode(wire.Deposit, benchDeposit); p != nil {
			b.Fatal(p)
		}
	}
}

func BenchmarkDecodeLegacyTransfer(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchLegacy)))
	for b.Loop() {
		if _, p := decode(wire.Legacy, benchLegacy); p != nil {
			b.Fatal(p)
		}
	}
}

func BenchmarkDecodeTransferEscaped(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchEscaped)))
	for b.Loop() {
		if _, p := decode(wire.Transfer, benchEscaped); p != nil {
			b.Fatal(p)
		}
	}
}

// BenchmarkDecodeRejected measures a hostile body refused early.
func BenchmarkDecodeRejected(b *testing.B) {
	body := []byte(`{"id":"` + idA + `","amount":1e400}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, p := decode(wire.Transfer, body); p == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkDecodeTransferLabels measures a transfer with two metadata pairs
// and a reference: what labels add to the fast path.
func BenchmarkDecodeTransferLabels(b *testing.B) {
	body := []byte(`{"id":"` + idA + `","from_account_id":"` + idB + `","to_account_id":"` + idC +
		`","amount":"100.11","currency":"USD","metadata":{"order_id":"A-1001","customer":"c_77"},"reference":"order-1001"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, p := decode(wire.Transfer, body); p != nil {
			b.Fatal(p)
		}
	}
}
