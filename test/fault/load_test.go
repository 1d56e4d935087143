package fault

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/transfer"
)

// route says how an op is submitted.
type route int

const (
	viaHTTP route = iota
	viaNATS
	// viaLegacy is the 2020 API's POST /transfers/, which answers with the
	// outcome and is positive-idempotent.
	viaLegacy
)

func (r route) String() string {
	switch r {
	case viaNATS:
		return "nats"
	case viaLegacy:
		return "2020 api"
	}
	return "http"
}

// op is one request of the load, with what the service may make of it.
type op struct {
	ID       uuid.UUID
	Kind     transfer.Kind
	From, To uuid.UUID // From is nil for a deposit, To for a withdrawal
	Amount   string    // as sent; may carry more digits than the currency keeps
	Currency string    // as sent; may be lower case
	Route    route

	// MayApply says the request may be applied; Reasons lists the
	// rejections it may get. A request the load knows must fail has
	// MayApply false and one reason.
	MayApply bool
	Reasons  []transfer.Code

	// GatewayRefuses marks a request the gateway must refuse (4xx) without
	// publishing it; it is never stored.
	GatewayRefuses bool
	// Storm is how many connections submit the request at once, over HTTP
	// and over NATS (0: a single client).
	Storm int
	// Conflict makes the client, after the request is accepted, submit the
	// same id with another amount; the stored transfer must stay the first.
	Conflict bool
	// Probe marks the deposits used to time recoveries.
	Probe bool
	// Retry, on a 2020-API op, is what its client sends under the same id
	// after a rejection, from two connections at once: the original service
	// forgot rejected attempts, so the retry is decided afresh. The stored
	// transfer is then either this op, rejected, or its retry.
	Retry *op

	// Timeout is a hold's timeout_seconds (0: none, the field is left out).
	Timeout int
	// HoldID is the hold a post or void settles; Reverses the request a
	// reversal moves money back for. Posts, voids and reversals do not
	// name their accounts: From, To and Currency are then what the load
	// expects the service to take from the hold or the reversed request
	// (for a reversal the reversed request's To and From), and Amount may
	// be empty (the whole hold, or what is left to reverse).
	HoldID, Reverses uuid.UUID
	// Over marks a post or reversal whose amount is one unit more than the
	// hold or the reversed request: it must never be applied.
	Over bool

	// Metadata and Reference are the labels sent with a v1 request (nil
	// and "": none). References are unique in the load, so none is
	// rejected reference_already_used; the book check verifies that every
	// stored request has the labels it was sent with.
	Metadata  map[string]string
	Reference string
}

// partitionAccount is the account whose partition the request goes to:
// for a post or void the hold's sender, for a reversal the account it
// debits (for a reversed withdrawal the account it credits).
func (o *op) partitionAccount() uuid.UUID {
	switch {
	case o.Kind == transfer.KindDeposit:
		return o.To
	case o.Kind == transfer.KindReversal && o.From == uuid.Nil:
		return o.To
	}
	return o.From
}

// account is an account of the load's world.
type account struct {
	ID       uuid.UUID
	Currency string
}

// currencySpec gives the load's amounts for one currency.
type currencySpec struct {
	Code      string
	Precision int32
	// Unit is the smallest amount the load sends in the currency's own
	// precision (1.00 USD, 100 JPY); amounts are multiples of it with a
	// few extra digits sometimes, to exercise rounding.
	Unit decimal.Decimal
}

// loadCurrencies spans every precision the service keeps: none (JPY), 2,
// 3 (KWD), 8 and 18 (ETH).
var loadCurrencies = []currencySpec{
	{Code: "USD", Precision: 2, Unit: decimal.RequireFromString("1")},
	{Code: "JPY", Precision: 0, Unit: decimal.RequireFromString("100")},
	{Code: "BTC", Precision: 8, Unit: decimal.RequireFromString("0.001")},
	{Code: "ETH", Precision: 18, Unit: decimal.RequireFromString("0.01")},
	{Code: "KWD", Precision: 3, Unit: decimal.RequireFromString("1")},
}

// bigEvery: one deposit, transfer or withdrawal in bigEvery has an amount
// with the most integer digits a request may have.
const bigEvery = 40

// world is the set of accounts the load moves money between, and the
// probe accounts, one per partition, used to time recoveries.
type world struct {
	Accounts   []account
	ByCurrency map[string][]account
	Probes     []account // Probes[p] is in partition p
	Partitions int
}

