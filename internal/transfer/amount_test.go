package transfer

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"
)

func TestParseAmount(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"100.111": "100.111", "0.001": "0.001", "-5": "-5", "+7.50": "7.5", "-0": "0",
		"000123.4500": "123.45", "999999999999999999": "999999999999999999",
	}
	for in, want := range good {
		d, err := ParseAmount(in)
		if err != nil {
			t.Errorf("ParseAmount(%q): %v", in, err)
			continue
		}
		if d.String() != want {
			t.Errorf("ParseAmount(%q) = %s, want %s", in, d, want)
		}
	}
	bad := []string{"", "-", ".", "1.", ".5", "1e400", "1E2", "NaN", "Inf", "0x10", " 1", "1 ", "1,5",
		"1.2.3", "--1", "1000000000000000000", "0.0000000000000000000000000000001", "١٢٣"}
	for _, in := range bad {
		_, err := ParseAmount(in)
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeInvalidAmount {
			t.Errorf("ParseAmount(%q) error = %v, want %s", in, err, CodeInvalidAmount)
		}
	}
}

func TestRoundAmountHalfAwayFromZero(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in        string
		precision int32
		want      string
	}{
		{"100.111", 2, "100.11"}, {"100.115", 2, "100.12"}, {"0.005", 2, "0.01"}, {"0.004", 2, "0"},
		{"2.5", 0, "3"}, {"1.0005", 3, "1.001"}, {"1.23456789012345678901", 18, "1.234567890123456789"},
	}
	for _, c := range cases {
		got := RoundAmount(decimal.RequireFromString(c.in), c.precision)
		if !got.Equal(decimal.RequireFromString(c.want)) {
			t.Errorf("RoundAmount(%s, %d) = %s, want %s", c.in, c.precision, got, c.want)
		}
	}
	if got := FormatAmount(decimal.RequireFromString("200.1"), 2); got != "200.10" {
		t.Errorf("FormatAmount = %s, want 200.10", got)
	}
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"100.111", "-0", "0.001", "1e400", "NaN", "1234567890123456789012345678901234567890", "+1.5", ".", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseAmount(s)
		if err != nil {
			return
		}
		// Whatever is accepted is within the documented size and round-trips.
		if len(d.Truncate(0).Abs().String()) > MaxIntegerDigits {
			t.Fatalf("ParseAmount(%q) accepted %s with too many integer digits", s, d)
		}
		again, err := ParseAmount(d.String())
		if err != nil || !again.Equal(d) {
			t.Fatalf("ParseAmount(%q) = %s does not round-trip: %v", s, d, err)
		}
		for p := int32(0); p <= MaxPrecision; p += 6 {
			r := RoundAmount(d, p)
			if r.Sub(d).Abs().GreaterThan(decimal.New(5, -p-1)) {
				t.Fatalf("RoundAmount(%s, %d) = %s is more than half a unit away", d, p, r)
			}
		}
	})
}
