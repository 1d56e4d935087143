package transfer

import "sort"

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
