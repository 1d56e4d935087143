package transfer

import (
	"reflect"
	"testing"

	"github.com/shopspring/decimal"
)

// TestCurrenciesFormat pins the one rule by which responses and outcome
// messages write amounts.
func TestCurrenciesFormat(t *testing.T) {
	t.Parallel()
	cs := Currencies{"USD": 2, "BTC": 8, "JPY": 0}
	for _, tc := range []struct {
		amount, code, want string
	}{
		{"100.1", "USD", "100.10"},
		{"0", "USD", "0.00"},
		{"1", "BTC", "1.00000000"},
		{"1500", "JPY", "1500"},
		// More digits than the currency keeps: as given, not rounded.
		{"11.005", "USD", "11.005"},
		{"0.017397489", "BTC", "0.017397489"},
		// A currency the table lacks: as given.
		{"1.234", "XYZ", "1.234"},
		{"1.50", "XYZ", "1.5"},
	} {
		if got := cs.Format(decimal.RequireFromString(tc.amount), tc.code); got != tc.want {
			t.Errorf("Format(%s %s) = %q, want %q", tc.amount, tc.code, got, tc.want)
		}
	}
}

func TestCurrenciesList(t *testing.T) {
	t.Parallel()
	got := Currencies{"USD": 2, "BTC": 8, "EUR": 2}.List()
	want := []Currency{{"BTC", 8}, {"EUR", 2}, {"USD", 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("List() = %v, want %v", got, want)
	}
}
