package gateway

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/transfer"
)

// Store is what the gateway reads from the database. *postgres.Store
// implements it; its errors (postgres.ErrNotFound, ErrAccountConflict,
// ErrCurrencyNotSupported, ErrBadCursor, ErrBadFilter) are part of the
// contract.
type Store interface {
	CreateAccount(ctx context.Context, id uuid.UUID, currency string) (postgres.Account, bool, error)
	CreateAccountWithMetadata(ctx context.Context, id uuid.UUID, currency string, metadata map[string]string) (postgres.Account, bool, error)
	PatchAccountMetadata(ctx context.Context, id uuid.UUID, patch map[string]*string) (postgres.Account, error)
	SearchAccounts(ctx context.Context, metadata map[string]string, cursor string, limit int) ([]postgres.Account, string, error)
	BalanceAt(ctx context.Context, id uuid.UUID, at time.Time) (postgres.Balance, error)
	SearchEntries(ctx context.Context, accountID uuid.UUID, f postgres.EntryFilter, cursor string, limit int) ([]transfer.Entry, string, error)
	SearchTransfers(ctx context.Context, f postgres.TransferFilter, cursor string, limit int) ([]transfer.Transfer, string, error)
	GetAccount(ctx context.Context, id uuid.UUID) (postgres.Account, error)
	ListAccounts(ctx context.Context, cursor string, limit int) ([]postgres.Account, string, error)
	ListAccountsRecent(ctx context.Context, limit int) ([]postgres.Account, error)
	ListEntries(ctx context.Context, accountID uuid.UUID, cursor string, limit int) ([]transfer.Entry, string, error)
	GetTransfer(ctx context.Context, id uuid.UUID) (transfer.Transfer, error)
	GetHold(ctx context.Context, id uuid.UUID) (transfer.Hold, error)
	ListHolds(ctx context.Context, account uuid.UUID, state transfer.HoldState, cursor string, limit int) ([]transfer.Hold, string, error)
	ListReversals(ctx context.Context, transferID uuid.UUID, cursor string, limit int) ([]transfer.Transfer, string, error)
	Currencies(ctx context.Context) ([]postgres.Currency, error)
	Ping(ctx context.Context) error
}

// Bus is the gateway's side of the requests and results streams.
type Bus interface {
	// Publish stores req in the requests stream and returns once JetStream
	// has acknowledged it; requestID travels in a message header for the
	// logs. duplicate reports that the stream already held a request with
	// req.ID (the dedupe window dropped this one).
	Publish(ctx context.Context, req transfer.Request, requestID string) (duplicate bool, err error)
	// Resubmit stores req under a message id of its own
	// (natsbus.ResubmitMsgID), for when its id is taken in the dedupe
	// window by a message that is not a valid request.
	Resubmit(ctx context.Context, req transfer.Request, requestID string) (duplicate bool, err error)
	// LookupPending finds an accepted request by id in the requests
	// stream. found is false when the stream does not hold it.
	LookupPending(ctx context.Context, id uuid.UUID) (p Pending, found bool, err error)
	// Watch starts listening for outcomes published for id (results and
	// conflict notices alike). Call it before Publish so no outcome is
	// missed; Stop it when done.
	Watch(ctx context.Context, id uuid.UUID) (Watch, error)
	// Ping reports whether NATS is reachable.
	Ping(ctx context.Context) error
}

// Pending is an accepted request not yet known to the database.
type Pending struct {
	Request    transfer.Request
	AcceptedAt time.Time
}

// Watch is a subscription to one id's outcomes. It only signals: the
// outcome itself is read from the database, which holds the decision and
// the fingerprint to compare against.
type Watch interface {
	// Decided receives when an outcome for the id appears; outcomes that
	// appear while a signal is still waiting to be taken share it.
	Decided() <-chan struct{}
	// Stop ends the subscription. It is safe to call more than once.
	Stop()
}

// Ops reads the pipeline's state for the console's overview and dead
// letters. NATSBus implements it; a Bus that also implements Ops is used
// for it, and without one the ops endpoints answer 503.
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
