package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wallet/wallet/internal/transfer"
)

// The currencies table changes rarely, so the store keeps one copy for
// everyone in the process: the batches it decides, the gateway's views and
// checks, and the worker's outcome messages.
const (
	// currencyTTL is how long a cached table is trusted by Currencies; a
	// precision changed at runtime is seen within it.
	currencyTTL = time.Minute
	// currencyMissInterval limits the reads Currencies makes for codes the
	// table lacks: a client sending made-up currencies must not turn each
	// request into a query.
	currencyMissInterval = time.Second
)

// currencyCache holds the last table read. Readers load it without a lock;
// reads of the database are serialised by mu.
type currencyCache struct {
	mu    sync.Mutex
	table atomic.Pointer[currencyTable]
}

type currencyTable struct {
	currencies transfer.Currencies
	loaded     time.Time
}

// has reports whether t lists every one of codes.
func (t *currencyTable) has(codes []string) bool {
	if t == nil {
		return false
	}
	for _, c := range codes {
		if _, ok := t.currencies[c]; !ok {
			return false
		}
	}
	return true
}

// Currencies returns the supported currencies with their precisions. The
// table is cached: it is read again when older than a minute, or when it
// lacks one of codes (normalised, see transfer.NormalizeCurrency) and was
// not read in the last second, so a currency added at runtime is seen
// quickly. When the database cannot be read the table read before is
// returned; the error is returned only when there is none.
func (s *Store) Currencies(ctx context.Context, codes ...string) (transfer.Currencies, error) {
	t := s.currencies.table.Load()
	if t != nil {
		age := time.Since(t.loaded)
		if age < currencyTTL && (age < currencyMissInterval || t.has(codes)) {
			return t.currencies, nil
		}
	}
	fresh, err := s.reloadCurrencies(ctx, t, nil)
	if err != nil {
		if t != nil {
			return t.currencies, nil
		}
		return nil, err
	}
	return fresh.currencies, nil
}

// currenciesFor returns the table to decide reqs with. It is read again
// whenever a request names a currency the cached table lacks, however
// recently it was read, and an error is returned when it cannot be: a
// request must never be rejected currency_not_supported on a stale table.
func (s *Store) currenciesFor(ctx context.Context, reqs []transfer.Request) (transfer.Currencies, error) {
	codes := make([]string, 0, len(reqs))
	for _, r := range reqs {
		// Posts, voids and reversals carry no currency: theirs is the
		// hold's or the reversed request's, already in the table.
		if r.Currency != "" {
			codes = append(codes, transfer.NormalizeCurrency(r.Currency))
		}
	}
	t := s.currencies.table.Load()
	if t.has(codes) {
		return t.currencies, nil
	}
	fresh, err := s.reloadCurrencies(ctx, t, codes)
	if err != nil {
		return nil, err
	}
	return fresh.currencies, nil
}

// reloadCurrencies reads the table, unless another reader replaced seen
// while this one waited for the lock and the new table lists codes (any
// new table will do when codes is empty).
func (s *Store) reloadCurrencies(ctx context.Context, seen *currencyTable, codes []string) (*currencyTable, error) {
	c := &s.currencies
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.table.Load(); cur != seen && cur.has(codes) {
		return cur, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT code, precision FROM currencies`)
	if err != nil {
		return nil, fmt.Errorf("read currencies: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (transfer.Currency, error) {
		var cur transfer.Currency
		err := r.Scan(&cur.Code, &cur.Precision)
		return cur, err
	})
	if err != nil {
		return nil, fmt.Errorf("read currencies: %w", err)
	}
	t := &currencyTable{currencies: make(transfer.Currencies, len(list)), loaded: time.Now()}
	for _, cur := range list {
		t.currencies[cur.Code] = cur.Precision
	}
	c.table.Store(t)
	return t, nil
}
