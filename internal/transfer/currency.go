package transfer

import (
	"sort"
	"strings"

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

// Limits on an amount's written form. They keep hostile input (1e400,
// 40-digit numbers) out of arithmetic and storage: a real amount of money
// never needs more than 18 integer digits, and every supported precision is
// at most 18 fraction digits, so 30 leaves room for rounding.
const (
	MaxIntegerDigits  = 18
	MaxFractionDigits = 30
	MaxPrecision      = 18
)

// ParseAmount reads an amount written as a plain decimal: an optional sign,
// digits, and optionally a point followed by digits ("100.11", "-5", "0.001").
// Exponents, spaces, "NaN", "Inf", hexadecimal and empty parts are refused with
// CodeInvalidAmount. The sign is accepted so that a negative amount is reported
// as CodeTransferAmountMustBePositive by Validate, as the original service did.
func ParseAmount(s string) (decimal.Decimal, error) {
	body := s
	if strings.HasPrefix(body, "-") || strings.HasPrefix(body, "+") {
		body = body[1:]
	}
	intPart, fracPart, hasPoint := strings.Cut(body, ".")
	if intPart == "" || (hasPoint && fracPart == "") {
		return decimal.Decimal{}, errorf(CodeInvalidAmount, "amount must be a decimal number such as \"100.25\"")
	}
	if !allDigits(intPart) || !allDigits(fracPart) {
		return decimal.Decimal{}, errorf(CodeInvalidAmount, "amount must contain only digits and one decimal point")
	}
	if len(strings.TrimLeft(intPart, "0")) > MaxIntegerDigits {
		return decimal.Decimal{}, errorf(CodeInvalidAmount, "amount has more than 18 integer digits")
	}
	if len(fracPart) > MaxFractionDigits {
		return decimal.Decimal{}, errorf(CodeInvalidAmount, "amount has more than 30 fraction digits")
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, errorf(CodeInvalidAmount, "amount is not a decimal number")
	}
	return d, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// RoundAmount rounds half away from zero to precision fraction digits, the
// rule the original service used (100.111 USD is 100.11, 0.005 USD is 0.01).
func RoundAmount(d decimal.Decimal, precision int32) decimal.Decimal {
	return d.Round(precision)
}

// FormatAmount writes an amount with exactly precision fraction digits, the
// form used on the wire ("899.89", "1.00000000").
func FormatAmount(d decimal.Decimal, precision int32) string {
	return d.StringFixed(precision)
}
