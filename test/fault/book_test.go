package fault

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// Check names, as they appear in a report.
const (
	checkLost         = "lost"           // accepted, never decided
	checkPhantom      = "phantom"        // decided, never sent
	checkRefused      = "refused-stored" // refused by the gateway (a 4xx, or a 503 while NATS was down), yet stored
	checkFields       = "fields"         // stored transfer differs from the request
	checkOutcome      = "outcome"        // applied or rejected against the rules of the load
	checkEntries      = "entries"        // an applied transfer without exactly its 1 or 2 entries
	checkOrphan       = "orphan-entry"   // an entry of no applied transfer
	checkConservation = "conservation"   // balances != deposits - withdrawals
	checkNegative     = "negative"       // a balance below zero
	checkReplay       = "replay"         // a statement that does not replay to its balance
	checkOrder        = "order"          // debits applied out of acceptance order
	checkResults      = "results"        // the results stream disagrees with the database
	checkContract     = "contract"       // an answer that breaks the API contract
	checkCrash        = "crash"          // a process died on its own or logged a panic
	checkRecovery     = "recovery"       // the service did not serve every partition again after a fault
	checkConflict     = "conflict"       // a conflict notice no client caused, or a twin the stream should have dropped
	checkAvailable    = "available"      // held or available (balance - held) below zero, or held != the sum of live holds
	checkHolds        = "holds"          // a hold row without its request, or a state its settlements do not explain
	checkReversals    = "reversals"      // reversed_amount != the sum of applied reversals, past the amount, or of an irreversible request
)

// violations collects failed checks by name, keeping a few examples each.
type violations struct {
	count    map[string]int
	examples map[string][]string
}

func newViolations() *violations {
	return &violations{count: map[string]int{}, examples: map[string][]string{}}
}

func (v *violations) add(check, format string, args ...any) {
	v.count[check]++
	if len(v.examples[check]) < 8 {
		v.examples[check] = append(v.examples[check], fmt.Sprintf(format, args...))
	}
}

func (v *violations) total() int {
	n := 0
	for _, c := range v.count {
		n += c
	}
	return n
}

func (v *violations) String() string {
	if v.total() == 0 {
		return "none"
	}
	names := make([]string, 0, len(v.count))
	for k := range v.count {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "\n  %s: %d", k, v.count[k])
		for _, e := range v.examples[k] {
			fmt.Fprintf(&b, "\n    - %s", e)
		}
	}
	return b.String()
}

// currencyTotals is one currency's side of the conservation check.
type currencyTotals struct {
	Balances, Deposits, Withdrawals decimal.Decimal
	// DepositsReversed and WithdrawalsReversed are the applied reversals
	// of deposits (money out) and of withdrawals (money back in).
	DepositsReversed, WithdrawalsReversed decimal.Decimal
	// Held is the sum of the accounts' held amounts.
	Held decimal.Decimal
}

// bookReport is what the checker found.
type bookReport struct {
	Sent, Accepted, Refused, Unsettled int
	// StoredUnacknowledged counts requests stored although their client
	// never got an acceptance (a timeout or a 503 after which the request
	// went through): allowed, since the client retries with the same id.
	StoredUnacknowledged            int
	Decided, Applied, Rejected      int
	Reasons                         map[string]int
	Entries, Accounts               int
	Currencies                      map[string]*currencyTotals
	ResultMessages, ConflictNotices int
	// Twins counts the conflicting requests sent under accepted ids;
	// TwinsDropped and TwinsStored say what the stream made of the ones
	// sent over NATS.
	Twins, TwinsDropped, TwinsStored int
	// LegacyConflictNotices counts the notices for 2020-API ids, whose
	// first attempt and retry differ.
	LegacyConflictNotices          int
	OrderedAccounts, OrderedDebits int
	// Redecided counts ids a 2020-API retry decided again after a rejection.
	Redecided int
	// TargetUnknown counts posts, voids and reversals the gateway answered
	// with a 422 naming an unknown hold or transfer.
	TargetUnknown int
	// Holds counts the hold rows by state; Kinds the decided requests of
	// the new kinds by outcome ("post applied", "void rejected", ...).
	Holds map[transfer.HoldState]int
	Kinds map[string]int
	// KindsByRoute counts them by how they were sent ("post via nats").
	KindsByRoute map[string]int
	// PostedInPart counts posts of less than their hold; Reversed counts
	// the requests with applied reversals, ReversedFully those reversed
	// to their whole amount.
	PostedInPart, Reversed, ReversedFully int
	Violations                            *violations
}

func (r *bookReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sent %d, accepted %d, refused by the gateway %d, without a definite answer %d (of which stored %d)\n",
		r.Sent, r.Accepted, r.Refused, r.Unsettled, r.StoredUnacknowledged)
	fmt.Fprintf(&b, "decided %d: applied %d, rejected %d %v; decided again by a 2020-API retry %d\n",
		r.Decided, r.Applied, r.Rejected, r.Reasons, r.Redecided)
	fmt.Fprintf(&b, "entries %d on %d accounts; results stream: %d outcomes, %d conflict notices\n",
		r.Entries, r.Accounts, r.ResultMessages, r.ConflictNotices)
	fmt.Fprintf(&b, "conflicting twins %d: over NATS %d dropped as duplicates, %d stored (each must have one notice); notices for 2020-API ids %d\n",
		r.Twins, r.TwinsDropped, r.TwinsStored, r.LegacyConflictNotices)
	fmt.Fprintf(&b, "order: %d debits on %d accounts checked\n", r.OrderedDebits, r.OrderedAccounts)
	fmt.Fprintf(&b, "holds by state %v; posts of part of a hold %d; requests reversed %d (fully %d); settlements and reversals the gateway found no target for %d\n",
		r.Holds, r.PostedInPart, r.Reversed, r.ReversedFully, r.TargetUnknown)
	kinds := make([]string, 0, len(r.Kinds))
	for k := range r.Kinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	b.WriteString("new kinds:")
	for _, k := range kinds {
		fmt.Fprintf(&b, " %s %d;", k, r.Kinds[k])
	}
	routes := make([]string, 0, len(r.KindsByRoute))
	for k := range r.KindsByRoute {
		routes = append(routes, k)
	}
	sort.Strings(routes)
	b.WriteString("\nnew kinds by route:")
	for _, k := range routes {
		fmt.Fprintf(&b, " %s %d;", k, r.KindsByRoute[k])
	}
	b.WriteString("\n")
	codes := make([]string, 0, len(r.Currencies))
	for c := range r.Currencies {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		t := r.Currencies[c]
		fmt.Fprintf(&b, "%s: balances %s = deposits %s - withdrawals %s - reversed deposits %s + reversed withdrawals %s; held %s\n",
			c, t.Balances, t.Deposits, t.Withdrawals, t.DepositsReversed, t.WithdrawalsReversed, t.Held)
	}
	fmt.Fprintf(&b, "violations: %s", r.Violations)
	return b.String()
}

