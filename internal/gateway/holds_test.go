package gateway

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

func holdJSON(id, from, to uuid.UUID, amount string, extra string) string {
	return `{"id":"` + id.String() + `","from_account_id":"` + from.String() + `","to_account_id":"` + to.String() +
		`","amount":"` + amount + `","currency":"USD"` + extra + `}`
}

func idJSON(id uuid.UUID, extra string) string { return `{"id":"` + id.String() + `"` + extra + `}` }

func (h *harness) accountView(id uuid.UUID) reply {
	h.t.Helper()
	r := h.do("GET", "/v1/accounts/"+id.String(), "")
	expect(h.t, r, 200, "")
	return r
}

func checkFunds(t *testing.T, h *harness, id uuid.UUID, balance, available string) {
	t.Helper()
	r := h.accountView(id)
	if r.str("balance") != balance || r.str("available") != available {
		t.Fatalf("account %s: balance %s available %s, want %s / %s", id, r.str("balance"), r.str("available"), balance, available)
	}
}

// TestHoldLifecycleOverHTTP: a hold reserves, a partial post moves and
// releases, a second settlement is refused, a void releases, and the views
// show every field the API promises.
func TestHoldLifecycleOverHTTP(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	h.startWorker()
	a, b := newAccount(h, "USD"), newAccount(h, "USD")
	deposit(h, a, "100", "USD")

	hold := uuid.New()
	r := h.do("POST", "/v1/holds", holdJSON(hold, a, b, "60", `,"timeout_seconds":3600`), "Prefer", "wait=30")
	expect(t, r, 201, "")
	if r.header.Get("Location") != "/v1/holds/"+hold.String() || r.str("kind") != "hold" || r.str("status") != "applied" {
		t.Fatalf("hold: %s %s", r.header.Get("Location"), r.raw)
	}
	checkFunds(t, h, a, "100.00", "40.00")
	checkFunds(t, h, b, "0.00", "0.00")
	// The same id with other fields is a conflict; the same fields replay.
	expect(t, h.do("POST", "/v1/holds", holdJSON(hold, a, b, "61", ""), "Prefer", "wait=30"), 409, transfer.CodeTransferIDConflict)
	expect(t, h.do("POST", "/v1/holds", holdJSON(hold, a, b, "60", `,"timeout_seconds":3600`)), 200, "")
	// What is held cannot be spent.
	expect(t, h.do("POST", "/v1/transfers", transferJSON(uuid.New(), a, b, "40.01", "USD"), "Prefer", "wait=30"), 422, transfer.CodeInsufficientFunds)

	v := h.do("GET", "/v1/holds/"+hold.String(), "")
	expect(t, v, 200, "")
	if v.str("state") != "held" || v.str("amount") != "60.00" || v.str("posted_amount") != "0.00" || v.str("currency") != "USD" ||
		v.str("from_account_id") != a.String() || v.str("to_account_id") != b.String() || v.str("expires_at") == "" ||
		v.str("created_at") == "" || v.str("updated_at") == "" {
		t.Fatalf("held: %s", v.raw)
	}

	post := uuid.New()
	path := "/v1/holds/" + hold.String()
	expect(t, h.do("POST", path+"/post", idJSON(post, `,"amount":"60.01"`), "Prefer", "wait=30"), 422, transfer.CodePostAmountExceedsHold)
	post = uuid.New()
	r = h.do("POST", path+"/post", idJSON(post, `,"amount":"25.5"`), "Prefer", "wait=30")
	expect(t, r, 201, "")
	if r.str("kind") != "post" || r.str("hold_id") != hold.String() || r.str("amount") != "25.50" || r.str("from_account_id") != a.String() ||
		r.str("to_account_id") != b.String() || r.str("reversed_amount") != "0.00" || r.header.Get("Location") != "/v1/transfers/"+post.String() {
		t.Fatalf("post: %s", r.raw)
	}
	checkFunds(t, h, a, "74.50", "74.50")
	checkFunds(t, h, b, "25.50", "25.50")
	v = h.do("GET", path, "")
	if v.str("state") != "posted" || v.str("posted_amount") != "25.50" {
		t.Fatalf("posted: %s", v.raw)
	}
	expect(t, h.do("POST", path+"/void", idJSON(uuid.New(), ""), "Prefer", "wait=30"), 422, transfer.CodeHoldAlreadyPosted)
	expect(t, h.do("POST", path+"/post", idJSON(uuid.New(), ""), "Prefer", "wait=30"), 422, transfer.CodeHoldAlreadyPosted)

	// A void releases a whole hold; then a post is refused.
	hold2 := uuid.New()
	expect(t, h.do("POST", "/v1/holds", holdJSON(hold2, a, b, "70", ""), "Prefer", "wait=30"), 201, "")
	checkFunds(t, h, a, "74.50", "4.50")
	void := uuid.New()
	r = h.do("POST", "/v1/holds/"+hold2.String()+"/void", idJSON(void, ""), "Prefer", "wait=30")
	expect(t, r, 201, "")
	if r.str("kind") != "void" || r.str("hold_id") != hold2.String() {
		t.Fatalf("void: %s", r.raw)
	}
	checkFunds(t, h, a, "74.50", "74.50")
	expect(t, h.do("POST", "/v1/holds/"+hold2.String()+"/post", idJSON(uuid.New(), ""), "Prefer", "wait=30"), 422, transfer.CodeHoldAlreadyVoided)
	if got := h.do("GET", "/v1/holds/"+hold2.String(), ""); got.str("state") != "voided" || got.body["expires_at"] != nil {
		t.Fatalf("voided: %s", got.raw)
	}

	// Unknown holds, refused holds and bad bodies.
	unknown := uuid.New()
	expect(t, h.do("POST", "/v1/holds/"+unknown.String()+"/post", idJSON(uuid.New(), ""), "Prefer", "wait=30"), 422, transfer.CodeHoldNotFound)
	expect(t, h.do("GET", "/v1/holds/"+unknown.String(), ""), 404, CodeNotFound)
	expect(t, h.do("POST", path+"/post", idJSON(uuid.New(), `,"amount":"0"`)), 422, transfer.CodeTransferAmountMustBePositive)
	expect(t, h.do("POST", path+"/post", idJSON(uuid.New(), `,"amount":5`)), 400, transfer.CodeInvalidAmount)
	expect(t, h.do("POST", path+"/void", idJSON(uuid.New(), `,"amount":"5"`)), 400, CodeUnknownField)
	expect(t, h.do("POST", "/v1/holds/x/void", idJSON(uuid.New(), "")), 400, CodeInvalidField)
	expect(t, h.do("POST", "/v1/holds", holdJSON(uuid.New(), a, b, "1", `,"timeout_seconds":2592001`)), 422, transfer.CodeInvalidTimeout)
	expect(t, h.do("POST", "/v1/holds", holdJSON(uuid.New(), a, b, "1", `,"timeout_seconds":"60"`)), 422, transfer.CodeInvalidTimeout)
	expect(t, h.do("POST", "/v1/holds", holdJSON(uuid.New(), a, b, "1", `,"timeout_seconds":1.5`)), 422, transfer.CodeInvalidTimeout)
	expect(t, h.do("POST", "/v1/holds", holdJSON(uuid.New(), a, a, "1", "")), 422, transfer.CodeAccountsMustBeDifferent)
	rejected := uuid.New()
	expect(t, h.do("POST", "/v1/holds", holdJSON(rejected, a, b, "1000", ""), "Prefer", "wait=30"), 422, transfer.CodeInsufficientFunds)
	if got := h.do("GET", "/v1/holds/"+rejected.String(), ""); got.str("state") != "rejected" || got.str("reason") != "insufficient_funds" {
		t.Fatalf("rejected hold: %s", got.raw)
	}
	expect(t, h.do("POST", "/v1/holds/"+rejected.String()+"/void", idJSON(uuid.New(), ""), "Prefer", "wait=30"), 422, transfer.CodeHoldNotFound)

	// The account's holds, by state and by cursor.
	list := h.do("GET", "/v1/accounts/"+a.String()+"/holds?state=held", "")
	expect(t, list, 200, "")
	if data := list.body["data"].([]any); len(data) != 0 {
		t.Fatalf("held list: %s", list.raw)
	}
	all := h.do("GET", "/v1/accounts/"+a.String()+"/holds?limit=1", "")
	if data := all.body["data"].([]any); len(data) != 1 || all.str("next_cursor") == "" {
		t.Fatalf("first page: %s", all.raw)
	}
	next := h.do("GET", "/v1/accounts/"+a.String()+"/holds?limit=1&cursor="+all.str("next_cursor"), "")
	if data := next.body["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != hold2.String() || next.body["next_cursor"] != nil {
		t.Fatalf("second page: %s", next.raw)
	}
	expect(t, h.do("GET", "/v1/accounts/"+a.String()+"/holds?state=pending", ""), 400, CodeInvalidField)
	expect(t, h.do("GET", "/v1/accounts/"+uuid.NewString()+"/holds", ""), 404, CodeNotFound)
}

