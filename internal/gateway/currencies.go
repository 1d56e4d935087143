package gateway

import (
	"context"

	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/transfer"
)

// currencyView reads the currencies table for checks and views. The store
// caches the table and decides when to read it again; a code the cached
// table lacks makes it look again, so a currency added at runtime is seen
// quickly.
type currencyView struct {
	store Store
}

// table returns the currencies table, looking again when it lacks one of
// codes. err is set only when the table was never read and cannot be.
func (v currencyView) table(ctx context.Context, codes ...string) (transfer.Currencies, error) {
	ctx, cancel := context.WithTimeout(ctx, dependencyTimeout)
	defer cancel()
	return v.store.Currencies(ctx, codes...)
}

// precision returns the precision of code (already normalised).
func (v currencyView) precision(ctx context.Context, code string) (int32, bool, error) {
	cs, err := v.table(ctx, code)
	if err != nil {
		return 0, false, err
	}
	p, ok := cs[code]
	return p, ok, nil
}

// list returns the whole table, sorted by code.
func (v currencyView) list(ctx context.Context) ([]transfer.Currency, error) {
	cs, err := v.table(ctx)
	if err != nil {
		return nil, err
	}
	return cs.List(), nil
}

// format writes an amount for a response. The HTTP API shows amounts as
// the ledger holds them, at their currency's precision, so an amount not
// stored yet (a pending request's) is rounded as it will be stored; stored
// amounts are rounded already. An amount in a currency the table does not
// know (a rejected request's) is written as stored.
func (v currencyView) format(ctx context.Context, d decimal.Decimal, currency string) string {
	cs, err := v.table(ctx, currency)
	if err != nil {
		return d.String()
	}
	if p, ok := cs[currency]; ok {
		d = transfer.RoundAmount(d, p)
	}
	return cs.Format(d, currency)
}
