package fault

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// poisonMsg is a message that must be dead-lettered with one of reasons.
type poisonMsg struct {
	kind    string
	subject string
	data    []byte
	msgID   string
	reasons []string
}

// poisonFactory draws poison messages aimed at real accounts' subjects, so
// they land in the same partitions as the valid traffic.
type poisonFactory struct {
	rng   *rand.Rand
	world *world
	// only, when not negative, restricts the factory to one kind.
	only int
}

func (f *poisonFactory) next() poisonMsg {
	acct := f.world.Accounts[f.rng.IntN(len(f.world.Accounts))]
	other := f.world.ByCurrency[acct.Currency][f.rng.IntN(len(f.world.ByCurrency[acct.Currency]))]
	id := newUUID(f.rng)
	subject := "wallet.requests." + acct.ID.String() + "." + id.String()
	valid := func(fields string) []byte {
		return []byte(fmt.Sprintf(`{"v":1,"kind":"withdrawal","id":%q,"account_id":%q%s}`, id, acct.ID, fields))
	}
	p := poisonMsg{subject: subject, msgID: "poison-" + id.String()}
	k := f.rng.IntN(16)
	if f.only >= 0 {
		k = f.only
	}
	switch k {
	case 0:
		p.kind, p.reasons = "random bytes", []string{"malformed_json"}
		p.data = make([]byte, 1+f.rng.IntN(300))
		for i := range p.data {
			p.data[i] = byte(f.rng.IntN(256))
		}
		p.data[0] = 0xff // never a JSON object's first byte
	case 1:
		p.kind, p.reasons, p.data = "truncated json", []string{"malformed_json"}, []byte(`{"v":1,"kind":"transfer","id":`)
	case 2:
		p.kind, p.reasons, p.data = "empty", []string{"malformed_json"}, nil
	case 3:
		p.kind, p.reasons = "oversized", []string{"payload_too_large"}
		p.data = valid(`,"amount":"1","currency":"USD","pad":"` + strings.Repeat("x", 70<<10+f.rng.IntN(100<<10)) + `"`)
	case 4:
		p.kind, p.reasons, p.data = "version 2", []string{"unsupported_version"},
			[]byte(fmt.Sprintf(`{"v":2,"kind":"withdrawal","id":%q,"account_id":%q,"amount":"1","currency":"USD"}`, id, acct.ID))
	case 5:
		p.kind, p.reasons, p.data = "no version", []string{"missing_version"},
			[]byte(fmt.Sprintf(`{"kind":"withdrawal","id":%q,"account_id":%q,"amount":"1","currency":"USD"}`, id, acct.ID))
	case 6:
		p.kind, p.reasons, p.data = "amount NaN", []string{"invalid_amount"}, valid(`,"amount":"NaN","currency":"USD"`)
	case 7:
		p.kind, p.reasons, p.data = "amount 1e400 number", []string{"invalid_amount"}, valid(`,"amount":1e400,"currency":"USD"`)
	case 8:
		p.kind, p.reasons, p.data = "amount 40 digits", []string{"invalid_amount"}, valid(`,"amount":"`+strings.Repeat("9", 40)+`","currency":"USD"`)
	case 9:
		p.kind, p.reasons, p.data = "unknown field", []string{"unknown_field"}, valid(`,"amount":"1","currency":"USD","memo":"x"`)
	case 10:
		p.kind, p.reasons, p.data = "duplicate field", []string{"duplicate_field"}, valid(`,"amount":"1","amount":"1000000","currency":"USD"`)
	case 11:
		p.kind, p.reasons, p.data = "invalid kind", []string{"invalid_kind"},
			[]byte(fmt.Sprintf(`{"v":1,"kind":"mint","id":%q,"account_id":%q,"amount":"1","currency":"USD"}`, id, acct.ID))
	case 12:
		p.kind, p.reasons, p.data = "subject names another id", []string{"subject_mismatch"},
			[]byte(fmt.Sprintf(`{"v":1,"kind":"withdrawal","id":%q,"account_id":%q,"amount":"1","currency":%q}`, newUUID(f.rng), acct.ID, acct.Currency))
	case 13:
		// A withdrawal from another account filed under this one's
		// partition: it must not be applied.
		p.kind, p.reasons, p.data = "subject names another account", []string{"subject_mismatch"},
			[]byte(fmt.Sprintf(`{"v":1,"kind":"withdrawal","id":%q,"account_id":%q,"amount":"1","currency":%q}`, id, other.ID, acct.Currency))
		if other.ID == acct.ID {
			p.data = []byte(fmt.Sprintf(`{"v":1,"kind":"withdrawal","id":%q,"account_id":%q,"amount":"1","currency":%q}`, id, newUUID(f.rng), acct.Currency))
		}
	case 14:
		p.kind, p.reasons, p.data = "invalid account id", []string{"invalid_account_id", "subject_mismatch"},
			[]byte(fmt.Sprintf(`{"v":1,"kind":"withdrawal","id":%q,"account_id":"a.b.>","amount":"1","currency":"USD"}`, id))
	default:
		p.kind, p.reasons, p.data = "control characters in currency", []string{"invalid_currency"}, valid(`,"amount":"1","currency":"US\u0007D"`)
	}
	return p
}

