package load

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/transfer"
)

// bookFixture applies a few requests with the service's store and returns
// what a run would have observed of them.
func bookFixture(t *testing.T) (*postgres.Store, []uuid.UUID, []Observed) {
	t.Helper()
	s := dbtest.NewStore(t)
	ctx := context.Background()
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	for _, id := range []uuid.UUID{a, b, c} {
		if _, _, err := s.CreateAccount(ctx, id, "USD"); err != nil {
			t.Fatal(err)
		}
	}
	usd := func(v string) decimal.Decimal { return decimal.RequireFromString(v) }
	reqs := []transfer.Request{
		{ID: uuid.New(), Kind: transfer.KindDeposit, To: a, Amount: usd("100"), Currency: "USD"},
		{ID: uuid.New(), Kind: transfer.KindDeposit, To: b, Amount: usd("50.5"), Currency: "USD"},
		{ID: uuid.New(), Kind: transfer.KindTransfer, From: a, To: c, Amount: usd("30.25"), Currency: "USD"},
		{ID: uuid.New(), Kind: transfer.KindWithdrawal, From: b, Amount: usd("0.5"), Currency: "USD"},
		{ID: uuid.New(), Kind: transfer.KindWithdrawal, From: c, Amount: usd("1000000"), Currency: "USD"},
	}
	outs, err := s.ApplyBatch(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	obs := make([]Observed, len(reqs))
	for i, o := range outs {
		obs[i] = Observed{ID: reqs[i].ID, Accepted: true, Decided: true, Outcomes: 1,
			Applied: o.Status() == transfer.StatusApplied, Reason: string(o.Reason())}
	}
	obs[4].MustReject = true
	return s, []uuid.UUID{a, b, c}, obs
}

func failed(checks []Check) []string {
	var out []string
	for _, c := range checks {
		if !c.OK {
			out = append(out, c.Name+": "+c.Detail)
		}
	}
	return out
}

func TestCheckBooksPassesOnHonestBooks(t *testing.T) {
	t.Parallel()
	s, accounts, obs := bookFixture(t)
	checks, err := CheckBooks(context.Background(), s.Pool(), BookInput{Accounts: accounts, Requests: obs, Global: true})
	if err != nil {
		t.Fatal(err)
	}
	if f := failed(checks); len(f) > 0 {
		t.Fatalf("honest books failed: %v", f)
	}
	if len(checks) < 9 {
		t.Errorf("only %d checks ran", len(checks))
	}
}

func TestCheckBooksCatchesCorruptedBalance(t *testing.T) {
	t.Parallel()
	s, accounts, obs := bookFixture(t)
	ctx := context.Background()
	// One cent appears from nowhere.
	if _, err := s.Pool().Exec(ctx, `UPDATE accounts SET balance = balance + 0.01 WHERE id = $1`, accounts[2]); err != nil {
		t.Fatal(err)
	}
	checks, err := CheckBooks(ctx, s.Pool(), BookInput{Accounts: accounts, Requests: obs, Global: true})
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Join(failed(checks), "\n")
	for _, want := range []string{"entries replay to every balance", "money conserved per currency (run)", "money conserved per currency (database)"} {
		if !strings.Contains(f, want) {
			t.Errorf("corrupted balance not caught by %q; failures:\n%s", want, f)
		}
	}
	if !strings.Contains(f, "difference 0.01") {
		t.Errorf("failure does not name the difference:\n%s", f)
	}
}

func TestCheckBooksCatchesLostAndWrongOutcomes(t *testing.T) {
	t.Parallel()
	s, accounts, obs := bookFixture(t)
	ctx := context.Background()
	// An accepted request the database never decided, an outcome that
	// disagrees with the database, and a must-reject request applied.
	lost := Observed{ID: uuid.New(), Accepted: true}
	obs[1].Applied, obs[1].Reason = false, "insufficient_funds"
	obs[2].MustReject = true
	checks, err := CheckBooks(ctx, s.Pool(), BookInput{Accounts: accounts, Requests: append(obs, lost)})
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Join(failed(checks), "\n")
	for _, want := range []string{
		"every accepted request has an outcome",
		"every accepted request is decided in the database",
		"outcomes match the database",
		"applied count matches the database",
		"requests beyond all funds are rejected",
	} {
		if !strings.Contains(f, want) {
			t.Errorf("not caught: %q; failures:\n%s", want, f)
		}
	}
}

func TestCheckBooksCatchesMissingEntry(t *testing.T) {
	t.Parallel()
	s, accounts, obs := bookFixture(t)
	ctx := context.Background()
	// A lost entry row with the balance left as is: the balance no longer
	// replays from the statement.
	if _, err := s.Pool().Exec(ctx, `DELETE FROM entries WHERE account_id = $1`, accounts[2]); err != nil {
		t.Fatal(err)
	}
	checks, err := CheckBooks(ctx, s.Pool(), BookInput{Accounts: accounts, Requests: obs})
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Join(failed(checks), "\n"); !strings.Contains(f, "entries replay to every balance") {
		t.Errorf("missing entry not caught; failures:\n%s", f)
	}
}

// TestRunSyncBaseline runs the whole tool with the baseline alone against
// a test database: setup, funding, a skewed mix with concurrency, and the
// checks, which must pass.
func TestRunSyncBaseline(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{
		Via:         ViaSync,
		DatabaseURL: dbtest.URL(t),
		Workload:    WorkloadConfig{Accounts: 50, Requests: 600, Hot: HotBoth, Seed: 9, Funding: 5},
		// Two currencies of different precision, so amounts and sums are
		// checked per currency.
		CurrencyCodes: []string{"usd", "JPY"},
		Concurrency:   6,
		GlobalCheck:   true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 1 {
		t.Fatalf("%d runs", len(rep.Runs))
	}
	res := rep.Runs[0]
	if f := failed(res.Checks); len(f) > 0 {
		t.Fatalf("checks failed: %v", f)
	}
	if res.Accepted != 600 || res.Decided != 600 || res.Applied+res.Rejected != 600 {
		t.Errorf("counts: accepted %d decided %d applied %d rejected %d", res.Accepted, res.Decided, res.Applied, res.Rejected)
	}
	_, _, _, mustReject := mustGenerate(t, WorkloadConfig{Accounts: 50, Requests: 600, Hot: HotBoth, Seed: 9, Funding: 5,
		Currencies: []Currency{{"USD", 2}, {"JPY", 0}}}).Counts()
	// With 5 units of funding and a hot mix, many transfers run out of
	// money besides the ones built to.
	if res.RejectedBy["insufficient_funds"] < mustReject {
		t.Errorf("rejected %v, want at least the %d built to fail", res.RejectedBy, mustReject)
	}
	if res.AppliedPerSec <= 0 || res.AcceptLatency.Count != 600 {
		t.Errorf("rates: %+v", res)
	}
}

func mustGenerate(t *testing.T, cfg WorkloadConfig) *Workload {
	t.Helper()
	w, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}
