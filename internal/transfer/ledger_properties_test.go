package transfer

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	"pgregory.net/rapid"
)

// ledger plays the store in the property tests: it keeps the saved state,
// gives each batch a Book holding only what the store loads for it (the
// accounts, decisions and holds the batch names, and the accounts of those
// holds and reversed requests), and saves only what Changes lists. A change
// Apply makes but does not list is lost here, as it would be in the database.
type ledger struct {
	accounts  map[uuid.UUID]Account
	transfers map[uuid.UUID]Transfer
	holds     map[uuid.UUID]Hold
	entries   []Entry
}

func newLedger(accounts []Account) *ledger {
	l := &ledger{accounts: map[uuid.UUID]Account{}, transfers: map[uuid.UUID]Transfer{}, holds: map[uuid.UUID]Hold{}}
	for _, a := range accounts {
		l.accounts[a.ID] = a
	}
	return l
}

func (l *ledger) book() *Book {
	return &Book{Precisions: precisions, Accounts: map[uuid.UUID]*Account{}, Decided: map[uuid.UUID]Transfer{}, Holds: map[uuid.UUID]*Hold{}}
}

func (l *ledger) loadAccount(b *Book, id uuid.UUID) {
	if a, ok := l.accounts[id]; ok && id != uuid.Nil {
		b.Accounts[id] = &a
	}
}

func (l *ledger) apply(reqs []Request, now time.Time) []Outcome {
	b := l.book()
	for _, r := range reqs {
		l.loadAccount(b, r.From)
		l.loadAccount(b, r.To)
		for _, id := range []uuid.UUID{r.ID, r.Reverses} {
			if t, ok := l.transfers[id]; ok {
				b.Decided[id] = t
				l.loadAccount(b, t.From)
				l.loadAccount(b, t.To)
			}
		}
		if h, ok := l.holds[r.HoldID]; ok {
			b.Holds[h.ID] = &h
			l.loadAccount(b, h.From)
			l.loadAccount(b, h.To)
		}
	}
	for _, r := range reqs {
		// The store reads which of the batch's references are taken.
		for _, t := range l.transfers {
			if r.Reference != "" && t.Reference == r.Reference {
				if b.References == nil {
					b.References = map[string]uuid.UUID{}
				}
				b.References[t.Reference] = t.ID
			}
		}
	}
	out, ch := b.Apply(reqs, now)
	l.save(ch)
	return out
}

// sweep is the store's expiry: it loads the due holds and their senders.
func (l *ledger) sweep(now time.Time) {
	b := l.book()
	for _, h := range l.holds {
		if h.Due(now) {
			b.Holds[h.ID] = &h
			l.loadAccount(b, h.From)
		}
	}
	l.save(b.Expire(now))
}

func (l *ledger) save(ch Changes) {
	for _, t := range ch.Transfers {
		l.transfers[t.ID] = t
	}
	l.entries = append(l.entries, ch.Entries...)
	for _, a := range ch.Accounts {
		l.accounts[a.ID] = *a
	}
	for _, h := range ch.Holds {
		l.holds[h.ID] = *h
	}
	for _, t := range ch.Reversed {
		stored := l.transfers[t.ID]
		stored.ReversedAmount = t.ReversedAmount
		l.transfers[t.ID] = stored
	}
}

// snapshot writes the saved state in a fixed order, to compare two ledgers.
func (l *ledger) snapshot() string {
	var b strings.Builder
	for _, id := range sortedKeys(l.accounts) {
		a := l.accounts[id]
		fmt.Fprintf(&b, "account %s %s %s %s %d\n", a.ID, a.Currency, a.Balance, a.Held, a.Version)
	}
	for _, id := range sortedKeys(l.transfers) {
		fmt.Fprintf(&b, "transfer %+v\n", l.transfers[id])
	}
	for _, id := range sortedKeys(l.holds) {
		fmt.Fprintf(&b, "hold %+v\n", l.holds[id])
	}
	for _, e := range l.entries {
		fmt.Fprintf(&b, "entry %+v\n", e)
	}
	return b.String()
}

func sortedKeys[V any](m map[uuid.UUID]V) []uuid.UUID {
	keys := make([]uuid.UUID, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i][:], keys[j][:]) < 0 })
	return keys
}

