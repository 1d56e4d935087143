package transfer

import (
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
)

// The store's search filters and its balance as of an instant: what the
// gateway asks for and reads back, declared here so that it needs no store
// types.

// Filter selects decided requests for the store's
// SearchTransfers. A zero field does not filter.
type Filter struct {
	// Account matches requests naming it on either side.
	Account uuid.UUID
	Kind    Kind
	Status  Status
	// Reference is the client's external id: at most one request has it.
	Reference string
	// Metadata matches requests whose metadata holds every pair.
	Metadata map[string]string
	// After and Before bound the decision time (processed_at): After <
	// processed_at <= Before, the window whose entries take an account's
	// balance from BalanceAt(After) to BalanceAt(Before).
	After, Before time.Time
}

// EntryFilter bounds an account's statement by entry time: After <
// created_at <= Before, as Filter bounds decision time. A zero
// field does not filter.
type EntryFilter struct {
	After, Before time.Time
}

// Balance is an account's balance as of an instant.
type Balance struct {
	AccountID uuid.UUID
	Currency  string
	// Balance is the balance after the account's last entry at or before
	// At; zero before its first.
	Balance decimal.Decimal
	// Available is Balance less the amounts of the account's holds that
	// were in state held at At: created at or before it, and not posted,
	// voided or expired until after it.
	Available decimal.Decimal
	// Version is the version of that entry; 0 before the first.
	Version int64
	At      time.Time
}
