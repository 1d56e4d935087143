package natsbus_test

import (
	"testing"

	"github.com/wallet/wallet/internal/natsbus"
)

var benchEnvelope = []byte(`{"v":1,"kind":"transfer","id":"` + tID + `","from_account_id":"` + tFrom +
	`","to_account_id":"` + tTo + `","amount":"100.11","currency":"USD"}`)

// BenchmarkDecodeRequest measures the workers' decoding of one envelope,
// paid once per delivered request.
func BenchmarkDecodeRequest(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchEnvelope)))
	for b.Loop() {
		if _, err := natsbus.DecodeRequest(benchEnvelope); err != nil {
			b.Fatal(err)
		}
	}
}
