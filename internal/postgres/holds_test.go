package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/transfer"
)

func hold(from, to uuid.UUID, amount, currency string, timeout time.Duration) transfer.Request {
	return transfer.Request{ID: uuid.New(), Kind: transfer.KindHold, From: from, To: to, Amount: dec(amount), Currency: currency, Timeout: timeout}
}

func post(holdID uuid.UUID, amount string) transfer.Request {
	r := transfer.Request{ID: uuid.New(), Kind: transfer.KindPost, HoldID: holdID}
	if amount != "" {
		r.Amount = dec(amount)
	}
	return r
}

func void(holdID uuid.UUID) transfer.Request {
	return transfer.Request{ID: uuid.New(), Kind: transfer.KindVoid, HoldID: holdID}
}

func reversal(of uuid.UUID, amount string) transfer.Request {
	r := transfer.Request{ID: uuid.New(), Kind: transfer.KindReversal, Reverses: of}
	if amount != "" {
		r.Amount = dec(amount)
	}
	return r
}

// wantCodes checks outcomes against codes, "" standing for applied.
func wantCodes(t *testing.T, out []transfer.Outcome, codes ...transfer.Code) {
	t.Helper()
	for i, c := range codes {
		if out[i].Reason() != c || (c == "") != (out[i].Status() == transfer.StatusApplied) {
			t.Fatalf("outcome %d (%s): %s/%s, want %q", i, out[i].Transfer.Kind, out[i].Status(), out[i].Reason(), c)
		}
	}
}