// storedTransfer is a row of transfers.
type storedTransfer struct {
	ID          uuid.UUID
	Kind        transfer.Kind
	Status      transfer.Status
	Reason      transfer.Code
	From, To    uuid.UUID
	Amount      decimal.Decimal
	Currency    string
	AcceptedAt  time.Time
	ProcessedAt time.Time
	// HoldID is the hold a post or void settles, Reverses the request a
	// reversal reverses; ReversedAmount the sum of a request's applied
	// reversals as stored.
	HoldID, Reverses uuid.UUID
	ReversedAmount   decimal.Decimal
	// Decisions counts the decisions made under the id (2020-API retries
	// of a rejection make more than one).
	Decisions int
	// Metadata and Reference are the stored labels (nil and "": none).
	Metadata  map[string]string
	Reference string
}

// storedEntry is a row of entries.
type storedEntry struct {
	Account      uuid.UUID
	Version      int64
	TransferID   uuid.UUID
	Kind         transfer.Kind
	Direction    transfer.Direction
	Amount       decimal.Decimal
	BalanceAfter decimal.Decimal
	Counterparty uuid.UUID
	Currency     string
}

// storedAccount is a row of accounts.
type storedAccount struct {
	ID       uuid.UUID
	Currency string
	Balance  decimal.Decimal
	Held     decimal.Decimal
	Version  int64
}

// storedHold is a row of holds.
type storedHold struct {
	ID                   uuid.UUID
	From, To             uuid.UUID
	Amount, PostedAmount decimal.Decimal
	Currency             string
	State                transfer.HoldState
	ExpiresAt            time.Time // zero: no timeout
	CreatedAt, UpdatedAt time.Time
}

// ledgerSnapshot is the database's state, read in one transaction.
type ledgerSnapshot struct {
	// ReadAt is taken before the first read: everything in the snapshot
	// was true at ReadAt or later.
	ReadAt     time.Time
	Transfers  map[uuid.UUID]storedTransfer
	Entries    []storedEntry // by account, then version
	Accounts   map[uuid.UUID]storedAccount
	Holds      map[uuid.UUID]storedHold
	Precisions map[string]int32
}

func uuidOf(u pgtype.UUID) uuid.UUID {
	if !u.Valid {
		return uuid.Nil
	}
	return u.Bytes
}

// querier runs queries: a connection, or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// readSnapshot reads the ledger in one repeatable-read transaction, so the
// tables agree with each other.
func readSnapshot(ctx context.Context, conn *pgx.Conn) (*ledgerSnapshot, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	return readLedger(ctx, tx)
}

// readLedger reads the currencies, transfers, entries and accounts.
func readLedger(ctx context.Context, tx querier) (*ledgerSnapshot, error) {
	s := &ledgerSnapshot{
		ReadAt:     time.Now(),
		Transfers:  map[uuid.UUID]storedTransfer{},
		Accounts:   map[uuid.UUID]storedAccount{},
		Holds:      map[uuid.UUID]storedHold{},
		Precisions: map[string]int32{},
	}
	rows, err := tx.Query(ctx, `SELECT code, precision FROM currencies`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var code string
		var p int32
		if err := rows.Scan(&code, &p); err != nil {
			return nil, err
		}
		s.Precisions[code] = p
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT id, kind, status, coalesce(reason, ''), from_account, to_account,
		amount::text, currency, submitted_at, processed_at, decisions, hold_id, reverses, reversed_amount::text,
		metadata::text, coalesce(reference, '') FROM transfers`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var t storedTransfer
		var from, to, holdID, reverses pgtype.UUID
		var amount, kind, status, reason, reversed string
		var metadata *string
		if err := rows.Scan(&t.ID, &kind, &status, &reason, &from, &to, &amount, &t.Currency, &t.AcceptedAt, &t.ProcessedAt,
			&t.Decisions, &holdID, &reverses, &reversed, &metadata, &t.Reference); err != nil {
			return nil, err
		}
		if metadata != nil {
			if err := json.Unmarshal([]byte(*metadata), &t.Metadata); err != nil {
				return nil, fmt.Errorf("transfer %s metadata: %w", t.ID, err)
			}
		}
		t.HoldID, t.Reverses = uuidOf(holdID), uuidOf(reverses)
		if t.ReversedAmount, err = decimal.NewFromString(reversed); err != nil {
			return nil, err
		}
		t.Kind, t.Status, t.Reason = transfer.Kind(kind), transfer.Status(status), transfer.Code(reason)
		t.From, t.To = uuidOf(from), uuidOf(to)
		if t.Amount, err = decimal.NewFromString(amount); err != nil {
			return nil, err
		}
		s.Transfers[t.ID] = t
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT account_id, version, transfer_id, kind, direction, amount::text,
		balance_after::text, counterparty, currency FROM entries ORDER BY account_id, version`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var e storedEntry
		var cp pgtype.UUID
		var kind, dir, amount, after string
		if err := rows.Scan(&e.Account, &e.Version, &e.TransferID, &kind, &dir, &amount, &after, &cp, &e.Currency); err != nil {
			return nil, err
		}
		e.Kind, e.Direction, e.Counterparty = transfer.Kind(kind), transfer.Direction(dir), uuidOf(cp)
		if e.Amount, err = decimal.NewFromString(amount); err != nil {
			return nil, err
		}
		if e.BalanceAfter, err = decimal.NewFromString(after); err != nil {
			return nil, err
		}
		s.Entries = append(s.Entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT id, currency, balance::text, held::text, version FROM accounts`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var a storedAccount
		var balance, held string
		if err := rows.Scan(&a.ID, &a.Currency, &balance, &held, &a.Version); err != nil {
			return nil, err
		}
		if a.Balance, err = decimal.NewFromString(balance); err != nil {
			return nil, err
		}
		if a.Held, err = decimal.NewFromString(held); err != nil {
			return nil, err
		}
		s.Accounts[a.ID] = a
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT id, from_account, to_account, amount::text, posted_amount::text, currency, state,
		expires_at, created_at, updated_at FROM holds`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var h storedHold
		var amount, posted, state string
		var expires pgtype.Timestamptz
		if err := rows.Scan(&h.ID, &h.From, &h.To, &amount, &posted, &h.Currency, &state, &expires, &h.CreatedAt, &h.UpdatedAt); err != nil {
			return nil, err
		}
		h.State = transfer.HoldState(state)
		if expires.Valid {
			h.ExpiresAt = expires.Time
		}
		if h.Amount, err = decimal.NewFromString(amount); err != nil {
			return nil, err
		}
		if h.PostedAmount, err = decimal.NewFromString(posted); err != nil {
			return nil, err
		}
		s.Holds[h.ID] = h
	}
	return s, rows.Err()
}

// streamResult is the part of an outcome message or a conflict notice the
// checker compares.
type streamResult struct {
	ID            uuid.UUID       `json:"id"`
	Kind          transfer.Kind   `json:"kind"`
	Status        transfer.Status `json:"status"`
	Reason        transfer.Code   `json:"reason"`
	FromAccountID uuid.UUID       `json:"from_account_id"`
	ToAccountID   uuid.UUID       `json:"to_account_id"`
	AccountID     uuid.UUID       `json:"account_id"`
	Amount        string          `json:"amount"`
	Currency      string          `json:"currency"`
}

func (r streamResult) String() string {
	from, to := r.accounts()
	return fmt.Sprintf("%s %s %s %s->%s %s %s", r.Kind, r.Status, r.Reason, from, to, r.Amount, r.Currency)
}

// accounts returns the sender and receiver the result names, as a
// transfer row holds them.
func (r streamResult) accounts() (from, to uuid.UUID) {
	switch r.Kind {
	case transfer.KindDeposit:
		return uuid.Nil, r.AccountID
	case transfer.KindWithdrawal:
		return r.AccountID, uuid.Nil
	}
	return r.FromAccountID, r.ToAccountID
}

// resultsSnapshot is every message of the results stream, by request id.
type resultsSnapshot struct {
	Outcomes    map[uuid.UUID][]streamResult
	Conflicts   map[uuid.UUID][]streamResult
	Undecodable []string
}

func newResultsSnapshot() *resultsSnapshot {
	return &resultsSnapshot{Outcomes: map[uuid.UUID][]streamResult{}, Conflicts: map[uuid.UUID][]streamResult{}}
}

// readStream delivers every message a stream holds to fn, in order.
func readStream(ctx context.Context, js jetstream.JetStream, name string, fn func(jetstream.Msg)) error {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return err
	}
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			fn(m)
			meta, err := m.Metadata()
			if err != nil {
				return err
			}
			if meta.Sequence.Stream >= info.State.LastSeq {
				return nil
			}
		}
		if err := batch.Error(); err != nil {
			return err
		}
		if n == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// readResults reads the results stream.