// step is one entry of the request log: a batch applied at a time, or the
// sweep run at a time.
type step struct {
	batch []Request
	sweep bool
	now   time.Time
}

// genLog draws a request log over accounts: batches mixing every kind, the
// posts, voids and reversals naming earlier requests (or unknown ids), ids
// reused now and then for redeliveries, conflicts and new attempts, and
// sweeps, with time moving forward so holds expire.
func genLog(t *rapid.T, accounts []Account) []step {
	var all, holds, moves []uuid.UUID
	var sent []Request
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pick := func(ids []uuid.UUID, label string) uuid.UUID {
		if len(ids) == 0 || rapid.IntRange(0, 9).Draw(t, label+"unknown") == 0 {
			return uuid.New()
		}
		return ids[rapid.IntRange(0, len(ids)-1).Draw(t, label)]
	}
	amount := func(label string) decimal.Decimal {
		return decimal.New(rapid.Int64Range(-5, 50_000).Draw(t, label), -3) // often needs rounding
	}
	var log []step
	for s, steps := 0, rapid.IntRange(1, 12).Draw(t, "steps"); s < steps; s++ {
		now = now.Add(time.Duration(rapid.IntRange(0, 20).Draw(t, "seconds")) * time.Second)
		if rapid.IntRange(0, 3).Draw(t, "sweep") == 0 {
			log = append(log, step{sweep: true, now: now})
			continue
		}
		var batch []Request
		for i, n := 0, rapid.IntRange(1, 25).Draw(t, "n"); i < n; i++ {
			if len(sent) > 0 && rapid.IntRange(0, 6).Draw(t, "reuse") == 0 {
				prev := sent[rapid.IntRange(0, len(sent)-1).Draw(t, "which")]
				switch rapid.IntRange(0, 2).Draw(t, "how") {
				case 1: // the id reused with other fields
					prev.Amount = prev.Amount.Add(dec("1"))
				case 2: // a new attempt
					prev.Attempt = uuid.New()
				}
				batch = append(batch, prev)
				continue
			}
			from := accounts[rapid.IntRange(0, len(accounts)-1).Draw(t, "from")]
			to := accounts[rapid.IntRange(0, len(accounts)-1).Draw(t, "to")]
			r := Request{ID: uuid.New(), Currency: from.Currency}
			switch rapid.IntRange(0, 7).Draw(t, "kind") {
			case 0:
				r.Kind, r.To, r.Amount, r.Currency = KindDeposit, to.ID, amount("amount"), to.Currency
				moves = append(moves, r.ID)
			case 1:
				r.Kind, r.From, r.Amount = KindWithdrawal, from.ID, amount("amount")
				moves = append(moves, r.ID)
			case 2:
				r.Kind, r.From, r.To, r.Amount = KindTransfer, from.ID, to.ID, amount("amount")
				moves = append(moves, r.ID)
			case 3, 4:
				r.Kind, r.From, r.To, r.Amount = KindHold, from.ID, to.ID, amount("amount")
				r.Timeout = time.Duration(rapid.IntRange(0, 40).Draw(t, "timeout")) * time.Second
				holds = append(holds, r.ID)
			case 5:
				r = Request{ID: r.ID, Kind: KindPost, HoldID: pick(holds, "hold")}
				if rapid.Bool().Draw(t, "partial") {
					r.Amount = amount("amount")
				}
				moves = append(moves, r.ID)
			case 6:
				r = Request{ID: r.ID, Kind: KindVoid, HoldID: pick(holds, "hold")}
			case 7:
				// Mostly requests that moved money, several times each,
				// sometimes anything else.
				r = Request{ID: r.ID, Kind: KindReversal, Reverses: pick(moves, "reverses")}
				if rapid.IntRange(0, 4).Draw(t, "any") == 0 {
					r.Reverses = pick(all, "reverses")
				}
				if rapid.IntRange(0, 3).Draw(t, "partial") > 0 {
					r.Amount = decimal.New(rapid.Int64Range(-1, 10_000).Draw(t, "part"), -3)
				}
			}
			if rapid.IntRange(0, 4).Draw(t, "positive") == 0 {
				r.Attempt = uuid.New()
			}
			r.Reference = []string{"", "", "", "r1", "r2", "r3"}[rapid.IntRange(0, 5).Draw(t, "reference")]
			all = append(all, r.ID)
			sent = append(sent, r)
			batch = append(batch, r)
		}
		log = append(log, step{batch: batch, now: now})
	}
	return log
}

