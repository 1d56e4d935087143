package load

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/transfer"
)

// Hot says which side of a request the skewed (Zipf) account choice
// applies to; the other side is chosen uniformly.
type Hot string

// Account choice modes.
const (
	HotNone   Hot = ""       // uniform on both sides
	HotDebit  Hot = "debit"  // a few accounts send most of the money
	HotCredit Hot = "credit" // a few accounts receive most of the money
	HotBoth   Hot = "both"   // the same few accounts on both sides
)

// ParseHot reads a --hot value; "none" and "" are uniform.
func ParseHot(s string) (Hot, error) {
	switch Hot(s) {
	case HotNone, "none", "uniform":
		return HotNone, nil
	case HotDebit, HotCredit, HotBoth:
		return Hot(s), nil
	}
	return HotNone, fmt.Errorf("hot %q: want none, debit, credit or both", s)
}

// DefaultZipfS is the skew of --hot: with s=1.1 over 10,000 accounts the
// hottest account takes about 15% of its side's traffic and the top 100
// about 65%.
const DefaultZipfS = 1.1

// Mix is the share of the measured requests that are not plain transfers.
type Mix struct {
	Deposits    float64
	Withdrawals float64
	// Rejects are requests built to be rejected for insufficient funds:
	// their amount exceeds all the money that can ever exist in their
	// currency, so the check can demand the rejection.
	Rejects float64
	// Holds are holds (with HoldTimeout) each settled HoldGap requests
	// later, in place of a transfer: three in four posted whole, the
	// fourth voided. A hold and its settlement count as two requests.
	Holds float64
}

// HoldGap is how many requests after a hold its post or void is sent:
// far enough that the hold is accepted first at any concurrency the tool
// runs with (a post of a hold not yet accepted is refused hold_not_found).
const HoldGap = 2000

// HoldTimeout is the timeout of the workload's holds: longer than a run
// needs to settle them, short enough that the ones a cut-short run leaves
// are released soon after.
const HoldTimeout = 10 * time.Minute

// DefaultMix is 80% transfers, 8% deposits, 8% withdrawals and 4% that
// must be rejected.
var DefaultMix = Mix{Deposits: 0.08, Withdrawals: 0.08, Rejects: 0.04}

// Currency is a currency the workload uses and its precision.
type Currency struct {
	Code      string
	Precision int32
}

// WorkloadConfig describes a workload. Zero fields take the defaults noted.
type WorkloadConfig struct {
	Accounts   int        // default 10,000
	Requests   int        // measured requests; default 200,000
	Currencies []Currency // default USD with precision 2
	Mix        Mix
	Hot        Hot
	ZipfS      float64 // default DefaultZipfS
	// Funding is each account's opening deposit in whole currency units;
	// default 1,000.
	Funding int64
	Seed    uint64
	// Labels makes every measured request carry what a payments client's
	// would: two metadata pairs and a reference of its own, unique per
	// request. The baseline ignores them.
	Labels bool
}

func (c WorkloadConfig) withDefaults() (WorkloadConfig, error) {
	if c.Accounts == 0 {
		c.Accounts = 10_000
	}
	if c.Requests == 0 {
		c.Requests = 200_000
	}
	if len(c.Currencies) == 0 {
		c.Currencies = []Currency{{Code: "USD", Precision: 2}}
	}
	if c.ZipfS == 0 {
		c.ZipfS = DefaultZipfS
	}
	if c.Funding == 0 {
		c.Funding = 1000
	}
	m := c.Mix
	switch {
	case c.Accounts < 2*len(c.Currencies):
		return c, fmt.Errorf("accounts %d: need at least two per currency", c.Accounts)
	case c.Requests < 0 || c.Requests > 50_000_000:
		return c, fmt.Errorf("requests %d: want 0..50,000,000", c.Requests)
	case c.Accounts > 10_000_000:
		return c, fmt.Errorf("accounts %d: want at most 10,000,000", c.Accounts)
	case m.Deposits < 0 || m.Withdrawals < 0 || m.Rejects < 0 || m.Holds < 0 || m.Deposits+m.Withdrawals+m.Rejects+m.Holds > 1:
		return c, errors.New("mix shares must be non-negative and sum to at most 1")
	case c.ZipfS <= 1:
		return c, fmt.Errorf("zipf s %v: must be greater than 1", c.ZipfS)
	case c.Funding < 1 || c.Funding > 1_000_000_000:
		return c, fmt.Errorf("funding %d: want 1..1,000,000,000", c.Funding)
	}
	for _, cur := range c.Currencies {
		if cur.Precision < 0 || cur.Precision > 18 {
			return c, fmt.Errorf("currency %s: precision %d", cur.Code, cur.Precision)
		}
	}
	if _, err := ParseHot(string(c.Hot)); err != nil {
		return c, err
	}
	return c, nil
}