// TestHoldPendingThenPosted: with no worker running, a hold is pending in
// the stream; its post is filed under its sender all the same, and both
// are applied in order once a worker starts.
func TestHoldPendingThenPosted(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	a, b := h.account("USD", "50"), h.account("USD", "")
	hold, post := uuid.New(), uuid.New()
	expect(t, h.do("POST", "/v1/holds", holdJSON(hold, a, b, "20", `,"timeout_seconds":60`)), 202, "")
	v := h.do("GET", "/v1/holds/"+hold.String(), "")
	if v.status != 200 || v.str("state") != "pending" || v.str("from_account_id") != a.String() || v.body["expires_at"] != nil {
		t.Fatalf("pending hold: %s", v.raw)
	}
	r := h.do("POST", "/v1/holds/"+hold.String()+"/post", idJSON(post, ""))
	expect(t, r, 202, "")
	if r.str("status") != "pending" || r.str("hold_id") != hold.String() || r.body["amount"] != nil {
		t.Fatalf("pending post: %s", r.raw)
	}
	// The post sits in the sender's partition, behind the hold.
	p, found, err := h.queue.LookupPending(testCtx(t), post)
	if err != nil || !found || p.Partition != a {
		t.Fatalf("pending post filed under %s (found %v, %v), want %s", p.Partition, found, err, a)
	}
	h.startWorker()
	done := h.poll("/v1/transfers/"+post.String(), func(r reply) bool { return r.str("status") != "pending" })
	if done.str("status") != "applied" || done.str("amount") != "20.00" {
		t.Fatalf("post: %s", done.raw)
	}
	if got := h.balance(b); got != "20" {
		t.Fatalf("receiver balance %s", got)
	}
}

