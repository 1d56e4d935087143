package fault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// jsMaxHeader is the largest header block JetStream stores.
const jsMaxHeader = 65535

// wireHeaderLen is the size of h as a client encodes it: a version line,
// one "key: value" line per value, and an empty line.
func wireHeaderLen(h nats.Header) int {
	n := len("NATS/1.0\r\n") + len("\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return n
}

// limitMsg is one message at a size limit.
type limitMsg struct {
	name string
	msg  *nats.Msg
	// request, when not nil, is a valid request carried by msg: it must be
	// applied whatever its headers.
	request *uuid.UUID
}

// limitMsgs builds, for one account's request subject, messages whose
// total size (headers and body) is exactly at and one byte under each
// limit: the server's max_payload, the requests stream's MaxMsgSize, and
// JetStream's 64 KiB header block.
func limitMsgs(acct account, maxPayload, maxMsgSize int) []limitMsg {
	var out []limitMsg
	subject := func(id uuid.UUID) string { return "wallet.requests." + acct.ID.String() + "." + id.String() }
	for _, lim := range []struct {
		name string
		size int
	}{{"max_payload", maxPayload}, {"max_payload-1", maxPayload - 1}, {"MaxMsgSize", maxMsgSize}, {"MaxMsgSize-1", maxMsgSize - 1}} {
		id := uuid.New()
		m := nats.NewMsg(subject(id))
		m.Header.Set("Nats-Msg-Id", "limit-"+id.String())
		m.Header.Set("Wallet-Trace-Id", "limit-"+lim.name)
		m.Data = bytes.Repeat([]byte{'{'}, lim.size-wireHeaderLen(m.Header))
		out = append(out, limitMsg{name: "body at " + lim.name, msg: m})
	}
	for _, size := range []int{jsMaxHeader, jsMaxHeader - 1} {
		// A valid request whose trace id fills the header block ...
		id := uuid.New()
		m := nats.NewMsg(subject(id))
		m.Data = []byte(fmt.Sprintf(`{"v":1,"kind":"deposit","id":%q,"account_id":%q,"amount":"1","currency":%q}`, id, acct.ID, acct.Currency))
		m.Header.Set("Wallet-Trace-Id", "")
		m.Header.Set("Wallet-Trace-Id", strings.Repeat("t", size-wireHeaderLen(m.Header)))
		out = append(out, limitMsg{name: "valid request, header block " + strconv.Itoa(size), msg: m, request: &id})
		// ... and poison with the same header.
		pid := uuid.New()
		p := nats.NewMsg(subject(pid))
		p.Data = []byte(`{"v":1,"kind":`)
		p.Header.Set("Nats-Msg-Id", "limit-"+pid.String())
		p.Header.Set("Wallet-Trace-Id", "")
		p.Header.Set("Wallet-Trace-Id", strings.Repeat("t", size-wireHeaderLen(p.Header)))
		out = append(out, limitMsg{name: "poison, header block " + strconv.Itoa(size), msg: p})
	}
	return out
}

// TestPoisonAtLimits publishes, on every partition's request subjects and
// on the results and dead-letter subjects, messages at and just under
// every size limit: the server's max_payload, the requests stream's
// MaxMsgSize and JetStream's 64 KiB header block. Whatever a stream
// accepts, every partition keeps serving: a valid request published right
// after each of them is applied, every stored poison message is
// dead-lettered with a bounded summary of its body, and nothing on the
// results or dead-letter subjects stops anything.
func TestPoisonAtLimits(t *testing.T) {
	t.Parallel()
	s := seed(t)
	rng := rand.New(rand.NewPCG(s, 0x1141))
	c := startCluster(t, clusterConfig{Gateways: 1, Workers: 2})
	r := newRun(t, c, rng, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	// What a producer may publish it publishes with the producer role;
	// the forged outcome and dead letter below need a client that got
	// round the permissions, played by the operator's user, which also
	// reads the dead letters.
	nc, js := c.nats.connect(t, "limits", c.nats.credential(natsbus.RoleProducer))
	_, adminJS := c.nats.connect(t, "limits-admin", c.nats.admin)
	requests, err := js.Stream(ctx, "WALLET_REQUESTS")
	if err != nil {
		t.Fatal(err)
	}
	maxPayload := int(nc.MaxPayload())
	maxMsgSize := int(requests.CachedInfo().Config.MaxMsgSize)
	t.Logf("server max_payload %d, requests stream MaxMsgSize %d", maxPayload, maxMsgSize)

	var valid []uuid.UUID
	storedPoison := map[string][]byte{} // by Nats-Msg-Id
	refused := map[string]int{}
	publishValid := func(acct account) {
		id := uuid.New()
		m := nats.NewMsg("wallet.requests." + acct.ID.String() + "." + id.String())
		m.Data = []byte(fmt.Sprintf(`{"v":1,"kind":"deposit","id":%q,"account_id":%q,"amount":"1","currency":%q}`, id, acct.ID, acct.Currency))
		m.Header.Set("Nats-Msg-Id", id.String())
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatalf("valid request after the limits: %v", err)
		}
		valid = append(valid, id)
	}
	for p, acct := range r.world.Probes {
		for _, lm := range limitMsgs(acct, maxPayload, maxMsgSize) {
			_, err := js.PublishMsg(ctx, lm.msg)
			switch {
			case err == nil && lm.request != nil:
				valid = append(valid, *lm.request)
			case err == nil:
				storedPoison[lm.msg.Header.Get("Nats-Msg-Id")] = lm.msg.Data
			case lm.request != nil:
				t.Fatalf("partition %d, %s: a valid request was refused: %v", p, lm.name, err)
			default:
				refused[lm.name+": "+err.Error()]++
			}
			publishValid(acct)
		}
	}
	// The other streams a client can reach, at the server's limit: a
	// forged outcome of an id that is then requested, and a fake dead
	// letter.
	forgedID := uuid.New()
	for _, subject := range []string{"wallet.results." + forgedID.String(), "wallet.deadletter.malformed_json.1"} {
		m := nats.NewMsg(subject)
		m.Data = bytes.Repeat([]byte{'x'}, maxPayload-wireHeaderLen(m.Header))
		if _, err := adminJS.PublishMsg(ctx, m); err != nil {
			refused[subject+": "+err.Error()]++
		}
	}
	acct := r.world.Probes[0]
	m := nats.NewMsg("wallet.requests." + acct.ID.String() + "." + forgedID.String())
	m.Data = []byte(fmt.Sprintf(`{"v":1,"kind":"deposit","id":%q,"account_id":%q,"amount":"1","currency":%q}`, forgedID, acct.ID, acct.Currency))
	m.Header.Set("Nats-Msg-Id", forgedID.String())
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	valid = append(valid, forgedID)
	for _, acct := range r.world.Probes {
		publishValid(acct)
	}
	t.Logf("%d valid requests, %d poison messages stored, refused at publish: %v", len(valid), len(storedPoison), refused)

	if err := r.waitDecided(ctx, valid); err != nil {
		t.Fatalf("a partition stopped serving: %v", err)
	}
	var notApplied int
	if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM transfers WHERE id = ANY($1) AND status <> $2`,
		valid, string(transfer.StatusApplied)).Scan(&notApplied); err != nil {
		t.Fatal(err)
	}
	if notApplied != 0 {
		t.Fatalf("%d valid requests not applied", notApplied)
	}
	if len(storedPoison) == 0 {
		t.Fatal("no message at the limits was stored")
	}

	// Every stored poison message has one dead letter: a bounded prefix
	// of its body, with its size and SHA-256.
	deadline := time.Now().Add(time.Minute)
	for {
		missing := 0
		found := map[string]jetstream.Msg{}
		if err := readStream(ctx, adminJS, "WALLET_DEADLETTER", func(m jetstream.Msg) {
			found[m.Headers().Get("Wallet-Original-Msg-Id")] = m
		}); err != nil {
			t.Fatal(err)
		}
		for id, body := range storedPoison {
			dl, ok := found[id]
			if !ok {
				missing++
				continue
			}
			sum := sha256.Sum256(body)
			h := dl.Headers()
			if h.Get("Wallet-Original-Size") != strconv.Itoa(len(body)) || h.Get("Wallet-Original-Sha256") != hex.EncodeToString(sum[:]) {
				t.Errorf("%s: dead letter summary size %q sha256 %q", id, h.Get("Wallet-Original-Size"), h.Get("Wallet-Original-Sha256"))
			}
			if len(dl.Data()) > 4<<10 || !bytes.HasPrefix(body, dl.Data()) {
				t.Errorf("%s: dead letter carries %d bytes, want a prefix of at most 4 KiB", id, len(dl.Data()))
			}
			if len(h.Get("Wallet-Trace-Id")) > 128 {
				t.Errorf("%s: dead letter copies a %d-byte trace id", id, len(h.Get("Wallet-Trace-Id")))
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d stored poison messages have no dead letter", missing, len(storedPoison))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, crash := range c.crashes() {
		t.Errorf("%s", crash)
	}
}
