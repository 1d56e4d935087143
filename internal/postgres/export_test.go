package postgres

// The statements of the searches and of BalanceAt, for the test that checks
// their plans.
var (
	SearchTransfersQuery = searchTransfersQuery
	SearchAccountsQuery  = searchAccountsQuery
	SearchEntriesQuery   = searchEntriesQuery
)

// BalanceAtQuery is BalanceAt's statement for an instant.
const BalanceAtQuery = balanceAtQuery
