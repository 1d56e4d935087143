package gateway

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// Store is what the gateway reads from the database. *postgres.Store
// implements it; its errors (transfer.ErrNotFound, ErrAccountConflict,
// ErrCurrencyNotSupported, ErrBadCursor, ErrBadFilter) are part of the
// contract.
type Store interface {
	CreateAccount(ctx context.Context, id uuid.UUID, currency string) (transfer.Account, bool, error)
	CreateAccountWithMetadata(ctx context.Context, id uuid.UUID, currency string, metadata map[string]string) (transfer.Account, bool, error)
	PatchAccountMetadata(ctx context.Context, id uuid.UUID, patch map[string]*string) (transfer.Account, error)
	SearchAccounts(ctx context.Context, metadata map[string]string, cursor string, limit int) ([]transfer.Account, string, error)
	BalanceAt(ctx context.Context, id uuid.UUID, at time.Time) (transfer.Balance, error)
	SearchEntries(ctx context.Context, accountID uuid.UUID, f transfer.EntryFilter, cursor string, limit int) ([]transfer.Entry, string, error)
	SearchTransfers(ctx context.Context, f transfer.Filter, cursor string, limit int) ([]transfer.Transfer, string, error)
	GetAccount(ctx context.Context, id uuid.UUID) (transfer.Account, error)
	ListAccounts(ctx context.Context, cursor string, limit int) ([]transfer.Account, string, error)
	ListAccountsRecent(ctx context.Context, limit int) ([]transfer.Account, error)
	ListEntries(ctx context.Context, accountID uuid.UUID, cursor string, limit int) ([]transfer.Entry, string, error)
	GetTransfer(ctx context.Context, id uuid.UUID) (transfer.Transfer, error)
	GetHold(ctx context.Context, id uuid.UUID) (transfer.Hold, error)
	ListHolds(ctx context.Context, account uuid.UUID, state transfer.HoldState, cursor string, limit int) ([]transfer.Hold, string, error)
	ListReversals(ctx context.Context, transferID uuid.UUID, cursor string, limit int) ([]transfer.Transfer, string, error)
	// Currencies returns the currencies table, cached by the store; one of
	// codes missing from the cached table makes it look again.
	Currencies(ctx context.Context, codes ...string) (transfer.Currencies, error)
	Ping(ctx context.Context) error
}

// Queue is where the gateway leaves accepted requests for the workers
// (the requests stream) and hears that they were decided (the results
// stream). *natsbus.Producer implements it.
type Queue interface {
	// Publish stores req and returns once it is durably stored; traceID
	// travels with it for the logs. duplicate reports that the queue
	// already held a request under req's id (or, for an attempt, under
	// its attempt) and dropped this one.
	Publish(ctx context.Context, req transfer.Request, traceID string) (duplicate bool, err error)
	// Resubmit stores req under a message id of its own
	// (natsbus.ResubmitMsgID), for when its id is taken in the dedupe
	// window by a message that is not a valid request.
	Resubmit(ctx context.Context, req transfer.Request, traceID string) (duplicate bool, err error)
	// LookupPending finds an accepted request by id, with its acceptance
	// time in AcceptedAt. found is false when the queue does not hold it.
	LookupPending(ctx context.Context, id uuid.UUID) (req transfer.Request, found bool, err error)
	// WatchOutcome starts listening for outcomes published for id
	// (results and conflict notices alike): outcomes receives each as it
	// appears, a newer one replacing one not yet taken. The v1 API takes
	// it as a signal and reads the outcome from the database, which holds
	// the decision and the fingerprint to compare against; the 2020 API
	// answers from an outcome that decides its attempt. Call it before
	// Publish so no outcome is missed; call stop when done.
	WatchOutcome(ctx context.Context, id uuid.UUID) (outcomes <-chan natsbus.Outcome, stop func(), err error)
	// Ping reports whether the queue is reachable.
	Ping(ctx context.Context) error
}

// Pending is an accepted request not yet known to the database.
type Pending struct {
	Request    transfer.Request
	AcceptedAt time.Time
}

// Ops reads the pipeline's state for the console's overview and dead
// letters. *natsbus.Producer implements it; a Queue that also implements
// Ops is used for it, and without one the ops endpoints answer 503.
type Ops interface {
	// Pipeline is a snapshot of the streams, partitions and members.
	Pipeline(ctx context.Context) (natsbus.Pipeline, error)
	// DeadLetters lists up to limit dead letters stored before sequence
	// before (0: the newest), newest first, without bodies, and the
	// sequence to continue before (0: no more).
	DeadLetters(ctx context.Context, before uint64, limit int) ([]natsbus.DeadLetter, uint64, error)
	// DeadLetter reads one, body included; natsbus.ErrDeadLetterNotFound
	// when the stream does not hold it.
	DeadLetter(ctx context.Context, seq uint64) (natsbus.DeadLetter, error)
}
