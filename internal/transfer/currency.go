package transfer

import (
	"sort"

	"github.com/shopspring/decimal"
)

// Currency is a supported currency and the number of fraction digits its
// amounts are rounded to.
type Currency struct {
	Code      string
	Precision int32
}

// Currencies is the table of supported currencies: each code (normalised,
// see NormalizeCurrency) with its precision. The store fills it; a table
// is never changed once handed out, so it may be shared.
type Currencies map[string]int32

// List returns the table as a list sorted by code.
func (c Currencies) List() []Currency {
	out := make([]Currency, 0, len(c))
	for code, p := range c {
		out = append(out, Currency{Code: code, Precision: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

// Format writes an amount for a view (an HTTP response, an outcome
// message): with exactly the currency's precision when rounding to it
// loses nothing, else exactly as given. A stored amount is already rounded,
// so it always shows the precision ("100.10"); an amount in a currency the
// table lacks, or one with more digits than its currency keeps (a
// conflicting request's, as the client sent it), keeps its own digits.
func (c Currencies) Format(d decimal.Decimal, code string) string {
	if p, ok := c[code]; ok && d.Equal(RoundAmount(d, p)) {
		return FormatAmount(d, p)
	}
	return d.String()
}