// partitionOf is the stream's partition of an account: the requests
// stream's transform hashes the account token with FNV-1a.
func partitionOf(account uuid.UUID, partitions int) int {
	h := fnv.New32a()
	h.Write([]byte(account.String()))
	return int(h.Sum32() % uint32(partitions))
}

// newUUID draws a version 4 uuid from rng, so a seed fixes every id.
func newUUID(rng *rand.Rand) uuid.UUID {
	var u uuid.UUID
	for i := 0; i < len(u); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			u[i+j] = byte(v >> (8 * j))
		}
	}
	u[6] = (u[6] & 0x0f) | 0x40
	u[8] = (u[8] & 0x3f) | 0x80
	return u
}

// newWorld draws perCurrency accounts of each load currency and one USD
// probe account per partition.
func newWorld(rng *rand.Rand, perCurrency, partitions int) *world {
	w := &world{ByCurrency: map[string][]account{}, Partitions: partitions}
	for _, c := range loadCurrencies {
		for i := 0; i < perCurrency; i++ {
			a := account{ID: newUUID(rng), Currency: c.Code}
			w.Accounts = append(w.Accounts, a)
			w.ByCurrency[c.Code] = append(w.ByCurrency[c.Code], a)
		}
	}
	w.Probes = make([]account, partitions)
	for found := 0; found < partitions; {
		id := newUUID(rng)
		p := partitionOf(id, partitions)
		if w.Probes[p].ID == uuid.Nil {
			w.Probes[p] = account{ID: id, Currency: "USD"}
			found++
		}
	}
	return w
}

// loadModel draws the load's requests from a seeded generator: the same
// seed gives the same requests in the same order (as long as the same
// requests are accepted by then: settlements and reversals are drawn only
// for requests the service accepted).
type loadModel struct {
	rng   *rand.Rand
	world *world
	// stormEvery, conflictEvery: one op in n is a storm or a conflict.
	stormEvery, conflictEvery int
	stormSize                 int
	natsShare                 float64
	n                         int

	// holdShare is the share of ops drawn from holds, their settlements
	// and reversals (0: none). accepted says whether, and when, the
	// service accepted an id; without it none are drawn.
	holdShare float64
	accepted  func(uuid.UUID) (time.Time, bool)
	// reverseAfter is how long after its acceptance a request may be
	// reversed: the reversal goes to another partition (the receiver's),
	// and one drawn sooner mostly finds nothing to reverse yet.
	reverseAfter time.Duration
	holds        []*holdRef
	// reversible lists requests that may be applied and reversed:
	// transfers, deposits, withdrawals and posts.
	reversible []*op
}

// holdRef is a hold the load sent and the settlements it sent for it.
type holdRef struct {
	op          *op
	settlements []*op
	// settled: a settlement that may apply was sent (every later one must
	// be rejected).
	settled bool
}

func newLoadModel(rng *rand.Rand, w *world, stormEvery, conflictEvery, stormSize int) *loadModel {
	return &loadModel{rng: rng, world: w, stormEvery: stormEvery, conflictEvery: conflictEvery, stormSize: stormSize, natsShare: 0.4}
}

func (m *loadModel) spec(code string) currencySpec {
	for _, c := range loadCurrencies {
		if c.Code == code {
			return c
		}
	}
	panic("unknown currency " + code)
}

// amount draws between lo and hi units of c, sometimes with digits beyond
// the currency's precision (which the service rounds half away from zero).
func (m *loadModel) amount(c currencySpec, lo, hi int) string {
	units := lo + m.rng.IntN(hi-lo+1)
	d := c.Unit.Mul(decimal.NewFromInt(int64(units)))
	// Add a fraction of a unit in the currency's own precision: every
	// digit down to the last one it keeps (16 of them for ETH).
	step := decimal.New(1, -c.Precision)
	d = d.Add(step.Mul(decimal.NewFromInt(m.rng.Int64N(c.Unit.Div(step).IntPart()))))
	return m.extraDigit(c, d).String()
}

// extraDigit sometimes adds one more digit than the currency keeps:
// "12.345" USD.
func (m *loadModel) extraDigit(c currencySpec, d decimal.Decimal) decimal.Decimal {
	if m.rng.IntN(8) == 0 {
		d = d.Add(decimal.New(int64(1+m.rng.IntN(9)), -c.Precision-1))
	}
	return d
}

