// Package transfer holds the wallet's domain: the requests that move money,
// their validation, currency rounding, and the pure function that applies an
// ordered batch of requests to a set of account balances.
//
// The package does no I/O and no logging. The store loads the state a batch
// needs, calls Book.Apply, and saves what it returns.
//
// # Words
//
// One request goes by one name in every package; where a layer wraps it,
// the wrapper is named after what it adds.
//
//   - Request: a client's wish to move money - a transfer, deposit,
//     withdrawal, hold, post, void or reversal (Kind). On the wire it is the
//     request body (HTTP) or the envelope (a NATS message's body, see
//     natsbus); both are read by one strict reader (package wire).
//   - Id: the request's UUID, its idempotency key, chosen by the client. A
//     hold's id is also the hold's id, which posts and voids name as HoldID.
//     Not to be confused with the trace id.
//   - Trace id: an optional label that ties one request's log lines
//     together across processes (the X-Trace-Id HTTP header, the
//     Wallet-Trace-Id message header). It plays no part in idempotency.
//   - Attempt: one try of the 2020 API at a request id; the 2020 API is
//     positive-idempotent, so a rejected id may be decided again by a new
//     attempt (see Book.Apply).
//   - Accepted: stored durably by the requests stream, so it will be
//     decided; the HTTP API answers 202 and shows status "pending" until the
//     decision. Pending means exactly that: accepted and not yet decided.
//   - Queue: the gateway's view of the requests stream (natsbus.Producer):
//     publish, look up a pending request, watch for its outcome.
//   - Delivery: one request handed to a worker by the stream, with what it
//     takes to settle it (natsbus.Delivery); a Batch is a partition's run of
//     deliveries, applied together.
//   - Partition: a slice of the requests stream chosen by the debited
//     account, owned by one worker at a time, so one account's requests are
//     decided in the order they were accepted.
//   - Decision: the store's verdict on a request - applied, or rejected with
//     a reason (Code) - made once per id (per attempt on the 2020 API) and
//     then final. A Transfer is the stored decision.
//   - Outcome: what deciding a request returns (Outcome): the decision, and
//     whether it was a replay of one stored earlier or a conflict (the same
//     id with other fields). The outcome message on wallet.results.<id>
//     carries it to whoever waits.
//   - Dead letter: a message the stream delivered that is not a request
//     (malformed, or refused by the store for good), set aside with its
//     reason instead of blocking its partition.
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