func (l *ledger) run(log []step, after func(i int, out []Outcome)) {
	for i, s := range log {
		var out []Outcome
		if s.sweep {
			l.sweep(s.now)
		} else {
			out = l.apply(s.batch, s.now)
		}
		if after != nil {
			after(i, out)
		}
	}
}

// TestLedgerProperties: random logs of transfers, deposits, withdrawals,
// holds, posts, voids, sweeps and reversals keep every invariant of the
// books after every step; each id is applied at most once; replaying any
// prefix of the log gives the same state, and replaying the whole log
// again changes nothing.
func TestLedgerProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		var accounts []Account
		for i := 0; i < rapid.IntRange(2, 5).Draw(t, "accounts"); i++ {
			accounts = append(accounts, Account{ID: uuid.New(), Currency: []string{"USD", "BTC"}[i%2],
				Balance: decimal.New(rapid.Int64Range(0, 20_000).Draw(t, "start"), -2)})
		}
		log := genLog(t, accounts)

		l := newLedger(accounts)
		applied := map[uuid.UUID]bool{}
		snapshots := make([]string, len(log))
		l.run(log, func(i int, out []Outcome) {
			for j, o := range out {
				if !o.Replayed && o.Transfer.Status == StatusApplied {
					if applied[o.Transfer.ID] {
						t.Fatalf("step %d request %d: id %s applied twice", i, j, o.Transfer.ID)
					}
					applied[o.Transfer.ID] = true
				}
				if applied[log[i].batch[j].ID] && o.Status() != StatusApplied && !o.Conflict {
					t.Fatalf("step %d request %d: applied id now %s", i, j, o.Status())
				}
			}
			checkLedger(t, l, accounts)
			snapshots[i] = l.snapshot()
		})
		for id := range applied {
			if l.transfers[id].Status != StatusApplied {
				t.Fatalf("id %s applied, stored %s", id, l.transfers[id].Status)
			}
		}

		for k := range log {
			replay := newLedger(accounts)
			replay.run(log[:k+1], nil)
			if got := replay.snapshot(); got != snapshots[k] {
				t.Fatalf("replaying %d steps gives another state:\n%s\nwant:\n%s", k+1, got, snapshots[k])
			}
		}
		final := l.snapshot()
		l.run(log, func(i int, out []Outcome) {
			for j, o := range out {
				if !o.Replayed {
					t.Fatalf("step %d request %d decided again", i, j)
				}
			}
		})
		if l.snapshot() != final {
			t.Fatal("replaying the whole log changed the state")
		}
	})
}