// bigAmount draws an amount with transfer.MaxIntegerDigits integer digits
// and every fraction digit c keeps: 18 + 18 digits for ETH.
func (m *loadModel) bigAmount(c currencySpec) string {
	lo := decimal.New(1, transfer.MaxIntegerDigits-1) // 10^17
	// Below 10^18 - 1, so that rounding an extra digit up keeps 18 digits.
	span := decimal.New(9, transfer.MaxIntegerDigits-1).Sub(decimal.NewFromInt(1)).IntPart()
	d := lo.Add(decimal.NewFromInt(m.rng.Int64N(span)))
	if c.Precision > 0 {
		frac := decimal.NewFromInt(m.rng.Int64N(decimal.New(1, min(c.Precision, 18)).IntPart()))
		d = d.Add(frac.Shift(-c.Precision))
	}
	return m.extraDigit(c, d).String()
}

// big reports whether the next amount is to be a big one.
func (m *loadModel) big() bool { return m.rng.IntN(bigEvery) == 0 }

func (m *loadModel) pick(list []account) account { return list[m.rng.IntN(len(list))] }

// currencyText sometimes lower-cases the code: usd and USD are one currency.
func (m *loadModel) currencyText(code string) string {
	if m.rng.IntN(10) == 0 {
		return string([]byte{code[0] | 0x20, code[1] | 0x20, code[2] | 0x20})
	}
	return code
}

// next draws the next op.
func (m *loadModel) next() *op {
	m.n++
	c := loadCurrencies[m.rng.IntN(len(loadCurrencies))]
	accts := m.world.ByCurrency[c.Code]
	o := &op{ID: newUUID(m.rng), Currency: m.currencyText(c.Code), Route: viaHTTP, MayApply: true}
	if m.rng.Float64() < m.natsShare {
		o.Route = viaNATS
	}
	if m.accepted != nil && m.rng.Float64() < m.holdShare {
		m.holdFamily(o, c, accts)
	} else {
		m.plain(o, c, accts)
	}
	if !o.GatewayRefuses && o.MayApply && o.Route != viaLegacy {
		switch {
		case m.stormEvery > 0 && m.n%m.stormEvery == 0:
			o.Storm = m.stormSize
		case m.conflictEvery > 0 && m.n%m.conflictEvery == 0 && o.Amount != "" && o.Currency != "":
			// Posts, voids and reversals carry no currency and maybe
			// no amount: their twins are other ops' business.
			o.Conflict = o.Kind != transfer.KindPost && o.Kind != transfer.KindReversal
		}
	}
	if o.MayApply && o.Route != viaLegacy && o.Kind != transfer.KindHold && o.Kind != transfer.KindVoid && o.Kind != transfer.KindReversal {
		m.reversible = append(m.reversible, o)
	}
	m.labels(o)
	return o
}

// labels gives about half of the v1 requests metadata, a reference or
// both. The values exercise escaping (quotes, non-ASCII) and the limits'
// edges (a 64-character key, a 128-character reference).
func (m *loadModel) labels(o *op) {
	if o.Route == viaLegacy || o.GatewayRefuses {
		return
	}
	switch m.rng.IntN(4) {
	case 0:
		return
	case 1:
		o.Reference = "load-" + o.ID.String()
	case 2:
		o.Metadata = map[string]string{"load.n": strconv.Itoa(m.n), "route": o.Route.String(), "note": `"quoted" café`}
	default:
		o.Metadata = map[string]string{strings.Repeat("k", 64): strings.Repeat("é", 256)}
		o.Reference = "ref " + o.ID.String() + " " + strings.Repeat("x", 128-41)
	}
}

