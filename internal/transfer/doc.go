// Package transfer holds the wallet's domain: the requests that move money,
// their validation, currency rounding, and the pure function that applies an
// ordered batch of requests to a set of account balances.
//
// The package does no I/O and no logging. The store loads the state a batch
// needs, calls Book.Apply, and saves what it returns.
package transfer
