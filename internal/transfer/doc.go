// Package transfer holds the wallet's domain: the requests that move money,
// their validation, currency rounding, and the pure function that applies an
// ordered batch of requests to a set of account balances.
//
// The package does no I/O and no logging. The store loads the state a batch
// needs, calls Book.Apply, and saves what it returns.
//
// # Words
//
//   - Request id: the idempotency key of a request of any kind. A hold's id
//     is also the hold's id, which posts and voids name as HoldID.
//   - Acceptance time (AcceptedAt): when the requests stream stored the
//     request, the time its per-account order is kept by. The HTTP and NATS
//     contracts call it accepted_at; the database column is submitted_at.
//   - Balance: the money on an account. Held: the part of it reserved by the
//     account's holds in state held. Available: balance less held; every
//     debit (transfer, withdrawal, hold, reversal) needs available funds.
//   - Hold: a reservation of an amount on its sender for its receiver. It
//     moves no money; a post moves at most its amount and releases the rest,
//     a void or an expiry releases it all. Posted, voided and expired are
//     final, and a hold reaches one of them at most once.
//   - Metadata and reference: a client's labels on a request (string pairs,
//     and its own id for it, unique across all requests). Both are part of
//     the request's identity (its fingerprint). A reference belongs to the
//     first request decided with it, applied or rejected; another id with
//     it is rejected CodeReferenceAlreadyUsed and does not take it.
//   - Reversal: money moved back from an applied transfer, deposit,
//     withdrawal or post's receiver to its sender. The reversed request's
//     ReversedAmount, the sum of its applied reversals, never exceeds its
//     amount.
//
// # Expiry
//
// A hold with a timeout expires at ExpiresAt, its applied time plus the
// timeout. Whether it has expired is decided with the decision time of the
// batch that asks (Book.Apply's now), never with a request's acceptance
// time, and only ever together with the sender's account: a post or void
// of a hold that is due (Hold.Due) is rejected with CodeHoldExpired and
// expires the hold in the same decision, and the service's sweep
// (Book.Expire) expires due holds no request named. The store runs both
// under the lock of the hold's sender, so a post and an expiry of one hold
// are serialised by the database: the one that takes the lock first wins
// and the other sees its result.
package transfer
