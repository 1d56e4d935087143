package load

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/transfer"
)

// zipfShare is the share of draws Zipf(s) over n ranks gives the top k ranks.
func zipfShare(s float64, n, k int) float64 {
	var top, all float64
	for r := 1; r <= n; r++ {
		p := math.Pow(float64(r), -s)
		all += p
		if r <= k {
			top += p
		}
	}
	return top / all
}

func TestGenerateZipfCreditSide(t *testing.T) {
	t.Parallel()
	w, err := Generate(WorkloadConfig{Accounts: 10_000, Requests: 200_000, Hot: HotCredit, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	credits, debits := map[int32]int{}, map[int32]int{}
	var nCredit, nDebit int
	for _, op := range w.Ops {
		if op.To >= 0 {
			credits[op.To]++
			nCredit++
		}
		if op.From >= 0 {
			debits[op.From]++
			nDebit++
		}
	}
	topShare := func(counts map[int32]int, total, k int) float64 {
		var c []int
		for _, v := range counts {
			c = append(c, v)
		}
		// Partial selection sort of the k largest is enough for k <= 100.
		sum := 0
		for i := 0; i < k && i < len(c); i++ {
			m := i
			for j := i + 1; j < len(c); j++ {
				if c[j] > c[m] {
					m = j
				}
			}
			c[i], c[m] = c[m], c[i]
			sum += c[i]
		}
		return float64(sum) / float64(total)
	}
	// The credit side follows Zipf(1.1): the hottest account takes ~15%,
	// the top 100 ~65%. The tolerance is many standard deviations wide at
	// this sample size, and the seed is fixed.
	for _, k := range []int{1, 10, 100} {
		want := zipfShare(DefaultZipfS, 10_000, k)
		if got := topShare(credits, nCredit, k); math.Abs(got-want) > 0.02 {
			t.Errorf("credit side: top %d accounts took %.3f of credits, want %.3f", k, got, want)
		}
	}
	// The debit side is uniform: ~18 debits per account, so the 100 busiest
	// take little more than their 1% fair share.
	if got := topShare(debits, nDebit, 100); got > 0.02 {
		t.Errorf("debit side: top 100 accounts took %.3f of debits, want about 0.01 (uniform)", got)
	}
}

func TestGenerateMixAndInvariants(t *testing.T) {
	t.Parallel()
	cfg := WorkloadConfig{
		Accounts:   1001,
		Requests:   50_000,
		Currencies: []Currency{{"USD", 2}, {"JPY", 0}, {"BTC", 8}},
		Mix:        Mix{Deposits: 0.1, Withdrawals: 0.2, Rejects: 0.05},
		Hot:        HotBoth,
		Seed:       3,
	}
	w, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Funding) != 1001 || len(w.Ops) != 50_000 {
		t.Fatalf("got %d funding and %d ops", len(w.Funding), len(w.Ops))
	}
	transfers, deposits, withdrawals, rejects := w.Counts()
	for name, c := range map[string]struct {
		got  int
		want float64
	}{
		"transfers": {transfers, 0.65}, "deposits": {deposits, 0.1}, "withdrawals": {withdrawals, 0.2}, "rejects": {rejects, 0.05},
	} {
		if share := float64(c.got) / 50_000; math.Abs(share-c.want) > 0.01 {
			t.Errorf("%s: share %.3f, want %.2f", name, share, c.want)
		}
	}
	// The most money a currency can ever hold: funding plus every deposit.
	total := map[string]int64{}
	for _, op := range append(append([]Op(nil), w.Funding...), w.Ops...) {
		if op.Kind == transfer.KindDeposit {
			total[w.CurrencyOf(op.To).Code] += op.Units
		}
	}
	for i, op := range w.Ops {
		switch op.Kind {
		case transfer.KindTransfer:
			if op.From == op.To || op.From < 0 || op.To < 0 {
				t.Fatalf("op %d: transfer between %d and %d", i, op.From, op.To)
			}
			if w.CurrencyOf(op.From) != w.CurrencyOf(op.To) {
				t.Fatalf("op %d: transfer across currencies", i)
			}
		case transfer.KindDeposit:
			if op.From != -1 || op.To < 0 {
				t.Fatalf("op %d: deposit sides %d %d", i, op.From, op.To)
			}
		case transfer.KindWithdrawal:
			if op.To != -1 || op.From < 0 {
				t.Fatalf("op %d: withdrawal sides %d %d", i, op.From, op.To)
			}
		}
		if op.MustReject && op.Units <= total[w.CurrencyOf(op.From).Code] {
			t.Fatalf("op %d: must-reject amount %d is within the currency's total %d", i, op.Units, total[w.CurrencyOf(op.From).Code])
		}
		if !op.MustReject && op.Units < 1 {
			t.Fatalf("op %d: amount %d", i, op.Units)
		}
		// Amounts are exact in their currency: rounding changes nothing.
		cur := w.CurrencyOf(max(op.From, op.To))
		if a := w.Amount(op); !a.Equal(transfer.RoundAmount(a, cur.Precision)) {
			t.Fatalf("op %d: amount %s not exact in %s", i, a, cur.Code)
		}
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	cfg := WorkloadConfig{Accounts: 100, Requests: 1000, Hot: HotDebit, Seed: 42}
	a, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(cfg)
	for i := range a.Ops {
		if a.Ops[i] != b.Ops[i] {
			t.Fatalf("op %d differs: %+v vs %+v", i, a.Ops[i], b.Ops[i])
		}
	}
	cfg.Seed = 43
	c, _ := Generate(cfg)
	same := 0
	for i := range a.Ops {
		if a.Ops[i] == c.Ops[i] {
			same++
		}
	}
	if same > 100 {
		t.Errorf("another seed gave %d of 1000 identical ops", same)
	}
}

func TestGenerateRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]WorkloadConfig{
		"one account":    {Accounts: 1},
		"mix over 100%":  {Mix: Mix{Deposits: 0.6, Withdrawals: 0.6}},
		"negative share": {Mix: Mix{Rejects: -0.1}},
		"zipf s of 1":    {ZipfS: 1},
		"bad hot":        {Hot: "sideways"},
	} {
		if _, err := Generate(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestWorkloadHolds(t *testing.T) {
	t.Parallel()
	w, err := Generate(WorkloadConfig{Accounts: 50, Requests: 20_000, Mix: Mix{Holds: 0.1, Deposits: 0.05}, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	holds, posts, voids := w.HoldCounts()
	if holds < 1500 || holds > 2500 || posts+voids == 0 || posts+voids > holds || voids > posts {
		t.Fatalf("holds %d, posts %d, voids %d", holds, posts, voids)
	}
	accounts := make([]uuid.UUID, 50)
	for i := range accounts {
		accounts[i] = uuid.New()
	}
	ids := make([]uuid.UUID, len(w.Ops))
	for i := range ids {
		ids[i] = uuid.New()
	}
	settled := map[int32]bool{}
	for i, op := range w.Ops {
		r := w.RequestAt(i, ids, accounts)
		if e := r.Validate(); e != nil {
			t.Fatalf("op %d (%s): %v", i, op.Kind, e)
		}
		switch op.Kind {
		case transfer.KindHold:
			if r.Timeout != HoldTimeout || r.From == r.To {
				t.Fatalf("hold %+v", r)
			}
		case transfer.KindPost, transfer.KindVoid:
			h := op.HoldOp - 1
			if settled[h] || w.Ops[h].Kind != transfer.KindHold || int(h)+HoldGap > i {
				t.Fatalf("op %d settles op %d (%s), settled before: %v", i, h, w.Ops[h].Kind, settled[h])
			}
			settled[h] = true
			if r.HoldID != ids[h] || r.Partition != accounts[w.Ops[h].From] || r.PartitionAccount() != r.Partition || !r.Amount.IsZero() {
				t.Fatalf("settlement %+v", r)
			}
		}
	}
}

// TestLabelledRequestBodies: with Labels, every measured request carries
// metadata and its own reference, and the HTTP body the tool sends for
// each kind is JSON with both.
func TestLabelledRequestBodies(t *testing.T) {
	w, err := Generate(WorkloadConfig{Accounts: 20, Requests: 3 * HoldGap, Seed: 7, Labels: true,
		Mix: Mix{Deposits: 0.2, Withdrawals: 0.2, Holds: 0.3}})
	if err != nil {
		t.Fatal(err)
	}
	accounts, ids := make([]uuid.UUID, 20), make([]uuid.UUID, 3*HoldGap)
	for i := range accounts {
		accounts[i] = uuid.New()
	}
	for i := range ids {
		ids[i] = uuid.New()
	}
	refs := map[string]bool{}
	kinds := map[transfer.Kind]bool{}
	for i := range w.Ops {
		r := w.RequestAt(i, ids, accounts)
		_, body := requestBody(r)
		var got struct {
			Metadata  map[string]string `json:"metadata"`
			Reference string            `json:"reference"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s body %s: %v", r.Kind, body, err)
		}
		if len(got.Metadata) != 2 || got.Metadata["channel"] != "walletbench" || got.Reference == "" || refs[got.Reference] {
			t.Fatalf("%s body %s", r.Kind, body)
		}
		refs[got.Reference] = true
		kinds[r.Kind] = true
	}
	for _, k := range []transfer.Kind{transfer.KindTransfer, transfer.KindDeposit, transfer.KindWithdrawal, transfer.KindHold} {
		if !kinds[k] {
			t.Errorf("no %s in the workload", k)
		}
	}
	if !kinds[transfer.KindPost] && !kinds[transfer.KindVoid] {
		t.Error("no post or void in the workload")
	}
}