// plain draws o as a transfer, deposit or withdrawal, or one the gateway
// or a worker must refuse.
func (m *loadModel) plain(o *op, c currencySpec, accts []account) {
	switch r := m.rng.IntN(100); {
	case r < 30: // deposit: always applied
		o.Kind, o.To = transfer.KindDeposit, m.pick(accts).ID
		o.Amount = m.amount(c, 20, 400)
		if m.big() {
			o.Amount = m.bigAmount(c)
		}
	case r < 70: // transfer: applied or insufficient funds
		o.Kind = transfer.KindTransfer
		from := m.pick(accts)
		to := m.pick(accts)
		for to.ID == from.ID {
			to = m.pick(accts)
		}
		o.From, o.To = from.ID, to.ID
		o.Amount = m.amount(c, 1, 150)
		switch {
		case m.big():
			// Half of them from the account funded with a big amount,
			// which can afford it.
			if m.rng.IntN(2) == 0 && to.ID != accts[0].ID {
				o.From = accts[0].ID
			}
			o.Amount = m.bigAmount(c)
		case m.rng.IntN(12) == 0:
			// More than an account usually holds.
			o.Amount = m.amount(c, 2000, 20000)
		}
		o.Reasons = []transfer.Code{transfer.CodeInsufficientFunds}
		if m.rng.IntN(8) == 0 {
			m.legacyRetry(o, c)
		}
	case r < 85: // withdrawal: applied or insufficient funds
		o.Kind, o.From = transfer.KindWithdrawal, m.pick(accts).ID
		o.Amount = m.amount(c, 1, 200)
		switch {
		case m.big():
			o.Amount = m.bigAmount(c)
		case m.rng.IntN(8) == 0:
			o.Amount = m.amount(c, 2000, 20000)
		}
		o.Reasons = []transfer.Code{transfer.CodeInsufficientFunds}
	case r < 89: // transfer to an account of another currency
		o.Kind = transfer.KindTransfer
		o.From = m.pick(accts).ID
		other := loadCurrencies[(indexOf(c.Code)+1+m.rng.IntN(len(loadCurrencies)-1))%len(loadCurrencies)]
		o.To = m.pick(m.world.ByCurrency[other.Code]).ID
		o.Amount = m.amount(c, 1, 10)
		o.mustFail(transfer.CodeReceiverAccountWrongCurrency)
	case r < 91: // deposit to an account that does not exist
		o.Kind, o.To = transfer.KindDeposit, newUUID(m.rng)
		o.Amount = m.amount(c, 1, 10)
		o.mustFail(transfer.CodeAccountNotExist)
	case r < 93: // transfer to an account that does not exist
		o.Kind, o.From, o.To = transfer.KindTransfer, m.pick(accts).ID, newUUID(m.rng)
		o.Amount = m.amount(c, 1, 10)
		o.mustFail(transfer.CodeReceiverAccountNotExist)
	case r < 94: // withdrawal from an account that does not exist
		o.Kind, o.From = transfer.KindWithdrawal, newUUID(m.rng)
		o.Amount = m.amount(c, 1, 10)
		o.mustFail(transfer.CodeAccountNotExist)
	case r < 96: // an unsupported currency: refused by the gateway, rejected by a worker
		o.Kind, o.To = transfer.KindDeposit, m.pick(accts).ID
		o.Currency = "XAU"
		o.Amount = "5"
		o.mustFail(transfer.CodeCurrencyNotSupported)
		o.GatewayRefuses = o.Route == viaHTTP
	default: // refused by the gateway's own checks: never published
		m.gatewayInvalid(o, c, accts)
	}
}

// legacyRetry makes o a 2020-API transfer that its client first sends to
// an account of another currency (rejected) and then retries, under the
// same id, to the account o names.
func (m *loadModel) legacyRetry(o *op, c currencySpec) {
	retry := *o
	o.Route, retry.Route = viaLegacy, viaLegacy
	other := loadCurrencies[(indexOf(c.Code)+1+m.rng.IntN(len(loadCurrencies)-1))%len(loadCurrencies)]
	o.To = m.pick(m.world.ByCurrency[other.Code]).ID
	o.mustFail(transfer.CodeReceiverAccountWrongCurrency)
	o.Retry = &retry
}

// gatewayInvalid makes o a request the gateway must refuse with a 4xx.
func (m *loadModel) gatewayInvalid(o *op, c currencySpec, accts []account) {
	o.Route, o.GatewayRefuses, o.MayApply = viaHTTP, true, false
	o.Kind = transfer.KindTransfer
	from := m.pick(accts)
	o.From, o.To, o.Amount = from.ID, m.pick(accts).ID, m.amount(c, 1, 10)
	switch m.rng.IntN(4) {
	case 0:
		o.To = from.ID
		o.Reasons = []transfer.Code{transfer.CodeAccountsMustBeDifferent}
	case 1:
		o.Amount = "-" + o.Amount
		o.Reasons = []transfer.Code{transfer.CodeTransferAmountMustBePositive}
	case 2:
		o.Amount = "0"
		o.Reasons = []transfer.Code{transfer.CodeTransferAmountMustBePositive}
	default:
		// Rounds to zero at the currency's precision.
		o.Amount = decimal.New(4, -c.Precision-1).String()
		o.Reasons = []transfer.Code{transfer.CodeTransferAmountMustBePositive}
	}
	if o.To == o.From && o.Reasons[0] != transfer.CodeAccountsMustBeDifferent {
		o.Reasons = []transfer.Code{transfer.CodeAccountsMustBeDifferent}
	}
}

