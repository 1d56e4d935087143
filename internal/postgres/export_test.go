package postgres

// The statements of the searches, for the test that checks their plans.
var (
	SearchTransfersQuery = searchTransfersQuery
	SearchAccountsQuery  = searchAccountsQuery
)
