package transfer

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"pgregory.net/rapid"
)

// TestParseIDAgreesWithUUID: on 36-character inputs ParseID accepts what
// uuid.Parse accepts, with the same value; it refuses every other length,
// and reads a string and its bytes alike.
func TestParseIDAgreesWithUUID(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.OneOf(
			rapid.StringMatching(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`),
			rapid.StringMatching(`[0-9a-gA-G{}:-]{34,38}`),
			rapid.Just("{"+strings.Repeat("a", 32)+"}--"),
			rapid.Just(strings.Repeat("0", 32)),
		).Draw(t, "s")
		got, ok := ParseID(s)
		gotB, okB := ParseID([]byte(s))
		if got != gotB || ok != okB {
			t.Fatalf("string and bytes differ on %q", s)
		}
		want, err := uuid.Parse(s)
		wantOK := err == nil && len(s) == 36
		if ok != wantOK || (ok && got != want) {
			t.Fatalf("ParseID(%q) = %v %v, uuid.Parse: %v %v", s, got, ok, want, err)
		}
	})
}