func (o *op) mustFail(code transfer.Code) {
	o.MayApply = false
	o.Reasons = []transfer.Code{code}
}

func indexOf(code string) int {
	for i, c := range loadCurrencies {
		if c.Code == code {
			return i
		}
	}
	return -1
}

// fundingOps returns one deposit per account, so the first transfers have
// money to move; the first account of each currency gets a big amount,
// from which big transfers can be paid.
func (m *loadModel) fundingOps() []*op {
	var out []*op
	for _, a := range m.world.Accounts {
		c := m.spec(a.Currency)
		amount := m.amount(c, 500, 1000)
		if a == m.world.ByCurrency[a.Currency][0] {
			amount = m.bigAmount(c)
		}
		out = append(out, &op{
			ID: newUUID(m.rng), Kind: transfer.KindDeposit, To: a.ID,
			Amount: amount, Currency: a.Currency, MayApply: true,
			Route: route(m.rng.IntN(2)),
		})
	}
	return out
}

// probeOps returns one small deposit per partition's probe account.
func (m *loadModel) probeOps() []*op {
	out := make([]*op, len(m.world.Probes))
	for i, a := range m.world.Probes {
		out[i] = &op{
			ID: newUUID(m.rng), Kind: transfer.KindDeposit, To: a.ID,
			Amount: "1", Currency: "USD", MayApply: true, Route: viaNATS, Probe: true,
		}
	}
	return out
}

// conflicting returns the op's twin: the same id with another amount.
func (o *op) conflicting() *op {
	c := *o
	d := decimal.RequireFromString(o.Amount)
	c.Amount = d.Add(decimal.NewFromInt(1)).String()
	c.Storm, c.Conflict = 0, false
	return &c
}

func (o *op) String() string {
	return fmt.Sprintf("%s %s %s->%s %s %s via %s", o.Kind, o.ID, o.From, o.To, o.Amount, o.Currency, o.Route)
}

// holdLongTimeout: a hold with a timeout gets 1 to 3 seconds, so that it
// expires during the run unless settled first, or this many (an hour).
const holdLongTimeout = 3600

// holdFamily draws o as a hold, a post or void of a hold the service
// accepted, or a reversal of an accepted transfer, deposit, withdrawal or
// post. With nothing accepted to settle or reverse yet, it draws a hold.
func (m *loadModel) holdFamily(o *op, c currencySpec, accts []account) {
	r := m.rng.IntN(100)
	switch {
	case r >= 65 && m.reversal(o):
		return
	case r >= 30 && m.settlement(o):
		return
	}
	o.Kind = transfer.KindHold
	from := m.pick(accts)
	to := m.pick(accts)
	for to.ID == from.ID {
		to = m.pick(accts)
	}
	o.From, o.To = from.ID, to.ID
	o.Amount = m.amount(c, 2, 120)
	if m.rng.IntN(12) == 0 {
		o.Amount = m.amount(c, 2000, 20000)
	}
	switch m.rng.IntN(4) {
	case 0, 1: // held until settled
	case 2:
		o.Timeout = 1 + m.rng.IntN(3)
	default:
		o.Timeout = holdLongTimeout
	}
	o.Reasons = []transfer.Code{transfer.CodeInsufficientFunds}
	m.holds = append(m.holds, &holdRef{op: o})
}

// acceptedOp reports whether the service accepted o, and when.
func (m *loadModel) acceptedOp(o *op) (time.Time, bool) { return m.accepted(o.ID) }