// deadLetter is a message of the dead-letter stream.
type deadLetter struct {
	reason string
	detail string
	data   []byte
	size   string // Wallet-Original-Size
	sha256 string // Wallet-Original-Sha256
}

// summarizes reports whether dl stands for body: a prefix of it of at most
// 4 KiB (all of it when shorter) and its size and SHA-256.
func (dl deadLetter) summarizes(body []byte) bool {
	sum := sha256.Sum256(body)
	prefix := body[:min(len(body), 4<<10)]
	return string(dl.data) == string(prefix) && dl.size == strconv.Itoa(len(body)) && dl.sha256 == hex.EncodeToString(sum[:])
}

// readDeadLetters reads the dead-letter stream by original message id.
func readDeadLetters(ctx context.Context, js jetstream.JetStream) (map[string][]deadLetter, error) {
	out := map[string][]deadLetter{}
	err := readStream(ctx, js, "WALLET_DEADLETTER", func(m jetstream.Msg) {
		h := m.Headers()
		key := h.Get("Wallet-Original-Msg-Id")
		out[key] = append(out[key], deadLetter{reason: h.Get("Wallet-Dead-Letter-Reason"), detail: h.Get("Wallet-Dead-Letter-Detail"), data: m.Data(),
			size: h.Get("Wallet-Original-Size"), sha256: h.Get("Wallet-Original-Sha256")})
	})
	return out, err
}

// TestPoisonNATS publishes poison straight to the requests subjects at
// volume, into the same partitions as valid traffic: the valid requests
// are all applied, every poison message is dead-lettered once with its
// reason and its original bytes (a 4 KiB prefix of larger ones, with their
// size and SHA-256), and none is applied.
func TestPoisonNATS(t *testing.T) {
	// Runs beside the other attack tests: each has its own cluster and
	// database, and all spend most of their time waiting.
	t.Parallel()
	if long() {
		testPoison(t, "poison", 20000, 200, -1)
		return
	}
	testPoison(t, "poison", 2000, 100, -1)
}

// TestPoisonLargePayloads floods the partitions with 70-170 KiB poison
// payloads while valid requests from the same senders keep coming: large
// deliveries must not make a worker lose a delivery (a client-side slow
// consumer) and apply a sender's later requests before an earlier one.
func TestPoisonLargePayloads(t *testing.T) {
	if !long() {
		t.Skipf("large payload flood runs in the long suite (%s=1)", envLong)
	}
	t.Parallel()
	testPoison(t, "poison-large", 3000, 150, 3)
}