// Op is one request of a workload, in terms of account slots rather than
// ids, so the same workload can run against different accounts.
type Op struct {
	Kind transfer.Kind
	// From and To are account slots; -1 when the kind has no such side.
	From, To int32
	// Units is the amount in the currency's workload unit (see Workload.Amount).
	Units int64
	// MustReject marks a request built to be rejected for insufficient funds.
	MustReject bool
	// HoldOp is, for a post or void, 1 + the index in Ops of the hold it
	// settles; 0 for the other kinds.
	HoldOp int32
}

// Workload is a generated workload: one funding deposit per account, then
// the measured requests in order.
type Workload struct {
	Config  WorkloadConfig
	Funding []Op
	Ops     []Op
}

// unitExp is the exponent of a currency's workload unit: cents for
// currencies with two or more decimals, whole units for those with fewer,
// so every generated amount is exact in its currency.
func unitExp(c Currency) int32 { return -min(c.Precision, 2) }

// CurrencyOf is the currency of account slot i: slots are dealt to the
// currencies in turn.
func (w *Workload) CurrencyOf(slot int32) Currency {
	return w.Config.Currencies[int(slot)%len(w.Config.Currencies)]
}

// Amount is op's amount as a decimal in its currency.
func (w *Workload) Amount(op Op) decimal.Decimal {
	slot := op.From
	if slot < 0 {
		slot = op.To
	}
	return decimal.New(op.Units, unitExp(w.CurrencyOf(slot)))
}

// Request turns op into a request with id on the given accounts.
func (w *Workload) Request(op Op, id uuid.UUID, accounts []uuid.UUID) transfer.Request {
	r := transfer.Request{ID: id, Kind: op.Kind, Amount: w.Amount(op)}
	slot := op.From
	if slot < 0 {
		slot = op.To
	}
	r.Currency = w.CurrencyOf(slot).Code
	if op.From >= 0 {
		r.From = accounts[op.From]
	}
	if op.To >= 0 {
		r.To = accounts[op.To]
	}
	return r
}

// RequestAt is Request for the measured request i, with ids the ids of
// all the measured requests: a post or void names its hold's id, and is
// filed under the hold's sender.
func (w *Workload) RequestAt(i int, ids, accounts []uuid.UUID) transfer.Request {
	op := w.Ops[i]
	var r transfer.Request
	if op.HoldOp == 0 {
		r = w.Request(op, ids[i], accounts)
		if op.Kind == transfer.KindHold {
			r.Timeout = HoldTimeout
		}
	} else {
		hold := w.Ops[op.HoldOp-1]
		r = transfer.Request{ID: ids[i], Kind: op.Kind, HoldID: ids[op.HoldOp-1], Partition: accounts[hold.From]}
	}
	if w.Config.Labels {
		r.Metadata = map[string]string{"order_id": "order-" + strconv.Itoa(i), "channel": "walletbench"}
		r.Reference = "wb-" + ids[i].String()
	}
	return r
}

// chooser picks account slots of one currency, uniformly or by Zipf rank.
type chooser struct {
	currency int // index into Currencies
	stride   int // number of currencies: slot = currency + k*stride
	n        int // accounts in this currency
	zipf     *rand.Zipf
	perm     []int32 // Zipf rank -> k, so the hot accounts are spread out
}

func (c *chooser) slot(k int) int32 { return int32(c.currency + k*c.stride) }

func (c *chooser) uniform(r *rand.Rand) int32 { return c.slot(r.IntN(c.n)) }

func (c *chooser) hot(r *rand.Rand) int32 { return c.slot(int(c.perm[c.zipf.Uint64()])) }