// settlement draws o as a post or void of an accepted hold whose earlier
// settlements were all accepted (so the hold and they are ahead of o in
// the sender's partition). It returns false when it found none.
func (m *loadModel) settlement(o *op) bool {
	var h *holdRef
	for try := 0; try < 8 && h == nil; try++ {
		// Mostly recent holds, so that some are settled before they
		// expire.
		lo := max(0, len(m.holds)-200)
		if len(m.holds) == 0 {
			return false
		}
		cand := m.holds[lo+m.rng.IntN(len(m.holds)-lo)]
		if _, ok := m.acceptedOp(cand.op); !ok {
			continue
		}
		ready := true
		for _, s := range cand.settlements {
			if _, ok := m.acceptedOp(s); !ok {
				ready = false
			}
		}
		if ready {
			h = cand
		}
	}
	if h == nil {
		return false
	}
	hold := h.op
	c := m.spec(transfer.NormalizeCurrency(hold.Currency))
	o.HoldID, o.From, o.To, o.Currency = hold.ID, hold.From, hold.To, transfer.NormalizeCurrency(hold.Currency)
	// The hold may have been rejected (insufficient funds).
	o.Reasons = []transfer.Code{transfer.CodeHoldNotFound}
	if hold.Timeout > 0 {
		o.Reasons = append(o.Reasons, transfer.CodeHoldExpired)
	}
	if h.settled {
		o.MayApply = false
		o.Reasons = append(o.Reasons, transfer.CodeHoldAlreadyPosted, transfer.CodeHoldAlreadyVoided)
	}
	held := decimal.RequireFromString(hold.Amount)
	switch r := m.rng.IntN(10); {
	case r < 3: // the whole hold
		o.Kind = transfer.KindPost
	case r < 6: // part of it: whole units below the hold's
		o.Kind = transfer.KindPost
		units := held.Div(c.Unit).IntPart()
		o.Amount = m.amount(c, 1, int(max(1, units-1)))
		if units < 2 {
			o.Amount = ""
		}
	case r < 7: // more than it reserved
		o.Kind, o.Over, o.MayApply = transfer.KindPost, true, false
		o.Amount = held.Add(c.Unit).String()
		o.Reasons = append(o.Reasons, transfer.CodePostAmountExceedsHold)
	default:
		o.Kind = transfer.KindVoid
	}
	if o.MayApply {
		h.settled = true
	}
	h.settlements = append(h.settlements, o)
	return true
}

// reversal draws o as a reversal of an accepted request that may have
// been applied: its whole amount or what is left, a part, or one unit
// more than its amount (which must fail). Requests are reversed again and
// again, so some reversals find nothing left.
func (m *loadModel) reversal(o *op) bool {
	var orig *op
	for try := 0; try < 8 && orig == nil; try++ {
		lo := max(0, len(m.reversible)-500)
		if len(m.reversible) == 0 {
			return false
		}
		cand := m.reversible[lo+m.rng.IntN(len(m.reversible)-lo)]
		if at, ok := m.acceptedOp(cand); ok && time.Since(at) >= m.reverseAfter {
			orig = cand
		}
	}
	if orig == nil {
		return false
	}
	currency := transfer.NormalizeCurrency(orig.Currency)
	c := m.spec(currency)
	o.Kind, o.Reverses, o.From, o.To, o.Currency = transfer.KindReversal, orig.ID, orig.To, orig.From, currency
	// The reversed request may still be undecided in its own partition
	// (transfer_not_found), or rejected (transfer_not_reversible); the
	// account it debits may lack the funds; earlier reversals may have
	// taken what is left.
	o.Reasons = []transfer.Code{transfer.CodeTransferNotFound, transfer.CodeTransferNotReversible,
		transfer.CodeInsufficientFunds, transfer.CodeReversalExceedsTransfer}
	switch r := m.rng.IntN(10); {
	case r < 4: // what is left
	case r < 8:
		o.Amount = m.amount(c, 1, 20)
	default:
		if orig.Amount == "" {
			// A post of the whole hold: its amount is the hold's.
			return m.reversalOver(o, c, m.holdOf(orig.HoldID))
		}
		return m.reversalOver(o, c, orig)
	}
	return true
}

// reversalOver makes o reverse one unit more than orig's amount.
func (m *loadModel) reversalOver(o *op, c currencySpec, orig *op) bool {
	if orig == nil {
		return true
	}
	o.Over, o.MayApply = true, false
	o.Amount = decimal.RequireFromString(orig.Amount).Add(c.Unit).String()
	return true
}

func (m *loadModel) holdOf(id uuid.UUID) *op {
	for _, h := range m.holds {
		if h.op.ID == id {
			return h.op
		}
	}
	return nil
}