func readResults(ctx context.Context, js jetstream.JetStream) (*resultsSnapshot, error) {
	r := newResultsSnapshot()
	err := readStream(ctx, js, "WALLET_RESULTS", func(m jetstream.Msg) {
		rest, ok := strings.CutPrefix(m.Subject(), "wallet.results.")
		if !ok {
			r.Undecodable = append(r.Undecodable, m.Subject())
			return
		}
		idText, conflict := strings.CutSuffix(rest, ".conflict")
		id, err := uuid.Parse(idText)
		if err != nil {
			r.Undecodable = append(r.Undecodable, m.Subject())
			return
		}
		var res streamResult
		if err := json.Unmarshal(m.Data(), &res); err != nil || res.ID != id {
			r.Undecodable = append(r.Undecodable, m.Subject())
			return
		}
		if conflict {
			r.Conflicts[id] = append(r.Conflicts[id], res)
			return
		}
		r.Outcomes[id] = append(r.Outcomes[id], res)
	})
	return r, err
}

// checkOptions relax what a fault legitimately changes.
type checkOptions struct {
	// ResultsMayBeMissing: the NATS server was killed hard, and outcomes,
	// which the results stream persists asynchronously (they can be
	// re-derived from the database), may be lost. Duplicates and
	// disagreements are still violations.
	ResultsMayBeMissing bool
	// NATSRestartedBetween reports whether the NATS server started anew
	// in a span of time, forgetting the ids of the messages it no longer
	// held (nil: it never restarted).
	NATSRestartedBetween func(from, to time.Time) bool
	// SweepWithin, when set, is how long after its timeout a hold may
	// still be held when the books are read: the workers' sweep must have
	// expired it by then.
	SweepWithin time.Duration
}

// dedupeWindow is the requests stream's duplicate window in the suite's
// deployments (the default: the services get no other).
const dedupeWindow = natsbus.DefaultDuplicates

// dedupeMargin allows for the clocks of the client and the server and for
// the time between a PubAck and its recording.
const dedupeMargin = 5 * time.Second