// TestReversalsOverHTTP: partial and whole reversals of a transfer, of a
// deposit and of a withdrawal, what cannot be reversed, and the views.
func TestReversalsOverHTTP(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	h.startWorker()
	a, b := newAccount(h, "USD"), newAccount(h, "USD")
	dep := uuid.New()
	expect(t, h.do("POST", "/v1/deposits", `{"id":"`+dep.String()+`","account_id":"`+a.String()+`","amount":"100","currency":"USD"}`, "Prefer", "wait=30"), 201, "")
	tr := uuid.New()
	expect(t, h.do("POST", "/v1/transfers", transferJSON(tr, a, b, "30", "USD"), "Prefer", "wait=30"), 201, "")

	revs := "/v1/transfers/" + tr.String() + "/reversals"
	first := uuid.New()
	r := h.do("POST", revs, idJSON(first, `,"amount":"10"`), "Prefer", "wait=30")
	expect(t, r, 201, "")
	if r.str("kind") != "reversal" || r.str("reverses") != tr.String() || r.str("from_account_id") != b.String() ||
		r.str("to_account_id") != a.String() || r.str("amount") != "10.00" || r.body["reversed_amount"] != nil {
		t.Fatalf("reversal: %s", r.raw)
	}
	expect(t, h.do("POST", revs, idJSON(uuid.New(), `,"amount":"20.01"`), "Prefer", "wait=30"), 422, transfer.CodeReversalExceedsTransfer)
	rest := uuid.New()
	if r = h.do("POST", revs, idJSON(rest, ""), "Prefer", "wait=30"); r.status != 201 || r.str("amount") != "20.00" {
		t.Fatalf("rest: %s", r.raw)
	}
	expect(t, h.do("POST", revs, idJSON(uuid.New(), ""), "Prefer", "wait=30"), 422, transfer.CodeReversalExceedsTransfer)
	v := h.do("GET", "/v1/transfers/"+tr.String(), "")
	if v.str("reversed_amount") != "30.00" {
		t.Fatalf("reversed transfer: %s", v.raw)
	}
	list := h.do("GET", revs, "")
	expect(t, list, 200, "")
	data := list.body["data"].([]any)
	if len(data) != 4 || data[0].(map[string]any)["id"] != first.String() || data[2].(map[string]any)["id"] != rest.String() {
		t.Fatalf("reversals: %s", list.raw)
	}
	checkFunds(t, h, a, "100.00", "100.00")
	checkFunds(t, h, b, "0.00", "0.00")

	// A deposit comes back out of its account; a withdrawal goes back in.
	wd := uuid.New()
	expect(t, h.do("POST", "/v1/withdrawals", `{"id":"`+wd.String()+`","account_id":"`+a.String()+`","amount":"40","currency":"USD"}`, "Prefer", "wait=30"), 201, "")
	r = h.do("POST", "/v1/transfers/"+wd.String()+"/reversals", idJSON(uuid.New(), ""), "Prefer", "wait=30")
	if r.status != 201 || r.str("to_account_id") != a.String() || r.str("from_account_id") != "" {
		t.Fatalf("reversal of a withdrawal: %s", r.raw)
	}
	r = h.do("POST", "/v1/transfers/"+dep.String()+"/reversals", idJSON(uuid.New(), `,"amount":"100.01"`), "Prefer", "wait=30")
	expect(t, r, 422, transfer.CodeReversalExceedsTransfer)
	r = h.do("POST", "/v1/transfers/"+dep.String()+"/reversals", idJSON(uuid.New(), `,"amount":"99"`), "Prefer", "wait=30")
	if r.status != 201 || r.str("from_account_id") != a.String() {
		t.Fatalf("reversal of a deposit: %s", r.raw)
	}
	checkFunds(t, h, a, "1.00", "1.00")

	// Reversals themselves, rejections and unknown ids cannot be reversed.
	expect(t, h.do("POST", "/v1/transfers/"+first.String()+"/reversals", idJSON(uuid.New(), ""), "Prefer", "wait=30"), 422, transfer.CodeTransferNotReversible)
	expect(t, h.do("POST", "/v1/transfers/"+uuid.NewString()+"/reversals", idJSON(uuid.New(), ""), "Prefer", "wait=30"), 422, transfer.CodeTransferNotFound)
	expect(t, h.do("GET", "/v1/transfers/"+uuid.NewString()+"/reversals", ""), 404, CodeNotFound)
	expect(t, h.do("POST", revs, idJSON(uuid.New(), `,"amount":"-0"`)), 422, transfer.CodeTransferAmountMustBePositive)
	expect(t, h.do("POST", revs, idJSON(uuid.New(), `,"currency":"USD"`)), 400, CodeUnknownField)
}

