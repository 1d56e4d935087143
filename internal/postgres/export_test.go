package postgres

// The statements of the searches and of BalanceAt, for the test that checks
// their plans.
var (
	SearchTransfersQuery = searchTransfersQuery
	SearchAccountsQuery  = searchAccountsQuery
	SearchEntriesQuery   = searchEntriesQuery
)

const BalanceAtQuery = balanceAtQuery
