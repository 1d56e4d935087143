package transfer

import (
	"testing"

	"github.com/google/uuid"
)

var benchID = []byte("6f1c1b2e-3d4a-4b5c-8d6e-7f8091a2b3c4")

// BenchmarkParseID measures the id parser every request pays three times.
func BenchmarkParseID(b *testing.B) {
	for b.Loop() {
		if _, ok := ParseID(benchID); !ok {
			b.Fatal("refused")
		}
	}
}

func BenchmarkParseUUIDBytes(b *testing.B) {
	for b.Loop() {
		if _, err := uuid.ParseBytes(benchID); err != nil {
			b.Fatal(err)
		}
	}
}