// TestHoldExpiryOverHTTP: a hold with a one-second timeout expires while
// nothing else happens, and a post racing expiry either wins or is refused
// hold_expired; never both, and the money adds up either way.
func TestHoldExpiryOverHTTP(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	h.startWorker()
	a, b := newAccount(h, "USD"), newAccount(h, "USD")
	deposit(h, a, "100", "USD")

	idle := uuid.New()
	expect(t, h.do("POST", "/v1/holds", holdJSON(idle, a, b, "30", `,"timeout_seconds":1`), "Prefer", "wait=30"), 201, "")
	checkFunds(t, h, a, "100.00", "70.00")
	h.poll("/v1/holds/"+idle.String(), func(r reply) bool { return r.str("state") == "expired" })
	checkFunds(t, h, a, "100.00", "100.00")
	expect(t, h.do("POST", "/v1/holds/"+idle.String()+"/post", idJSON(uuid.New(), ""), "Prefer", "wait=30"), 422, transfer.CodeHoldExpired)

	// Posts sent around the moment of expiry.
	const n = 6
	holds := make([]uuid.UUID, n)
	for i := range holds {
		holds[i] = uuid.New()
		expect(t, h.do("POST", "/v1/holds", holdJSON(holds[i], a, b, "10", `,"timeout_seconds":1`), "Prefer", "wait=30"), 201, "")
	}
	// Each post is sent at its own offset from its hold's expiry, from
	// well before to just after it.
	var wg sync.WaitGroup
	codes := make([]reply, n)
	for i := range holds {
		v := h.do("GET", "/v1/holds/"+holds[i].String(), "")
		expires, err := time.Parse(time.RFC3339Nano, v.str("expires_at"))
		if err != nil {
			t.Fatalf("expires_at: %s", v.raw)
		}
		at := expires.Add(time.Duration(i-n+2) * 60 * time.Millisecond)
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(at))
			codes[i] = h.do("POST", "/v1/holds/"+holds[i].String()+"/post", idJSON(uuid.New(), ""), "Prefer", "wait=30")
		}()
	}
	wg.Wait()
	posted := 0
	for i, r := range codes {
		v := h.do("GET", "/v1/holds/"+holds[i].String(), "")
		switch {
		case r.status == 201 && v.str("state") == "posted":
			posted++
		case r.status == 422 && r.str("code") == string(transfer.CodeHoldExpired) && v.str("state") == "expired":
		default:
			t.Fatalf("hold %d: post %d %s, hold %s", i, r.status, r.raw, v.raw)
		}
	}
	t.Logf("%d of %d posts won the race with expiry", posted, n)
	moved := 10 * posted
	checkFunds(t, h, a, decimalString(100-moved), decimalString(100-moved))
	checkFunds(t, h, b, decimalString(moved), decimalString(moved))
}