// Generate builds the workload for cfg. The same config and seed always
// give the same workload.
func Generate(cfg WorkloadConfig) (*Workload, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x77616c6c6574)) //nolint:gosec // a seeded, repeatable workload, not a secret
	w := &Workload{Config: cfg}
	nc := len(cfg.Currencies)

	choosers := make([]*chooser, nc)
	for c := range choosers {
		n := (cfg.Accounts - c + nc - 1) / nc
		ch := &chooser{currency: c, stride: nc, n: n, perm: make([]int32, n)}
		for i := range ch.perm {
			ch.perm[i] = int32(i)
		}
		r.Shuffle(n, func(i, j int) { ch.perm[i], ch.perm[j] = ch.perm[j], ch.perm[i] })
		ch.zipf = rand.NewZipf(r, cfg.ZipfS, 1, uint64(n-1))
		choosers[c] = ch
	}

	// The total money of each currency bounds every balance; a request for
	// more than that can never be applied.
	total := make([]int64, nc)
	w.Funding = make([]Op, cfg.Accounts)
	for i := range w.Funding {
		cur := cfg.Currencies[i%nc]
		units := cfg.Funding * pow10(-unitExp(cur))
		w.Funding[i] = Op{Kind: transfer.KindDeposit, From: -1, To: int32(i), Units: units}
		total[i%nc] += units
	}

	pickDebit := func(ch *chooser) int32 {
		if cfg.Hot == HotDebit || cfg.Hot == HotBoth {
			return ch.hot(r)
		}
		return ch.uniform(r)
	}
	pickCredit := func(ch *chooser) int32 {
		if cfg.Hot == HotCredit || cfg.Hot == HotBoth {
			return ch.hot(r)
		}
		return ch.uniform(r)
	}

	w.Ops = make([]Op, cfg.Requests)
	var rejects []int
	var unsettled []int // holds waiting for their post or void, oldest first
	m := cfg.Mix
	for i := range w.Ops {
		ch := choosers[r.IntN(nc)]
		x := r.Float64()
		var op Op
		switch {
		case len(unsettled) > 0 && unsettled[0]+HoldGap <= i:
			h := unsettled[0]
			unsettled = unsettled[1:]
			op = Op{Kind: transfer.KindPost, From: -1, To: -1, HoldOp: int32(h + 1)}
			if r.IntN(4) == 0 {
				op.Kind = transfer.KindVoid
			}
		case x < m.Holds:
			op = Op{Kind: transfer.KindHold, From: pickDebit(ch), To: pickCredit(ch), Units: 1 + r.Int64N(2000)}
			unsettled = append(unsettled, i)
		case x < m.Holds+m.Deposits:
			op = Op{Kind: transfer.KindDeposit, From: -1, To: pickCredit(ch), Units: 1 + r.Int64N(5000)}
			total[ch.currency] += op.Units
		case x < m.Holds+m.Deposits+m.Withdrawals:
			op = Op{Kind: transfer.KindWithdrawal, From: pickDebit(ch), To: -1, Units: 1 + r.Int64N(2000)}
		case x < m.Holds+m.Deposits+m.Withdrawals+m.Rejects:
			// Half are withdrawals, half transfers; the amount is set below,
			// once the currency's total is known.
			if r.IntN(2) == 0 {
				op = Op{Kind: transfer.KindWithdrawal, From: pickDebit(ch), To: -1}
			} else {
				op = Op{Kind: transfer.KindTransfer, From: pickDebit(ch), To: pickCredit(ch)}
			}
			op.MustReject = true
			rejects = append(rejects, i)
		default:
			op = Op{Kind: transfer.KindTransfer, From: pickDebit(ch), To: pickCredit(ch), Units: 1 + r.Int64N(2000)}
		}
		// Every currency has at least two accounts (withDefaults), so this ends.
		for (op.Kind == transfer.KindTransfer || op.Kind == transfer.KindHold) && op.From == op.To {
			op.To = pickCredit(ch)
		}
		w.Ops[i] = op
	}
	for _, i := range rejects {
		op := &w.Ops[i]
		op.Units = 2*total[int(op.From)%nc] + 1
	}
	return w, nil
}

func pow10(n int32) int64 {
	p := int64(1)
	for ; n > 0; n-- {
		p *= 10
	}
	return p
}

// Counts tallies a workload's requests by kind, for reports. Holds, posts
// and voids are counted by HoldCounts, not here.
func (w *Workload) Counts() (transfers, deposits, withdrawals, mustReject int) {
	for _, op := range w.Ops {
		switch {
		case op.MustReject:
			mustReject++
		case op.Kind == transfer.KindDeposit:
			deposits++
		case op.Kind == transfer.KindWithdrawal:
			withdrawals++
		case op.Kind == transfer.KindTransfer:
			transfers++
		}
	}
	return
}

// HoldCounts tallies a workload's holds and their posts and voids.
func (w *Workload) HoldCounts() (holds, posts, voids int) {
	for _, op := range w.Ops {
		switch op.Kind {
		case transfer.KindHold:
			holds++
		case transfer.KindPost:
			posts++
		case transfer.KindVoid:
			voids++
		}
	}
	return
}
