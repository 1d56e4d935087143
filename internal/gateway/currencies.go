package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/transfer"
)

// missReloadInterval limits reloads caused by unknown codes: a client
// sending made-up currencies must not turn each request into a query.
const missReloadInterval = time.Second

// currencyCache holds the currencies table, which changes rarely. It is
// reloaded when older than its TTL, and on a miss at most once a second, so
// a currency added at runtime is seen quickly. When the database is down a
// stale table is still used.
type currencyCache struct {
	store Store
	ttl   time.Duration
	mu    sync.Mutex // serialises reloads
	table atomic.Pointer[currencyTable]
}

type currencyTable struct {
	precision map[string]int32
	list      []transfer.Currency
	loaded    time.Time
}

func newCurrencyCache(store Store, ttl time.Duration) *currencyCache {
	return &currencyCache{store: store, ttl: ttl}
}

// precision returns the precision of code (already normalised). err is set
// only when the table was never loaded and cannot be.
func (c *currencyCache) precision(ctx context.Context, code string) (int32, bool, error) {
	t := c.table.Load()
	if t != nil {
		age := time.Since(t.loaded)
		p, ok := t.precision[code]
		if (ok && age < c.ttl) || (!ok && age < missReloadInterval) {
			return p, ok, nil
		}
	}
	t, err := c.reload(ctx, t)
	if err != nil {
		return 0, false, err
	}
	p, ok := t.precision[code]
	return p, ok, nil
}

// reload reads the table unless another goroutine replaced seen meanwhile.
// On failure it falls back to the table it has, if any.
func (c *currencyCache) reload(ctx context.Context, seen *currencyTable) (*currencyTable, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.table.Load(); cur != seen {
		return cur, nil
	}
	ctx, cancel := context.WithTimeout(ctx, dependencyTimeout)
	defer cancel()
	list, err := c.store.Currencies(ctx)
	if err != nil {
		if seen != nil {
			return seen, nil
		}
		return nil, err
	}
	t := &currencyTable{precision: make(map[string]int32, len(list)), list: list, loaded: time.Now()}
	for _, cur := range list {
		t.precision[cur.Code] = cur.Precision
	}
	c.table.Store(t)
	return t, nil
}

// list returns the whole table, reloading it when stale.
func (c *currencyCache) list(ctx context.Context) ([]transfer.Currency, error) {
	t := c.table.Load()
	if t == nil || time.Since(t.loaded) >= c.ttl {
		var err error
		if t, err = c.reload(ctx, t); err != nil {
			return nil, err
		}
	}
	return t.list, nil
}

// format writes an amount with its currency's precision. An amount in a
// currency the table does not know (a rejected request's) is written as
// stored.
func (c *currencyCache) format(ctx context.Context, d decimal.Decimal, currency string) string {
	if p, ok, err := c.precision(ctx, currency); err == nil && ok {
		return transfer.FormatAmount(transfer.RoundAmount(d, p), p)
	}
	return d.String()
}