func decimalString(n int) string { return strconv.Itoa(n) + ".00" }

// TestSettlementsFromAProducer: a post published straight to NATS under
// the receiver's account is refused subject_account_mismatch; under the
// sender it is applied, and the gateway shows both.
func TestSettlementsFromAProducer(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	h.startWorker()
	a, b := h.account("USD", "10"), h.account("USD", "")
	hold := uuid.New()
	expect(t, h.do("POST", "/v1/holds", holdJSON(hold, a, b, "10", ""), "Prefer", "wait=30"), 201, "")
	bus, err := natsbus.Open(testCtx(t), h.js)
	if err != nil {
		t.Fatal(err)
	}
	wrong := transfer.Request{ID: uuid.New(), Kind: transfer.KindPost, HoldID: hold, Partition: b}
	right := transfer.Request{ID: uuid.New(), Kind: transfer.KindPost, HoldID: hold, Partition: a}
	for _, r := range []transfer.Request{wrong, right} {
		if _, err := bus.PublishRequest(testCtx(t), r, ""); err != nil {
			t.Fatal(err)
		}
	}
	got := h.poll("/v1/transfers/"+wrong.ID.String(), func(r reply) bool { return r.str("status") == "rejected" })
	if got.str("reason") != string(transfer.CodeSubjectAccountMismatch) {
		t.Fatalf("wrong subject: %s", got.raw)
	}
	h.poll("/v1/transfers/"+right.ID.String(), func(r reply) bool { return r.str("status") == "applied" })
	checkFunds(t, h, b, "10.00", "10.00")
}