// checkLedger checks the invariants of the books from the saved state alone.
func checkLedger(t *rapid.T, l *ledger, start []Account) {
	owners := map[string]uuid.UUID{}
	for _, tr := range l.transfers {
		if tr.Reference == "" {
			continue
		}
		if other, taken := owners[tr.Reference]; taken {
			t.Fatalf("reference %q stored with %s and %s", tr.Reference, other, tr.ID)
		}
		owners[tr.Reference] = tr.ID
	}
	held := map[uuid.UUID]decimal.Decimal{}
	for _, h := range l.holds {
		tr, ok := l.transfers[h.ID]
		if !ok || tr.Kind != KindHold || tr.Status != StatusApplied || !tr.Amount.Equal(h.Amount) || tr.From != h.From || tr.To != h.To || tr.Currency != h.Currency {
			t.Fatalf("hold %+v does not match its request %+v", h, tr)
		}
		if h.State == HoldStateHeld {
			held[h.From] = held[h.From].Add(h.Amount)
		}
	}
	// Per account: nothing negative, held is what its holds reserve, and
	// the entries replay to the balance with no gap in versions.
	byAccount := map[uuid.UUID][]Entry{}
	for _, e := range l.entries {
		byAccount[e.AccountID] = append(byAccount[e.AccountID], e)
	}
	totals, initial := map[string]decimal.Decimal{}, map[string]decimal.Decimal{}
	for _, a0 := range start {
		a := l.accounts[a0.ID]
		if a.Balance.IsNegative() || a.Held.IsNegative() || a.Available().IsNegative() {
			t.Fatalf("account %s: balance %s held %s available %s", a.ID, a.Balance, a.Held, a.Available())
		}
		if !a.Held.Equal(held[a.ID]) {
			t.Fatalf("account %s: held %s, its holds reserve %s", a.ID, a.Held, held[a.ID])
		}
		running := a0.Balance
		for i, e := range byAccount[a.ID] {
			if e.Direction == DirectionDebit {
				running = running.Sub(e.Amount)
			} else {
				running = running.Add(e.Amount)
			}
			if e.Version != int64(i+1) || !e.BalanceAfter.Equal(running) {
				t.Fatalf("entry %+v: version %d, replayed balance %s", e, i+1, running)
			}
		}
		if !running.Equal(a.Balance) || a.Version != int64(len(byAccount[a.ID])) {
			t.Fatalf("account %s: balance %s v%d, entries give %s v%d", a.ID, a.Balance, a.Version, running, len(byAccount[a.ID]))
		}
		totals[a.Currency] = totals[a.Currency].Add(a.Balance)
		initial[a.Currency] = initial[a.Currency].Add(a0.Balance)
	}
	// Per request: entries only for money that moved, reversals within the
	// amount, a hold settled by at most one request and only as its state says.
	entriesOf := map[uuid.UUID]int{}
	for _, e := range l.entries {
		entriesOf[e.TransferID]++
	}
	reversed := map[uuid.UUID]decimal.Decimal{}
	settledBy := map[uuid.UUID][]Transfer{}
	net := map[string]decimal.Decimal{}
	for _, tr := range l.transfers {
		want := 0
		if tr.Status == StatusApplied {
			switch tr.Kind {
			case KindTransfer, KindDeposit, KindWithdrawal, KindPost, KindReversal:
				for _, id := range []uuid.UUID{tr.From, tr.To} {
					if id != uuid.Nil {
						want++
					}
				}
				switch { // money from or to the outside world
				case tr.From == uuid.Nil:
					net[tr.Currency] = net[tr.Currency].Add(tr.Amount)
				case tr.To == uuid.Nil:
					net[tr.Currency] = net[tr.Currency].Sub(tr.Amount)
				}
			case KindHold:
				if _, ok := l.holds[tr.ID]; !ok {
					t.Fatalf("applied hold %s has no hold", tr.ID)
				}
			}
			if tr.Kind == KindReversal {
				reversed[tr.Reverses] = reversed[tr.Reverses].Add(tr.Amount)
			}
			if tr.Kind.Settles() {
				settledBy[tr.HoldID] = append(settledBy[tr.HoldID], tr)
			}
		}
		if entriesOf[tr.ID] != want {
			t.Fatalf("%s %s %s has %d entries, want %d", tr.Kind, tr.Status, tr.ID, entriesOf[tr.ID], want)
		}
	}
	for cur, total := range totals {
		if want := initial[cur].Add(net[cur]); !total.Equal(want) {
			t.Fatalf("%s: balances sum to %s, deposits and withdrawals (and their reversals) give %s", cur, total, want)
		}
	}
	for _, tr := range l.transfers {
		if !tr.ReversedAmount.Equal(reversed[tr.ID]) || (tr.Status == StatusApplied && tr.ReversedAmount.GreaterThan(tr.Amount)) {
			t.Fatalf("%s %s: reversed_amount %s, reversals sum to %s, amount %s", tr.Kind, tr.ID, tr.ReversedAmount, reversed[tr.ID], tr.Amount)
		}
	}
	for _, h := range l.holds {
		by := settledBy[h.ID]
		switch {
		case len(by) > 1:
			t.Fatalf("hold %s settled %d times", h.ID, len(by))
		case h.State == HoldStatePosted && (len(by) != 1 || by[0].Kind != KindPost || !by[0].Amount.Equal(h.PostedAmount) || h.PostedAmount.GreaterThan(h.Amount)):
			t.Fatalf("posted hold %+v, settled by %+v", h, by)
		case h.State == HoldStateVoided && (len(by) != 1 || by[0].Kind != KindVoid):
			t.Fatalf("voided hold %+v, settled by %+v", h, by)
		case (h.State == HoldStateHeld || h.State == HoldStateExpired) && (len(by) != 0 || !h.PostedAmount.IsZero()):
			t.Fatalf("%s hold %+v, settled by %+v", h.State, h, by)
		}
	}
}