func wantAccount(t *testing.T, s *postgres.Store, id uuid.UUID, balance, available string) {
	t.Helper()
	a, err := s.GetAccount(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Balance.Equal(dec(balance)) || !a.Available().Equal(dec(available)) {
		t.Fatalf("account %s: balance %s available %s, want %s / %s", id, a.Balance, a.Available(), balance, available)
	}
}

func getHold(t *testing.T, s *postgres.Store, id uuid.UUID) transfer.Hold {
	t.Helper()
	h, err := s.GetHold(context.Background(), id)
	if err != nil {
		t.Fatalf("get hold %s: %v", id, err)
	}
	return h
}

func TestHoldsThroughStore(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	ctx := context.Background()
	a, b, eur := newAccount(t, s, "USD"), newAccount(t, s, "USD"), newAccount(t, s, "EUR")
	apply(t, s, deposit(a, "100", "USD"))

	h1, h2 := hold(a, b, "30", "USD", 0), hold(a, b, "50.005", "usd", time.Hour)
	out := apply(t, s, h1, h2, hold(a, b, "20.02", "USD", 0), hold(a, eur, "1", "USD", 0),
		move(a, b, "20.01", "USD"))
	wantCodes(t, out, "", "", transfer.CodeInsufficientFunds, transfer.CodeReceiverAccountWrongCurrency, transfer.CodeInsufficientFunds)
	wantAccount(t, s, a, "100", "19.99")
	wantAccount(t, s, b, "0", "0")
	got := getHold(t, s, h2.ID)
	if got.State != transfer.HoldStateHeld || !got.Amount.Equal(dec("50.01")) || got.From != a || got.To != b || got.Currency != "USD" ||
		got.ExpiresAt.Sub(got.CreatedAt) != time.Hour || !got.PostedAmount.IsZero() {
		t.Fatalf("hold %+v", got)
	}

	// A partial post, a second post, a void of the other hold and a post
	// after that void, in one batch; then the redelivery of that batch.
	batch := []transfer.Request{post(h1.ID, "12.5"), post(h1.ID, ""), void(h2.ID), post(h2.ID, ""), post(uuid.New(), ""), post(h1.ID, "")}
	out = apply(t, s, batch...)
	wantCodes(t, out, "", transfer.CodeHoldAlreadyPosted, "", transfer.CodeHoldAlreadyVoided, transfer.CodeHoldNotFound, transfer.CodeHoldAlreadyPosted)
	again := apply(t, s, batch...)
	for i := range again {
		if !again[i].Replayed || again[i].Status() != out[i].Status() {
			t.Fatalf("redelivered request %d: replayed=%v %s", i, again[i].Replayed, again[i].Status())
		}
	}
	wantAccount(t, s, a, "87.5", "87.5")
	wantAccount(t, s, b, "12.5", "12.5")
	if got := getHold(t, s, h1.ID); got.State != transfer.HoldStatePosted || !got.PostedAmount.Equal(dec("12.5")) || !got.UpdatedAt.After(got.CreatedAt) {
		t.Fatalf("posted hold %+v", got)
	}
	stored, err := s.GetTransfer(ctx, batch[0].ID)
	if err != nil || stored.Kind != transfer.KindPost || stored.HoldID != h1.ID || stored.From != a || stored.To != b || !stored.Amount.Equal(dec("12.5")) {
		t.Fatalf("stored post %+v, %v", stored, err)
	}
	entries, _, err := s.ListEntries(ctx, b, "", 10)
	if err != nil || len(entries) != 1 || entries[0].Kind != transfer.KindPost || entries[0].TransferID != batch[0].ID {
		t.Fatalf("entries of the receiver: %+v, %v", entries, err)
	}

	// A rejected hold reads as rejected; an unknown id, or one of another
	// kind, is not found.
	rejected := hold(a, b, "1000", "USD", 0)
	apply(t, s, rejected)
	if got := getHold(t, s, rejected.ID); got.State != transfer.HoldStateRejected || got.Reason != transfer.CodeInsufficientFunds || got.From != a {
		t.Fatalf("rejected hold %+v", got)
	}
	for _, id := range []uuid.UUID{uuid.New(), batch[0].ID} {
		if _, err := s.GetHold(ctx, id); !errors.Is(err, transfer.ErrNotFound) {
			t.Fatalf("get hold %s: %v", id, err)
		}
	}

	// A hold, its post and the post's reversal in one batch.
	h3 := hold(a, b, "7", "USD", 0)
	p3 := post(h3.ID, "")
	out = apply(t, s, h3, p3, reversal(p3.ID, "2"), reversal(p3.ID, "6"))
	wantCodes(t, out, "", "", "", transfer.CodeReversalExceedsTransfer)
	wantAccount(t, s, a, "82.5", "82.5")
	wantAccount(t, s, b, "17.5", "17.5")
	if stored, err := s.GetTransfer(ctx, p3.ID); err != nil || !stored.ReversedAmount.Equal(dec("2")) {
		t.Fatalf("reversed post %+v, %v", stored, err)
	}
	checkBooks(t, s)
}

func TestListHolds(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	ctx := context.Background()
	a, b := newAccount(t, s, "JPY"), newAccount(t, s, "JPY")
	apply(t, s, deposit(a, "100", "JPY"))
	var holds []transfer.Request
	for i := 0; i < 7; i++ {
		holds = append(holds, hold(a, b, "1", "JPY", 0))
		apply(t, s, holds[i]) // one batch each: created_at orders them
	}
	apply(t, s, post(holds[1].ID, ""), void(holds[4].ID))
	list := func(state transfer.HoldState) []uuid.UUID {
		t.Helper()
		var ids []uuid.UUID
		cursor := ""
		for {
			page, next, err := s.ListHolds(ctx, a, state, cursor, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range page {
				if state != "" && h.State != state {
					t.Fatalf("listed %s hold under %s", h.State, state)
				}
				ids = append(ids, h.ID)
			}
			if next == "" {
				return ids
			}
			cursor = next
		}
	}
	idsOf := func(idx ...int) string {
		var ids []uuid.UUID
		for _, i := range idx {
			ids = append(ids, holds[i].ID)
		}
		return fmt.Sprint(ids)
	}
	if got := list(transfer.HoldStateHeld); fmt.Sprint(got) != idsOf(0, 2, 3, 5, 6) {
		t.Fatalf("held holds %v, want %s", got, idsOf(0, 2, 3, 5, 6))
	}
	if got := list(""); fmt.Sprint(got) != idsOf(0, 1, 2, 3, 4, 5, 6) {
		t.Fatalf("all holds %v", got)
	}
	if got := list(transfer.HoldStatePosted); fmt.Sprint(got) != idsOf(1) {
		t.Fatalf("posted holds %v", got)
	}
	if page, _, err := s.ListHolds(ctx, b, "", "", 10); err != nil || len(page) != 0 {
		t.Fatalf("the receiver's holds: %d, %v", len(page), err)
	}
	if _, _, err := s.ListHolds(ctx, a, "pending", "", 2); !errors.Is(err, transfer.ErrBadFilter) {
		t.Fatalf("bad state: %v", err)
	}
	if _, _, err := s.ListHolds(ctx, a, "", "nope", 2); !errors.Is(err, transfer.ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
	// The live holds are listed from the partial index, not by walking
	// every settled hold of the account.
	plan := explain(t, s, `EXPLAIN SELECT id FROM holds WHERE from_account = '`+a.String()+`' AND state = 'held'
		ORDER BY created_at, id LIMIT 10`)
	if !strings.Contains(plan, "holds_from_held_idx") {
		t.Fatalf("held holds not listed from their index:\n%s", plan)
	}
}

func TestReversalsThroughStore(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	ctx := context.Background()
	a, b := newAccount(t, s, "USD"), newAccount(t, s, "USD")
	dep, wd := deposit(a, "100", "USD"), transfer.Request{ID: uuid.New(), Kind: transfer.KindWithdrawal, From: a, Amount: dec("10"), Currency: "USD"}
	tr := move(a, b, "40", "USD")
	apply(t, s, dep, wd, tr)
	wantAccount(t, s, a, "50", "50")

	r1, r2 := reversal(tr.ID, "15"), reversal(tr.ID, "")
	out := apply(t, s, r1, r2, reversal(tr.ID, "0.01"), reversal(wd.ID, ""), reversal(r1.ID, ""), reversal(uuid.New(), ""))
	wantCodes(t, out, "", "", transfer.CodeReversalExceedsTransfer, "", transfer.CodeTransferNotReversible, transfer.CodeTransferNotFound)
	wantAccount(t, s, a, "100", "100")
	wantAccount(t, s, b, "0", "0")
	stored, err := s.GetTransfer(ctx, tr.ID)
	if err != nil || !stored.ReversedAmount.Equal(dec("40")) {
		t.Fatalf("reversed transfer %+v, %v", stored, err)
	}
	if got, err := s.GetTransfer(ctx, r2.ID); err != nil || got.Reverses != tr.ID || got.From != b || got.To != a || !got.Amount.Equal(dec("25")) {
		t.Fatalf("reversal %+v, %v", got, err)
	}
	var listed []uuid.UUID
	cursor := ""
	for {
		page, next, err := s.ListReversals(ctx, tr.ID, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			listed = append(listed, r.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(listed) != 3 {
		t.Fatalf("reversals listed: %v, want the 3 naming the transfer", listed)
	}

	// A deposit reversed takes money out of its account, within its funds.
	hold := hold(a, b, "95", "USD", 0)
	out = apply(t, s, hold, reversal(dep.ID, "6"), reversal(dep.ID, "5"))
	wantCodes(t, out, "", transfer.CodeInsufficientFunds, "")
	wantAccount(t, s, a, "95", "0")
	checkBooks(t, s)
}

func TestExpireHolds(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	ctx := context.Background()
	a, b := newAccount(t, s, "USD"), newAccount(t, s, "USD")
	apply(t, s, deposit(a, "100", "USD"))
	var holds []transfer.Request
	for i := 0; i < 5; i++ {
		holds = append(holds, hold(a, b, "10", "USD", time.Duration(i+1)*time.Minute))
	}
	forever := hold(a, b, "10", "USD", 0)
	apply(t, s, append(holds, forever)...)
	wantAccount(t, s, a, "100", "40")

	if n, err := s.ExpireHolds(ctx, time.Now(), 10); err != nil || n != 0 {
		t.Fatalf("nothing due yet: expired %d, %v", n, err)
	}
	// Soonest first, limit at a time.
	later := time.Now().Add(150 * time.Second)
	if n, err := s.ExpireHolds(ctx, later, 1); err != nil || n != 1 {
		t.Fatalf("expired %d, %v", n, err)
	}
	if got := getHold(t, s, holds[0].ID); got.State != transfer.HoldStateExpired || !got.UpdatedAt.Equal(later.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("first hold %+v", got)
	}
	if n, err := s.ExpireHolds(ctx, later, 10); err != nil || n != 1 {
		t.Fatalf("expired %d, %v", n, err)
	}
	wantAccount(t, s, a, "100", "60")
	out := apply(t, s, post(holds[0].ID, ""), void(holds[1].ID), post(holds[2].ID, "4"))
	wantCodes(t, out, transfer.CodeHoldExpired, transfer.CodeHoldExpired, "")

	// A post decided after expires_at, before any sweep, is refused and
	// expires the hold itself.
	if _, err := s.Pool().Exec(ctx, `UPDATE holds SET expires_at = now() - interval '1 second' WHERE id = $1`, holds[3].ID); err != nil {
		t.Fatal(err)
	}
	out = apply(t, s, post(holds[3].ID, ""))
	wantCodes(t, out, transfer.CodeHoldExpired)
	if got := getHold(t, s, holds[3].ID); got.State != transfer.HoldStateExpired {
		t.Fatalf("late-posted hold %+v", got)
	}
	if n, err := s.ExpireHolds(ctx, time.Now().Add(24*time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("last sweep expired %d, %v", n, err)
	}
	if got := getHold(t, s, forever.ID); got.State != transfer.HoldStateHeld {
		t.Fatalf("a hold without a timeout: %+v", got)
	}
	wantAccount(t, s, a, "96", "86")
	plan := explain(t, s, `EXPLAIN SELECT id, from_account FROM holds
		WHERE state = 'held' AND expires_at IS NOT NULL AND expires_at <= now() ORDER BY expires_at LIMIT 100`)
	if !strings.Contains(plan, "holds_expiry_idx") {
		t.Fatalf("the sweep does not use its index:\n%s", plan)
	}
	checkBooks(t, s)
}

// TestPostRacesExpiry: posts and sweeps of the same holds at once. The sweep
// counts every hold as due while the posts do not, so each hold goes to
// whichever takes the sender's lock first, and only to it.
func TestPostRacesExpiry(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	ctx := context.Background()
	const n = 60
	senders := []uuid.UUID{newAccount(t, s, "USD"), newAccount(t, s, "USD"), newAccount(t, s, "USD")}
	b := newAccount(t, s, "USD")
	var funding, holds []transfer.Request
	for _, a := range senders {
		funding = append(funding, deposit(a, "1000", "USD"))
	}
	for i := 0; i < n; i++ {
		holds = append(holds, hold(senders[i%len(senders)], b, "5", "USD", time.Hour+time.Duration(i)*time.Second))
	}
	apply(t, s, funding...)
	apply(t, s, holds...)

	// Round i starts a post of hold i and a sweep of one hold at once; the
	// holds expire in order, so the sweep's one is hold i.
	outcomes := make([]transfer.Outcome, n)
	for i := 0; i < n; i++ {
		start := make(chan struct{})
		errs := make(chan error, 2)
		go func() {
			<-start
			out, err := s.ApplyBatch(ctx, []transfer.Request{post(holds[i].ID, "")})
			if err == nil {
				outcomes[i] = out[0]
			}
			errs <- err
		}()
		go func() {
			<-start
			_, err := s.ExpireHolds(ctx, time.Now().Add(3*time.Hour), 1)
			errs <- err
		}()
		close(start)
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.ExpireHolds(ctx, time.Now().Add(3*time.Hour), n); err != nil {
		t.Fatal(err)
	}
	var posted, expired int
	for i, h := range holds {
		got := getHold(t, s, h.ID)
		switch {
		case got.State == transfer.HoldStatePosted && outcomes[i].Status() == transfer.StatusApplied:
			posted++
		case got.State == transfer.HoldStateExpired && outcomes[i].Reason() == transfer.CodeHoldExpired:
			expired++
		default:
			t.Fatalf("hold %d: %s, its post %s/%s", i, got.State, outcomes[i].Status(), outcomes[i].Reason())
		}
	}
	t.Logf("%d posted, %d expired", posted, expired)
	checkBooks(t, s)
}

// TestSettlementsRace: two posts, or a post and a void, of one hold under
// different ids, from different transactions at once: one is applied.
func TestSettlementsRace(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	ctx := context.Background()
	const n = 40
	a, b := newAccount(t, s, "USD"), newAccount(t, s, "USD")
	apply(t, s, deposit(a, "1000", "USD"))
	var holds []transfer.Request
	for i := 0; i < n; i++ {
		holds = append(holds, hold(a, b, "10", "USD", 0))
	}
	apply(t, s, holds...)
	first, second := make([]transfer.Outcome, n), make([]transfer.Outcome, n)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for side, out := range [][]transfer.Outcome{first, second} {
		wg.Add(1)
		go func(voids bool, out []transfer.Outcome) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				r := post(holds[i].ID, "")
				if voids && i%3 == 0 {
					r = void(holds[i].ID)
				}
				got, err := s.ApplyBatch(ctx, []transfer.Request{r})
				if err != nil {
					errs <- err
					return
				}
				out[i] = got[0]
			}
		}(side == 1, out)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		won, lost := first[i], second[i]
		if won.Status() != transfer.StatusApplied {
			won, lost = lost, won
		}
		wantLoss := transfer.CodeHoldAlreadyPosted
		if won.Transfer.Kind == transfer.KindVoid {
			wantLoss = transfer.CodeHoldAlreadyVoided
		}
		if won.Status() != transfer.StatusApplied || lost.Reason() != wantLoss {
			t.Fatalf("hold %d: %s %s/%s and %s %s/%s", i, first[i].Transfer.Kind, first[i].Status(), first[i].Reason(),
				second[i].Transfer.Kind, second[i].Status(), second[i].Reason())
		}
	}
	checkBooks(t, s)
}

// TestReversalsRace: many reversals of one transfer at once never reverse
// more than its amount.
func TestReversalsRace(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	ctx := context.Background()
	a, b := newAccount(t, s, "USD"), newAccount(t, s, "USD")
	tr := move(a, b, "100", "USD")
	apply(t, s, deposit(a, "100", "USD"), deposit(b, "1000", "USD"), tr)
	const writers = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	var applied []transfer.Transfer
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			amount := "30"
			if w == 0 {
				amount = "" // what is left, whenever it runs
			}
			for k := 0; k < 3; k++ {
				out, err := s.ApplyBatch(ctx, []transfer.Request{reversal(tr.ID, amount)})
				if err != nil {
					errs <- err
					return
				}
				if out[0].Status() == transfer.StatusApplied {
					mu.Lock()
					applied = append(applied, out[0].Transfer)
					mu.Unlock()
				} else if out[0].Reason() != transfer.CodeReversalExceedsTransfer {
					errs <- fmt.Errorf("reversal rejected %s", out[0].Reason())
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sum := dec("0")
	for _, r := range applied {
		sum = sum.Add(r.Amount)
	}
	stored, err := s.GetTransfer(ctx, tr.ID)
	if err != nil || !sum.Equal(dec("100")) || !stored.ReversedAmount.Equal(sum) {
		t.Fatalf("%d reversals applied summing to %s, stored reversed_amount %s (%v)", len(applied), sum, stored.ReversedAmount, err)
	}
	wantAccount(t, s, a, "100", "100")
	checkBooks(t, s)
}

// TestConcurrentMixedKinds runs writers over a shared pool of requests of
// every kind, ids repeated across writers, with a sweep running beside
// them, and then checks the books and that every id has one decision.
func TestConcurrentMixedKinds(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	ctx := context.Background()
	const nAccounts, writers, batches = 8, 4, 20
	accounts := make([]uuid.UUID, nAccounts)
	var funding []transfer.Request
	for i := range accounts {
		accounts[i] = newAccount(t, s, "USD")
		funding = append(funding, deposit(accounts[i], "100", "USD"))
	}
	apply(t, s, funding...)

	rng := rand.New(rand.NewPCG(3, 4))
	var pool, holds, moves []transfer.Request
	for i := 0; i < 500; i++ {
		from := accounts[rng.IntN(3)]
		to := accounts[3+rng.IntN(nAccounts-3)]
		if rng.IntN(2) == 0 {
			from, to = to, from
		}
		amount := fmt.Sprintf("%d.%02d", rng.IntN(20), rng.IntN(100))
		var r transfer.Request
		switch k := rng.IntN(10); {
		case k < 2 || len(holds) == 0:
			r = hold(from, to, amount, "USD", time.Duration(rng.IntN(3))*time.Hour)
			holds = append(holds, r)
		case k < 4:
			r = post(holds[rng.IntN(len(holds))].ID, "")
			if rng.IntN(2) == 0 {
				r.Amount = dec(amount)
			}
			moves = append(moves, r)
		case k == 4:
			r = void(holds[rng.IntN(len(holds))].ID)
		case k == 5 && len(moves) > 0:
			r = reversal(moves[rng.IntN(len(moves))].ID, "")
			if rng.IntN(2) == 0 {
				r.Amount = dec(amount)
			}
		case k == 6:
			r = deposit(to, amount, "USD")
			moves = append(moves, r)
		case k == 7:
			r = transfer.Request{ID: uuid.New(), Kind: transfer.KindWithdrawal, From: from, Amount: dec(amount), Currency: "USD"}
			moves = append(moves, r)
		default:
			r = move(from, to, amount, "USD")
			moves = append(moves, r)
		}
		pool = append(pool, r)
	}

	var wg sync.WaitGroup
	var drawn sync.Map
	errs := make(chan error, writers+1)
	done := make(chan struct{})
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 9))
			for b := 0; b < batches; b++ {
				batch := make([]transfer.Request, 1+r.IntN(30))
				for i := range batch {
					batch[i] = pool[r.IntN(len(pool))]
					drawn.Store(batch[i].ID, true)
				}
				if _, err := s.ApplyBatch(ctx, batch); err != nil {
					errs <- err
					return
				}
			}
		}(uint64(w))
	}
	sweeper := make(chan struct{})
	go func() {
		defer close(sweeper)
		for {
			// Every hold with a timeout counts as due.
			if _, err := s.ExpireHolds(ctx, time.Now().Add(3*time.Hour), 5); err != nil {
				errs <- err
				return
			}
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	wg.Wait()
	close(done)
	<-sweeper
	close(errs)
	for err := range errs {
		t.Fatalf("a writer or the sweep failed: %v", err)
	}
	checkBooks(t, s)
	var ids []uuid.UUID
	drawn.Range(func(k, _ any) bool { ids = append(ids, k.(uuid.UUID)); return true })
	var decided int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM transfers WHERE id = ANY($1)`, ids).Scan(&decided); err != nil {
		t.Fatal(err)
	}
	if decided != len(ids) {
		t.Fatalf("%d decisions for %d distinct requests", decided, len(ids))
	}
	var kinds string
	if err := s.Pool().QueryRow(ctx, `SELECT string_agg(k, ' ' ORDER BY k) FROM (
			SELECT kind || '=' || count(*) AS k FROM transfers WHERE status = 'applied' GROUP BY kind) x`).Scan(&kinds); err != nil {
		t.Fatal(err)
	}
	var states string
	if err := s.Pool().QueryRow(ctx, `SELECT string_agg(k, ' ' ORDER BY k) FROM (
			SELECT state || '=' || count(*) AS k FROM holds GROUP BY state) x`).Scan(&states); err != nil {
		t.Fatal(err)
	}
	t.Logf("applied: %s; holds: %s", kinds, states)
}

// explain returns the plan of query with sequential scans priced out: on
// the few rows of a test table a scan is always cheapest, and the question
// is whether the query can use its index at all.
func explain(t *testing.T, s *postgres.Store, query string) string {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read only
	if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	var plan string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan += line + "\n"
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}