// testPoison runs valid traffic and poisonCount poison messages (of one
// kind when only >= 0) and checks the books and the dead letters.
func testPoison(t *testing.T, name string, poisonCount, validRate, only int) {
	s := seed(t)
	rng := rand.New(rand.NewPCG(s, 0x9015))
	c := startCluster(t, clusterConfig{Gateways: 1, Workers: 2})
	r := newRun(t, c, rng, 4)
	budget := 5 * time.Minute
	if long() {
		budget = 15 * time.Minute
	}
	ctx, cancel := context.WithTimeout(t.Context(), budget)
	defer cancel()

	model := newLoadModel(rand.New(rand.NewPCG(rng.Uint64(), 2)), r.world, 0, 0, 0)
	model.natsShare = 1
	r.submitAll(ctx, model.fundingOps())
	// Requests that decode but break a rule get a rejection, not a dead
	// letter.
	acct := r.world.ByCurrency["USD"][0]
	for _, o := range []*op{
		{ID: newUUID(rng), Kind: transfer.KindWithdrawal, From: acct.ID, Amount: "-5", Currency: "USD", Route: viaNATS,
			Reasons: []transfer.Code{transfer.CodeTransferAmountMustBePositive}},
		{ID: newUUID(rng), Kind: transfer.KindTransfer, From: acct.ID, To: acct.ID, Amount: "5", Currency: "USD", Route: viaNATS,
			Reasons: []transfer.Code{transfer.CodeAccountsMustBeDifferent}},
		{ID: newUUID(rng), Kind: transfer.KindWithdrawal, From: acct.ID, Amount: "0.001", Currency: "USD", Route: viaNATS,
			Reasons: []transfer.Code{transfer.CodeTransferAmountMustBePositive}},
	} {
		r.sub.submit(ctx, o)
	}

	validCtx, stopValid := context.WithCancel(ctx)
	waitValid := r.load(validCtx, ctx, model, validRate, 8)

	f := &poisonFactory{rng: rand.New(rand.NewPCG(rng.Uint64(), 3)), world: r.world, only: only}
	_, js := c.nats.connect(t, "poison", c.nats.credential(natsbus.RoleProducer))
	var (
		mu       sync.Mutex
		stored   = map[string]poisonMsg{}
		refused  = map[string]int{}
		pending  []jetstream.PubAckFuture
		messages []poisonMsg
	)
	for i := 0; i < poisonCount; i++ {
		p := f.next()
		m := nats.NewMsg(p.subject)
		m.Data = p.data
		m.Header.Set("Nats-Msg-Id", p.msgID)
		fut, err := js.PublishMsgAsync(m)
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, fut)
		messages = append(messages, p)
		if len(pending) == 256 || i == poisonCount-1 {
			for j, fut := range pending {
				p := messages[len(messages)-len(pending)+j]
				select {
				case <-fut.Ok():
					mu.Lock()
					stored[p.msgID] = p
					mu.Unlock()
				case err := <-fut.Err():
					refused[err.Error()]++
				case <-ctx.Done():
					t.Fatal(ctx.Err())
				}
			}
			pending = pending[:0]
			// Spread the poison over the valid traffic.
			if !sleepCtx(ctx, 100*time.Millisecond) {
				t.Fatal(ctx.Err())
			}
		}
	}
	// Valid traffic goes on while the workers chew through the poison.
	if !sleepCtx(ctx, 2*time.Second) {
		t.Fatal(ctx.Err())
	}
	stopValid()
	waitValid()
	t.Logf("poison: %d published, %d stored, refused by the stream: %v", poisonCount, len(stored), refused)

	qctx, qcancel := context.WithTimeout(ctx, 3*time.Minute)
	defer qcancel()
	if err := r.quiesce(qctx); err != nil {
		t.Errorf("quiesce: %v", err)
	}
	conn, err := c.db(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rep, err := checkBook(ctx, conn, r.js, r.rec, checkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dls, err := readDeadLetters(ctx, r.js)
	if err != nil {
		t.Fatal(err)
	}
	byReason := map[string]int{}
	for id, p := range stored {
		list := dls[id]
		if len(list) != 1 {
			rep.Violations.add("dead-letter", "%s (%s): %d dead letters, want 1", id, p.kind, len(list))
			continue
		}
		dl := list[0]
		byReason[dl.reason]++
		ok := false
		for _, want := range p.reasons {
			ok = ok || dl.reason == want
		}
		if !ok {
			rep.Violations.add("dead-letter", "%s (%s): reason %q (%s), want one of %v", id, p.kind, dl.reason, dl.detail, p.reasons)
		}
		if !dl.summarizes(p.data) {
			rep.Violations.add("dead-letter", "%s (%s): dead letter does not carry the original bytes' prefix, size and SHA-256", id, p.kind)
		}
	}
	for id := range dls {
		if _, ok := stored[id]; !ok && !strings.HasPrefix(id, "poison-") {
			rep.Violations.add("dead-letter", "dead letter for %q, which was no poison", id)
		}
	}
	// No poison id was applied: the ids of the poison bodies are not
	// among the transfers, which the phantom check already covers, and
	// the subject ids must not be there either.
	var ids []uuid.UUID
	for id := range stored {
		u, err := uuid.Parse(strings.TrimPrefix(id, "poison-"))
		if err == nil {
			ids = append(ids, u)
		}
	}
	var applied int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM transfers WHERE id = ANY($1)`, ids).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied > 0 {
		rep.Violations.add(checkPhantom, "%d poison messages were decided as requests", applied)
	}
	for _, crash := range c.crashes() {
		rep.Violations.add(checkCrash, "%s", crash)
	}
	t.Logf("dead letters by reason: %v", byReason)
	t.Logf("valid traffic in the same partitions:\n%s", rep)
	if rep.Violations.total() != 0 {
		t.Errorf("violations (seed %d):%s", s, rep.Violations)
	}
	if rep.Applied == 0 || len(stored) == 0 {
		t.Errorf("nothing happened: %d applied, %d poison stored", rep.Applied, len(stored))
	}
	writeReport(t, name, map[string]any{"seed": s, "poison_published": poisonCount, "poison_stored": len(stored),
		"dead_letters_by_reason": byReason, "valid_accepted": rep.Accepted, "valid_applied": rep.Applied})
}