// checkBook checks the ledger and the results stream against what the
// clients were told. Everything it asserts comes from the database and the
// stream; the recorder only says which ids were accepted and what each
// request asked for. A nil js skips the results stream.
func checkBook(ctx context.Context, conn *pgx.Conn, js jetstream.JetStream, rec *recorder, opts checkOptions) (*bookReport, error) {
	ledger, err := readSnapshot(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	return checkLedger(ctx, ledger, js, rec, opts)
}

// checkLedger is checkBook on a ledger already read.
func checkLedger(ctx context.Context, ledger *ledgerSnapshot, js jetstream.JetStream, rec *recorder, opts checkOptions) (*bookReport, error) {
	var err error
	results := newResultsSnapshot()
	if js != nil {
		if results, err = readResults(ctx, js); err != nil {
			return nil, fmt.Errorf("read results: %w", err)
		}
	}
	records := rec.snapshot()
	rep := &bookReport{Reasons: map[string]int{}, Currencies: map[string]*currencyTotals{}, Violations: newViolations(),
		Holds: map[transfer.HoldState]int{}, Kinds: map[string]int{}, KindsByRoute: map[string]int{}}
	v := rep.Violations
	byID := make(map[uuid.UUID]*record, len(records))
	for i := range records {
		r := &records[i]
		byID[r.Op.ID] = r
		rep.Sent++
		switch {
		case r.Accepted:
			rep.Accepted++
		case r.Refused:
			rep.Refused++
		case r.TargetUnknown:
			rep.TargetUnknown++
		default:
			rep.Unsettled++
		}
	}
	for _, p := range rec.contractProblems() {
		v.add(checkContract, "%s", p)
	}

	// Every accepted id is decided; every decided id was sent; nothing the
	// gateway refused was stored.
	for _, r := range records {
		t, stored := ledger.Transfers[r.Op.ID]
		switch {
		case r.Accepted && !stored:
			v.add(checkLost, "%s accepted (%s) but never decided", r.Op, r.AcceptedBy)
		case r.Refused && stored:
			v.add(checkRefused, "%s refused (%s) but stored as %s", r.Op, r.RefusedWith, t.Status)
		case !r.Accepted && stored:
			rep.StoredUnacknowledged++
		}
	}
	for id, t := range ledger.Transfers {
		rep.Decided++
		if t.Decisions > 1 {
			rep.Redecided++
		}
		if t.Status == transfer.StatusApplied {
			rep.Applied++
		} else {
			rep.Rejected++
			rep.Reasons[string(t.Reason)]++
		}
		r := byID[id]
		if r == nil {
			v.add(checkPhantom, "transfer %s (%s %s %s) was never sent", id, t.Kind, t.Amount, t.Currency)
			continue
		}
		o := r.Op
		if o.Retry != nil && storedAs(o.Retry, t, ledger.Precisions) {
			o = o.Retry
		}
		if o.Kind.NamesNoAccount() {
			checkSettlementFields(v, o, t, ledger)
		} else {
			checkTransferFields(v, o, t, ledger.Precisions)
		}
		checkLabels(v, o, t)
		if r.Answers["2020 OK"] > 0 && t.Status != transfer.StatusApplied {
			v.add(checkOutcome, "%s: the 2020 API answered OK, stored %s %s", r.Op, t.Status, t.Reason)
		}
	}

	// Entries: exactly the ones each applied transfer implies.
	byTransfer := map[uuid.UUID][]storedEntry{}
	for _, e := range ledger.Entries {
		byTransfer[e.TransferID] = append(byTransfer[e.TransferID], e)
	}
	rep.Entries = len(ledger.Entries)
	for id, es := range byTransfer {
		if t, ok := ledger.Transfers[id]; !ok || t.Status != transfer.StatusApplied {
			v.add(checkOrphan, "%d entries for transfer %s, which is not applied", len(es), id)
		}
	}
	for id, t := range ledger.Transfers {
		if t.Status == transfer.StatusApplied {
			checkTransferEntries(v, t, byTransfer[id])
		}
	}

	// Conservation, per currency, and no negative balance.
	for code := range ledger.Precisions {
		rep.Currencies[code] = &currencyTotals{}
	}
	total := func(code string) *currencyTotals {
		if rep.Currencies[code] == nil {
			rep.Currencies[code] = &currencyTotals{}
		}
		return rep.Currencies[code]
	}
	for _, a := range ledger.Accounts {
		tt := total(a.Currency)
		tt.Balances = tt.Balances.Add(a.Balance)
		tt.Held = tt.Held.Add(a.Held)
		if a.Balance.IsNegative() {
			v.add(checkNegative, "account %s balance %s", a.ID, a.Balance)
		}
	}
	rep.Accounts = len(ledger.Accounts)
	for _, t := range ledger.Transfers {
		if t.Status != transfer.StatusApplied {
			continue
		}
		switch t.Kind {
		case transfer.KindDeposit:
			total(t.Currency).Deposits = total(t.Currency).Deposits.Add(t.Amount)
		case transfer.KindWithdrawal:
			total(t.Currency).Withdrawals = total(t.Currency).Withdrawals.Add(t.Amount)
		case transfer.KindReversal:
			// From the stored sides: a reversed deposit has no
			// receiver, a reversed withdrawal no sender.
			switch {
			case t.To == uuid.Nil:
				total(t.Currency).DepositsReversed = total(t.Currency).DepositsReversed.Add(t.Amount)
			case t.From == uuid.Nil:
				total(t.Currency).WithdrawalsReversed = total(t.Currency).WithdrawalsReversed.Add(t.Amount)
			}
		}
	}
	for code, tt := range rep.Currencies {
		want := tt.Deposits.Sub(tt.Withdrawals).Sub(tt.DepositsReversed).Add(tt.WithdrawalsReversed)
		if !tt.Balances.Equal(want) {
			v.add(checkConservation, "%s: balances %s != deposits %s - withdrawals %s - reversed deposits %s + reversed withdrawals %s (difference %s)",
				code, tt.Balances, tt.Deposits, tt.Withdrawals, tt.DepositsReversed, tt.WithdrawalsReversed, tt.Balances.Sub(want))
		}
	}
	checkHeld(v, ledger)
	checkHoldRows(v, rep, ledger, byID)
	checkReversalSums(v, rep, ledger)
	if opts.SweepWithin > 0 {
		// Measured at the snapshot, not now: the checks before this one
		// (reading the results stream above all) take seconds in a long run,
		// and a hold that fell due just before the snapshot is not the
		// sweep's miss.
		for id, h := range ledger.Holds {
			if overdue := ledger.ReadAt.Sub(h.ExpiresAt); h.State == transfer.HoldStateHeld && !h.ExpiresAt.IsZero() && overdue > opts.SweepWithin {
				v.add(checkHolds, "hold %s still held %s after its timeout", id, overdue.Round(time.Millisecond))
			}
		}
	}

	// Statements replay to balances, and debits follow acceptance order.
	byAccount := map[uuid.UUID][]storedEntry{}
	for _, e := range ledger.Entries {
		byAccount[e.Account] = append(byAccount[e.Account], e)
	}
	for id, a := range ledger.Accounts {
		checkReplayOf(v, a, byAccount[id])
		if n := checkOrderOf(v, id, byAccount[id], ledger.Transfers, byID); n > 1 {
			rep.OrderedAccounts++
			rep.OrderedDebits += n
		}
	}
	for id := range byAccount {
		if _, ok := ledger.Accounts[id]; !ok {
			v.add(checkOrphan, "entries for account %s, which does not exist", id)
		}
	}

	// The results stream: exactly one outcome per decided id, the
	// database's.
	for _, s := range results.Undecodable {
		v.add(checkResults, "undecodable result on %s", s)
	}
	for id, list := range results.Outcomes {
		rep.ResultMessages += len(list)
		t, ok := ledger.Transfers[id]
		if !ok {
			v.add(checkResults, "outcome published for %s, which the database does not hold", id)
			continue
		}
		// One outcome per decision: a 2020-API retry that decided a
		// rejected id again publishes the new decision after the old.
		if len(list) > t.Decisions {
			v.add(checkResults, "%d outcomes published for %s, which has %d decisions", len(list), id, t.Decisions)
		}
		for i, res := range list {
			last := i == len(list)-1
			if last && (res.Status != t.Status || res.Reason != t.Reason) {
				v.add(checkResults, "%s: stream says %s %s, database %s %s", id, res.Status, res.Reason, t.Status, t.Reason)
			}
			if !last && res.Status != transfer.StatusRejected {
				v.add(checkResults, "%s: an outcome before the last says %s", id, res.Status)
			}
		}
	}
	for _, list := range results.Conflicts {
		rep.ConflictNotices += len(list)
	}
	checkTwins(v, rep, records, byID, results, ledger, opts, js != nil)
	if js != nil && !opts.ResultsMayBeMissing {
		for id := range ledger.Transfers {
			if _, ok := results.Outcomes[id]; !ok {
				v.add(checkResults, "no outcome on the results stream for decided %s", id)
			}
		}
	}
	return rep, nil
}

// checkTwins checks the conflicting requests the clients sent under
// accepted ids, and the conflict notices on the results stream:
//   - within the dedupe window of the original, with no NATS restart in
//     between, the stream must drop the NATS twin as a duplicate;
//   - a twin the stream stored (PubAck not a duplicate) gets exactly one
//     conflict notice (at most one after a kill -9 of NATS);
//   - every notice is for an id the clients reused, carries the twin's
//     fields rejected with transfer_id_conflict, and the stored transfer
//     is not the twin; a notice may only exist when some twin could have
//     been stored (dedupe forgotten by a restart, or out of the window).
func checkTwins(v *violations, rep *bookReport, records []record, byID map[uuid.UUID]*record,
	results *resultsSnapshot, ledger *ledgerSnapshot, opts checkOptions, haveResults bool) {
	restarted := func(from, to time.Time) bool {
		return opts.NATSRestartedBetween != nil && opts.NATSRestartedBetween(from, to)
	}
	// dedupeHeld says the stream must still have known the id from the
	// original's first submission until at: a twin stored then is a
	// failure of the dedupe.
	dedupeHeld := func(r *record, at time.Time) bool {
		return at.Sub(r.FirstSentAt) < dedupeWindow-dedupeMargin && !restarted(r.FirstSentAt, at)
	}
	for i := range records {
		r := &records[i]
		tw := r.Twin
		if tw == nil || !r.Accepted {
			continue
		}
		rep.Twins++
		if !tw.NATSAcked {
			continue
		}
		if tw.NATSDuplicate {
			rep.TwinsDropped++
			continue
		}
		rep.TwinsStored++
		if dedupeHeld(r, tw.NATSAckAt) {
			v.add(checkConflict, "%s: its twin over NATS was stored, not dropped as a duplicate, %s after the original was first sent and with no NATS restart",
				r.Op, tw.NATSAckAt.Sub(r.FirstSentAt).Round(time.Millisecond))
		}
		if n := len(results.Conflicts[r.Op.ID]); haveResults && n == 0 && !opts.ResultsMayBeMissing {
			v.add(checkConflict, "%s: its twin %s was stored by the stream, and no conflict notice was published", r.Op, tw.Op.Amount)
		}
	}
	for id, notices := range results.Conflicts {
		r := byID[id]
		if r == nil {
			v.add(checkConflict, "conflict notice for %s, which no client sent", id)
			continue
		}
		t, stored := ledger.Transfers[id]
		if r.Twin == nil && r.Op.Retry != nil {
			// A 2020-API id: the client sent a first attempt and then a
			// retry with other fields. A notice must carry the fields of
			// the one that is not stored.
			for _, n := range notices {
				rep.LegacyConflictNotices++
				ok := false
				for _, o := range []*op{r.Op, r.Op.Retry} {
					ok = ok || (noticeOf(n, o, ledger.Precisions) && (!stored || !storedAs(o, t, ledger.Precisions)))
				}
				if !ok {
					v.add(checkConflict, "%s: conflict notice %s, which is neither its first attempt nor its retry, or is what is stored", r.Op, n)
				}
			}
			continue
		}
		if r.Twin == nil {
			v.add(checkConflict, "%s: conflict notice %s, although no client sent a conflicting request under the id", r.Op, notices[0])
			continue
		}
		tw := r.Twin
		if len(notices) > 1 {
			v.add(checkConflict, "%s: %d conflict notices for one conflicting request", r.Op, len(notices))
		}
		// The twin went to the gateway first (which publishes it, and
		// answers once it knows what the stream holds), then straight to
		// NATS; a notice needs one of them stored. Both are known to have
		// been dropped when each came back before the dedupe could be
		// forgotten and the NATS one said so at its only attempt.
		if tw.NATSAcked && tw.NATSDuplicate && tw.NATSFailed == 0 && tw.HTTPStatus != 0 &&
			dedupeHeld(r, tw.NATSAckAt) && dedupeHeld(r, tw.HTTPDoneAt) {
			v.add(checkConflict, "%s: a conflict notice, although the stream held the id whenever its twin was sent", r.Op)
		}
		for _, n := range notices {
			if !noticeOf(n, tw.Op, ledger.Precisions) {
				v.add(checkConflict, "%s: conflict notice %s, want the twin's %s rejected transfer_id_conflict", r.Op, n, tw.Op)
			}
		}
		if stored && storedAs(tw.Op, t, ledger.Precisions) {
			v.add(checkConflict, "%s: the stored transfer is its conflicting twin %s", r.Op, tw.Op)
		}
	}
}

// noticeOf reports whether n is the conflict notice of request o: o's
// fields, rejected with transfer_id_conflict. The amount is o's as sent: a
// notice shows an amount with more digits than the currency keeps as
// requested, like every result (transfer.Currencies.Format), and others at the
// currency's precision.
func noticeOf(n streamResult, o *op, precisions map[string]int32) bool {
	currency := transfer.NormalizeCurrency(o.Currency)
	sent := decimal.RequireFromString(o.Amount)
	from, to := n.accounts()
	amount, err := decimal.NewFromString(n.Amount)
	return n.Status == transfer.StatusRejected && n.Reason == transfer.CodeTransferIDConflict && n.Kind == o.Kind &&
		from == o.From && to == o.To && n.Currency == currency && err == nil && amount.Equal(sent)
}

// storedAs reports whether t holds o's fields.
func storedAs(o *op, t storedTransfer, precisions map[string]int32) bool {
	currency := transfer.NormalizeCurrency(o.Currency)
	want := decimal.RequireFromString(o.Amount)
	if p, ok := precisions[currency]; ok {
		want = transfer.RoundAmount(want, p)
	}
	return t.Kind == o.Kind && t.From == o.From && t.To == o.To && t.Currency == currency && t.Amount.Equal(want)
}

// checkTransferFields compares a stored transfer with the request that was
// sent under its id (the first one: a conflicting resubmission must not
// have replaced it) and with the rules of the load.
func checkTransferFields(v *violations, o *op, t storedTransfer, precisions map[string]int32) {
	// Amounts are stored rounded when the currency is known, as given
	// otherwise.
	if !storedAs(o, t, precisions) {
		v.add(checkFields, "%s stored as %s %s->%s %s %s", o, t.Kind, t.From, t.To, t.Amount, t.Currency)
	}
	checkTransferOutcome(v, o, t)
}

// checkLabels compares a stored request's metadata and reference with the
// ones it was sent with. The load's references are unique, so no request
// may be rejected reference_already_used.
func checkLabels(v *violations, o *op, t storedTransfer) {
	if t.Reason == transfer.CodeReferenceAlreadyUsed {
		v.add(checkFields, "%s rejected %s, although its reference %q is the load's only one", o, t.Reason, o.Reference)
		return
	}
	if !maps.Equal(t.Metadata, o.Metadata) || t.Reference != o.Reference {
		v.add(checkFields, "%s stored with metadata %v reference %q, sent %v %q", o, t.Metadata, t.Reference, o.Metadata, o.Reference)
	}
}

// checkTransferEntries checks an applied transfer's entries: a debit of
// the sender and a credit of the receiver, each once.
func checkTransferEntries(v *violations, t storedTransfer, es []storedEntry) {
	type side struct {
		account      uuid.UUID
		dir          transfer.Direction
		counterparty uuid.UUID
	}
	// Every kind that moves money debits its sender and credits its
	// receiver, where it has them (a post: the hold's; a reversal: the
	// reversed request's receiver and sender); a hold and a void move
	// none.
	var want []side
	if t.Kind != transfer.KindHold && t.Kind != transfer.KindVoid {
		if t.From != uuid.Nil {
			want = append(want, side{t.From, transfer.DirectionDebit, t.To})
		}
		if t.To != uuid.Nil {
			want = append(want, side{t.To, transfer.DirectionCredit, t.From})
		}
	}
	if len(es) != len(want) {
		v.add(checkEntries, "%s %s has %d entries, want %d", t.Kind, t.ID, len(es), len(want))
		return
	}
	for _, w := range want {
		found := 0
		for _, e := range es {
			if e.Account == w.account && e.Direction == w.dir {
				found++
				if e.Counterparty != w.counterparty || !e.Amount.Equal(t.Amount) || e.Currency != t.Currency || e.Kind != t.Kind {
					v.add(checkEntries, "%s: entry %s/%d is %s %s %s counterparty %s", t.ID, e.Account, e.Version, e.Direction, e.Amount, e.Currency, e.Counterparty)
				}
			}
		}
		if found != 1 {
			v.add(checkEntries, "%s: %d %s entries for %s, want 1", t.ID, found, w.dir, w.account)
		}
	}
}

// checkReplayOf replays an account's entries from zero: versions run
// 1..n, each balance_after follows from the one before, and the last is
// the account's balance.
func checkReplayOf(v *violations, a storedAccount, es []storedEntry) {
	bal := decimal.Zero
	for i, e := range es {
		if e.Version != int64(i+1) {
			v.add(checkReplay, "account %s: entry %d has version %d", a.ID, i+1, e.Version)
			return
		}
		if e.Currency != a.Currency {
			v.add(checkReplay, "account %s (%s): entry %d in %s", a.ID, a.Currency, e.Version, e.Currency)
		}
		if e.Direction == transfer.DirectionDebit {
			bal = bal.Sub(e.Amount)
		} else {
			bal = bal.Add(e.Amount)
		}
		if !bal.Equal(e.BalanceAfter) {
			v.add(checkReplay, "account %s: entry %d leaves %s, replay gives %s", a.ID, e.Version, e.BalanceAfter, bal)
			return
		}
		if bal.IsNegative() {
			v.add(checkNegative, "account %s: entry %d leaves %s", a.ID, e.Version, bal)
		}
	}
	if !bal.Equal(a.Balance) || a.Version != int64(len(es)) {
		v.add(checkReplay, "account %s: balance %s version %d, entries replay to %s over %d", a.ID, a.Balance, a.Version, bal, len(es))
	}
}

// checkOrderOf checks that an account's debits were applied in the order
// their requests were accepted: by entry version, the stream timestamps
// (submitted_at) never go back, nor do the PubAck sequences the producers
// saw. It returns the number of debits checked.
func checkOrderOf(v *violations, account uuid.UUID, es []storedEntry, transfers map[uuid.UUID]storedTransfer, byID map[uuid.UUID]*record) int {
	var prevAt time.Time
	var prevSeq uint64
	var prevID uuid.UUID
	n := 0
	for _, e := range es {
		if e.Direction != transfer.DirectionDebit {
			continue
		}
		t := transfers[e.TransferID]
		n++
		if t.AcceptedAt.Before(prevAt) {
			v.add(checkOrder, "account %s: debit %d (%s, accepted %s) applied after %s (accepted %s)",
				account, e.Version, t.ID, t.AcceptedAt.Format(time.RFC3339Nano), prevID, prevAt.Format(time.RFC3339Nano))
		}
		// A sequence is only trusted when the producer never had to retry:
		// after a server restart a retry may store the id anew.
		if r := byID[t.ID]; r != nil && r.Seq != 0 && r.Answers["nats error"] == 0 {
			if r.Seq < prevSeq {
				v.add(checkOrder, "account %s: debit %d (%s, stream seq %d) applied after seq %d", account, e.Version, t.ID, r.Seq, prevSeq)
			}
			prevSeq = r.Seq
		}
		prevAt, prevID = t.AcceptedAt, t.ID
	}
	return n
}

// checkSettlementFields checks a stored post, void or reversal against the
// request sent under its id, and its outcome against the hold or the
// reversed request as the database holds them: each rejection must be
// one the stored state explains.
func checkSettlementFields(v *violations, o *op, t storedTransfer, ledger *ledgerSnapshot) {
	if t.Kind != o.Kind || t.HoldID != o.HoldID || t.Reverses != o.Reverses {
		v.add(checkFields, "%s stored as %s of hold %s, reversing %s", o, t.Kind, t.HoldID, t.Reverses)
		return
	}
	var want decimal.Decimal
	if o.Amount != "" {
		want = decimal.RequireFromString(o.Amount)
		if p, ok := ledger.Precisions[o.Currency]; ok {
			want = transfer.RoundAmount(want, p)
		}
	}
	if t.Status == transfer.StatusApplied {
		if t.From != o.From || t.To != o.To || t.Currency != o.Currency || (o.Amount != "" && !t.Amount.Equal(want)) {
			v.add(checkFields, "%s applied as %s->%s %s %s", o, t.From, t.To, t.Amount, t.Currency)
		}
	}
	checkTransferOutcome(v, o, t)
	if o.Kind == transfer.KindReversal {
		checkReversalOutcome(v, o, t, ledger, want)
		return
	}
	h, held := ledger.Holds[o.HoldID]
	expired := func(at time.Time) bool { return held && !h.ExpiresAt.IsZero() && !at.Before(h.ExpiresAt) }
	switch {
	case t.Status == transfer.StatusApplied:
		state := transfer.HoldStatePosted
		if o.Kind == transfer.KindVoid {
			state = transfer.HoldStateVoided
		}
		if !held || h.State != state {
			v.add(checkHolds, "%s applied, its hold is %q (stored: %t)", o, h.State, held)
		}
		if expired(t.ProcessedAt) {
			v.add(checkHolds, "%s applied at %s, after its hold expired at %s", o, t.ProcessedAt.Format(time.RFC3339Nano), h.ExpiresAt.Format(time.RFC3339Nano))
		}
	case t.Reason == transfer.CodeHoldNotFound && held:
		v.add(checkHolds, "%s rejected %s, its hold is stored %s", o, t.Reason, h.State)
	case t.Reason == transfer.CodeHoldAlreadyPosted && h.State != transfer.HoldStatePosted,
		t.Reason == transfer.CodeHoldAlreadyVoided && h.State != transfer.HoldStateVoided,
		t.Reason == transfer.CodeHoldExpired && h.State != transfer.HoldStateExpired:
		v.add(checkHolds, "%s rejected %s, its hold is %q", o, t.Reason, h.State)
	case t.Reason == transfer.CodeHoldExpired && !expired(t.ProcessedAt):
		v.add(checkHolds, "%s rejected %s at %s, its hold expires at %s", o, t.Reason, t.ProcessedAt.Format(time.RFC3339Nano), h.ExpiresAt)
	case t.Reason == transfer.CodePostAmountExceedsHold && (o.Amount == "" || !want.GreaterThan(h.Amount)):
		v.add(checkHolds, "%s rejected %s, its hold reserved %s", o, t.Reason, h.Amount)
	}
}

// checkReversalOutcome checks a reversal's outcome against the request it
// reverses: applied only for an applied transfer, deposit, withdrawal or
// post; reversal_exceeds_transfer only when the amount (want, zero when
// not given) and what was reversed in the end exceed the request's.
func checkReversalOutcome(v *violations, o *op, t storedTransfer, ledger *ledgerSnapshot, want decimal.Decimal) {
	orig, ok := ledger.Transfers[o.Reverses]
	reversible := ok && orig.Status == transfer.StatusApplied &&
		(orig.Kind == transfer.KindTransfer || orig.Kind == transfer.KindDeposit || orig.Kind == transfer.KindWithdrawal || orig.Kind == transfer.KindPost)
	switch {
	case t.Status == transfer.StatusApplied && !reversible:
		v.add(checkReversals, "%s applied, but it reverses %s %s %s (stored: %t)", o, orig.Kind, orig.Status, orig.Reason, ok)
	case t.Reason == transfer.CodeTransferNotReversible && reversible:
		v.add(checkReversals, "%s rejected %s, but it reverses an applied %s", o, t.Reason, orig.Kind)
	case t.Reason == transfer.CodeReversalExceedsTransfer && !reversible:
		v.add(checkReversals, "%s rejected %s, but it reverses %s %s", o, t.Reason, orig.Kind, orig.Status)
	case t.Reason == transfer.CodeReversalExceedsTransfer && o.Amount == "" && !orig.ReversedAmount.Equal(orig.Amount):
		// What was left was nothing when it was decided, and a
		// reversed amount never shrinks.
		v.add(checkReversals, "%s rejected %s with no amount, yet %s of %s is reversed", o, t.Reason, orig.ReversedAmount, orig.Amount)
	case t.Reason == transfer.CodeReversalExceedsTransfer && o.Amount != "" && !want.Add(orig.ReversedAmount).GreaterThan(orig.Amount):
		v.add(checkReversals, "%s rejected %s, yet %s + reversed %s fits in %s", o, t.Reason, want, orig.ReversedAmount, orig.Amount)
	}
}

// checkTransferOutcome checks t's outcome against what the load allows o.
func checkTransferOutcome(v *violations, o *op, t storedTransfer) {
	switch t.Status {
	case transfer.StatusApplied:
		if !o.MayApply {
			v.add(checkOutcome, "%s applied, want rejected with %v", o, o.Reasons)
		}
	case transfer.StatusRejected:
		ok := false
		for _, r := range o.Reasons {
			ok = ok || r == t.Reason
		}
		if !ok {
			v.add(checkOutcome, "%s rejected with %s, want applied or %v", o, t.Reason, o.Reasons)
		}
	default:
		v.add(checkOutcome, "%s has status %q", o, t.Status)
	}
}

// checkHeld checks every account's held amount: never negative nor above
// the balance (available = balance - held >= 0), and exactly the sum of
// the amounts of the account's holds that are still held.
func checkHeld(v *violations, ledger *ledgerSnapshot) {
	live := map[uuid.UUID]decimal.Decimal{}
	for _, h := range ledger.Holds {
		if h.State == transfer.HoldStateHeld {
			live[h.From] = live[h.From].Add(h.Amount)
		}
		if _, ok := ledger.Accounts[h.From]; !ok {
			v.add(checkHolds, "hold %s on account %s, which does not exist", h.ID, h.From)
		}
	}
	for id, a := range ledger.Accounts {
		if a.Held.IsNegative() {
			v.add(checkAvailable, "account %s held %s", id, a.Held)
		}
		if available := a.Balance.Sub(a.Held); available.IsNegative() {
			v.add(checkAvailable, "account %s available %s (balance %s, held %s)", id, available, a.Balance, a.Held)
		}
		if !a.Held.Equal(live[id]) {
			v.add(checkAvailable, "account %s held %s, its live holds sum to %s", id, a.Held, live[id])
		}
	}
}

// checkHoldRows checks the holds table against the requests: a row for
// every applied hold request and for no other id, with its fields; a state
// that its applied settlements explain (at most one; posted with the
// post's amount, voided by a void, held or expired with none); an expired
// hold past its expiry.
func checkHoldRows(v *violations, rep *bookReport, ledger *ledgerSnapshot, byID map[uuid.UUID]*record) {
	settled := map[uuid.UUID][]storedTransfer{}
	for _, t := range ledger.Transfers {
		switch t.Kind {
		case transfer.KindHold, transfer.KindPost, transfer.KindVoid, transfer.KindReversal:
			rep.Kinds[fmt.Sprintf("%s %s", t.Kind, t.Status)]++
			if r := byID[t.ID]; r != nil {
				route := r.Op.Route.String()
				if r.Op.Storm > 0 {
					route = "storm"
				}
				rep.KindsByRoute[fmt.Sprintf("%s via %s", t.Kind, route)]++
			}
		}
		if t.Status != transfer.StatusApplied {
			continue
		}
		if t.Kind.Settles() {
			settled[t.HoldID] = append(settled[t.HoldID], t)
		}
		if _, ok := ledger.Holds[t.ID]; t.Kind == transfer.KindHold && !ok {
			v.add(checkHolds, "applied hold %s has no hold row", t.ID)
		}
	}
	for id, h := range ledger.Holds {
		rep.Holds[h.State]++
		t, ok := ledger.Transfers[id]
		switch {
		case byID[id] == nil:
			v.add(checkHolds, "hold %s, which no client sent", id)
		case !ok || t.Kind != transfer.KindHold || t.Status != transfer.StatusApplied:
			v.add(checkHolds, "hold %s, whose request is stored %s %s (stored: %t)", id, t.Kind, t.Status, ok)
		case t.From != h.From || t.To != h.To || !t.Amount.Equal(h.Amount) || t.Currency != h.Currency:
			v.add(checkHolds, "hold %s is %s->%s %s %s, its request %s->%s %s %s", id, h.From, h.To, h.Amount, h.Currency, t.From, t.To, t.Amount, t.Currency)
		}
		if h.PostedAmount.GreaterThan(h.Amount) || h.PostedAmount.IsNegative() || (h.State == transfer.HoldStatePosted) != h.PostedAmount.IsPositive() {
			v.add(checkHolds, "hold %s %s of %s has posted %s", id, h.State, h.Amount, h.PostedAmount)
		}
		list := settled[id]
		if len(list) > 1 {
			v.add(checkHolds, "hold %s has %d applied settlements", id, len(list))
			continue
		}
		switch h.State {
		case transfer.HoldStateHeld, transfer.HoldStateExpired:
			if len(list) != 0 {
				v.add(checkHolds, "hold %s is %s, yet its %s %s was applied", id, h.State, list[0].Kind, list[0].ID)
			}
			if h.State == transfer.HoldStateExpired && (h.ExpiresAt.IsZero() || h.UpdatedAt.Before(h.ExpiresAt)) {
				v.add(checkHolds, "hold %s expired at %s, its timeout ends %s", id, h.UpdatedAt, h.ExpiresAt)
			}
		case transfer.HoldStatePosted:
			if len(list) != 1 || list[0].Kind != transfer.KindPost || !list[0].Amount.Equal(h.PostedAmount) {
				v.add(checkHolds, "hold %s posted %s, its applied settlements %v", id, h.PostedAmount, list)
			} else if h.PostedAmount.LessThan(h.Amount) {
				rep.PostedInPart++
			}
		case transfer.HoldStateVoided:
			if len(list) != 1 || list[0].Kind != transfer.KindVoid {
				v.add(checkHolds, "hold %s voided, its applied settlements %v", id, list)
			}
		default:
			v.add(checkHolds, "hold %s in state %q", id, h.State)
		}
	}
	for id, list := range settled {
		if _, ok := ledger.Holds[id]; !ok {
			v.add(checkHolds, "%s %s applied for hold %s, which has no hold row", list[0].Kind, list[0].ID, id)
		}
	}
}

// checkReversalSums checks every applied reversal against the request it
// reverses (an applied transfer, deposit, withdrawal or post; money back
// from its receiver to its sender in its currency) and every request's
// reversed_amount: the sum of its applied reversals, never past its amount.
func checkReversalSums(v *violations, rep *bookReport, ledger *ledgerSnapshot) {
	sums := map[uuid.UUID]decimal.Decimal{}
	for _, t := range ledger.Transfers {
		if t.Kind != transfer.KindReversal || t.Status != transfer.StatusApplied {
			continue
		}
		sums[t.Reverses] = sums[t.Reverses].Add(t.Amount)
		orig, ok := ledger.Transfers[t.Reverses]
		switch {
		case !ok || orig.Status != transfer.StatusApplied:
			v.add(checkReversals, "reversal %s applied for %s, which is not an applied request (stored: %t)", t.ID, t.Reverses, ok)
		case orig.Kind != transfer.KindTransfer && orig.Kind != transfer.KindDeposit && orig.Kind != transfer.KindWithdrawal && orig.Kind != transfer.KindPost:
			v.add(checkReversals, "reversal %s applied for %s, a %s", t.ID, orig.ID, orig.Kind)
		case t.From != orig.To || t.To != orig.From || t.Currency != orig.Currency:
			v.add(checkReversals, "reversal %s moves %s->%s %s, reversing %s %s->%s %s", t.ID, t.From, t.To, t.Currency, orig.Kind, orig.From, orig.To, orig.Currency)
		}
	}
	for id, t := range ledger.Transfers {
		sum := sums[id]
		if !t.ReversedAmount.Equal(sum) {
			v.add(checkReversals, "%s %s has reversed_amount %s, its applied reversals sum to %s", t.Kind, id, t.ReversedAmount, sum)
		}
		// Only what was reversed is compared: a rejected request may
		// carry any amount, even a negative one.
		if (sum.IsPositive() || t.ReversedAmount.IsPositive()) && (sum.GreaterThan(t.Amount) || t.ReversedAmount.GreaterThan(t.Amount)) {
			v.add(checkReversals, "%s %s of %s is reversed by %s (reversed_amount %s)", t.Kind, id, t.Amount, sum, t.ReversedAmount)
		}
		if sum.IsPositive() {
			rep.Reversed++
			if sum.Equal(t.Amount) {
				rep.ReversedFully++
			}
		}
	}
}
