package worker_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// maxHeaderBlock is the largest header block JetStream stores.
const maxHeaderBlock = 65535

// headerLen is the size of h as the client encodes it on the wire: a
// version line, one "key: value" line per value, and an empty line.
func headerLen(h nats.Header) int {
	n := len("NATS/1.0\r\n") + len("\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return n
}

// fillHeader sets key on h to a value that makes h's block exactly size
// bytes.
func fillHeader(h nats.Header, key string, size int) {
	h.Set(key, "")
	h.Set(key, strings.Repeat("t", size-headerLen(h)))
}

// deadLetterFor waits for the dead letter of the request stored at seq.
func (e *env) deadLetterFor(seq uint64) *jetstream.RawStreamMsg {
	e.t.Helper()
	dl, err := e.js.Stream(ctx(e.t), natsbus.DeadLetterStream)
	if err != nil {
		e.t.Fatal(err)
	}
	var found *jetstream.RawStreamMsg
	eventually(e.t, "dead letter of sequence "+strconv.FormatUint(seq, 10), func() bool {
		m, err := dl.GetLastMsgForSubject(ctx(e.t), natsbus.DeadLetterPrefix+"*."+strconv.FormatUint(seq, 10))
		found = m
		return err == nil
	})
	return found
}

// checkDeadLetterSummary checks that a dead letter keeps a bounded prefix
// of body and names its size and SHA-256.
func checkDeadLetterSummary(t *testing.T, m *jetstream.RawStreamMsg, body []byte) {
	t.Helper()
	sum := sha256.Sum256(body)
	if got := m.Header.Get("Wallet-Original-Size"); got != strconv.Itoa(len(body)) {
		t.Errorf("dead letter size header %q, want %d", got, len(body))
	}
	if got := m.Header.Get("Wallet-Original-Sha256"); got != hex.EncodeToString(sum[:]) {
		t.Errorf("dead letter SHA-256 header %q", got)
	}
	if len(m.Data) > 4<<10 || !bytes.HasPrefix(body, m.Data) {
		t.Errorf("dead letter carries %d bytes, want a prefix of the body of at most 4 KiB", len(m.Data))
	}
}

// TestLargestMessagesLeavePartitionServing publishes, on one account's
// request subject, bodies that fill the server's max_payload and the
// requests stream's MaxMsgSize exactly and one byte under. Whatever the
// stream stores is dead-lettered, with a bounded summary of the body, and
// a valid request published right after each of them is applied.
func TestLargestMessagesLeavePartitionServing(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := e.startWorker(e.cfg, nil)
	a := e.account("USD")
	s, err := e.js.Stream(ctx(t), natsbus.RequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	maxMsgSize := int(s.CachedInfo().Config.MaxMsgSize)
	maxPayload := int(e.nc.MaxPayload())
	t.Logf("server max_payload %d, stream MaxMsgSize %d", maxPayload, maxMsgSize)
	if maxMsgSize <= 0 || maxMsgSize > maxPayload {
		t.Fatalf("stream MaxMsgSize %d: want a limit below the server's %d", maxMsgSize, maxPayload)
	}

	stored := 0
	for _, total := range []int{maxPayload, maxPayload - 1, maxMsgSize, maxMsgSize - 1} {
		id := uuid.New()
		m := nats.NewMsg(natsbus.RequestsPrefix + a.String() + "." + id.String())
		m.Header.Set(natsbus.HeaderMsgID, id.String())
		m.Data = bytes.Repeat([]byte("x"), total-headerLen(m.Header))
		ack, err := e.js.PublishMsg(ctx(t), m)
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			stored++
			checkDeadLetterSummary(t, e.deadLetterFor(ack.Sequence), m.Data)
		case total > maxMsgSize && errors.As(err, &apiErr) && apiErr.Code == 400:
			t.Logf("%d bytes refused by the stream: %v", total, err)
		default:
			t.Fatalf("publish of %d bytes: %v", total, err)
		}
		next := deposit(a, "1", "USD")
		e.publish(next)
		if r := e.waitResult(next.ID); r.Status != transfer.StatusApplied {
			t.Fatalf("request after a %d-byte message: %+v", total, r)
		}
	}
	if stored < 2 {
		t.Fatalf("only %d messages at the stream's limit were stored", stored)
	}
	if got := e.balance(a); !got.Equal(dec("4")) {
		t.Fatalf("balance %s, want 4", got)
	}
	if got := counterValue(t, w.reg, "wallet_worker_dead_letters_total"); got != float64(stored) {
		t.Fatalf("%v dead letters, want %d", got, stored)
	}
}

// TestTraceIDAtHeaderLimit sends a valid request and a poison message
// whose trace id fills JetStream's 64 KiB header limit. Neither may stall
// the partition (an outcome or dead letter copying the header would no
// longer fit); the trace id is not copied, and later requests are applied.
func TestTraceIDAtHeaderLimit(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.startWorker(e.cfg, nil)
	a := e.account("USD")

	for _, size := range []int{maxHeaderBlock, maxHeaderBlock - 1} {
		valid := deposit(a, "1", "USD")
		m := nats.NewMsg(natsbus.RequestSubject(a, valid.ID))
		m.Data = mustEncode(t, valid)
		fillHeader(m.Header, natsbus.HeaderTraceID, size)
		if _, err := e.js.PublishMsg(ctx(t), m); err != nil {
			t.Fatalf("publish a request with a %d-byte header: %v", size, err)
		}

		poisonID := uuid.New()
		p := nats.NewMsg(natsbus.RequestsPrefix + a.String() + "." + poisonID.String())
		p.Data = []byte(`{"v":1,`)
		p.Header.Set(natsbus.HeaderMsgID, poisonID.String())
		fillHeader(p.Header, natsbus.HeaderTraceID, size)
		pack, err := e.js.PublishMsg(ctx(t), p)
		if err != nil {
			t.Fatalf("publish poison with a %d-byte header: %v", size, err)
		}

		after := deposit(a, "1", "USD")
		e.publish(after)
		if r := e.waitResult(valid.ID); r.Status != transfer.StatusApplied {
			t.Fatalf("request with a %d-byte header: %+v", size, r)
		}
		if r := e.waitResult(after.ID); r.Status != transfer.StatusApplied {
			t.Fatalf("request after a %d-byte header: %+v", size, r)
		}
		res, err := e.js.Stream(ctx(t), natsbus.ResultsStream)
		if err != nil {
			t.Fatal(err)
		}
		out, err := res.GetLastMsgForSubject(ctx(t), natsbus.ResultSubject(valid.ID))
		if err != nil {
			t.Fatal(err)
		}
		if got := out.Header.Get(natsbus.HeaderTraceID); got != "" {
			t.Fatalf("outcome carries a %d-byte trace id", len(got))
		}
		dl := e.deadLetterFor(pack.Sequence)
		if got := dl.Header.Get(natsbus.HeaderTraceID); got != "" {
			t.Fatalf("dead letter carries a %d-byte trace id", len(got))
		}
	}
	if got := e.balance(a); !got.Equal(dec("4")) {
		t.Fatalf("balance %s, want 4", got)
	}
}

// TestTraceIDUnderItsOldName: a producer written before the header was
// renamed sends Wallet-Request-Id; its trace id still reaches the outcome,
// under the new name, and the new name wins when both are sent.
func TestTraceIDUnderItsOldName(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.startWorker(e.cfg, nil)
	a := e.account("USD")

	for _, c := range []struct {
		headers map[string]string
		want    string
	}{
		{map[string]string{natsbus.HeaderLegacyTraceID: "old-name"}, "old-name"},
		{map[string]string{natsbus.HeaderLegacyTraceID: "old-name", natsbus.HeaderTraceID: "new-name"}, "new-name"},
	} {
		req := deposit(a, "1", "USD")
		m := nats.NewMsg(natsbus.RequestSubject(a, req.ID))
		m.Data = mustEncode(t, req)
		m.Header.Set(natsbus.HeaderMsgID, req.ID.String())
		for k, v := range c.headers {
			m.Header.Set(k, v)
		}
		if _, err := e.js.PublishMsg(ctx(t), m); err != nil {
			t.Fatal(err)
		}
		if r := e.waitResult(req.ID); r.Status != transfer.StatusApplied {
			t.Fatalf("%v: %+v", c.headers, r)
		}
		res, err := e.js.Stream(ctx(t), natsbus.ResultsStream)
		if err != nil {
			t.Fatal(err)
		}
		out, err := res.GetLastMsgForSubject(ctx(t), natsbus.ResultSubject(req.ID))
		if err != nil {
			t.Fatal(err)
		}
		if got := out.Header.Get(natsbus.HeaderTraceID); got != c.want {
			t.Errorf("%v: outcome carries trace id %q, want %q", c.headers, got, c.want)
		}
	}
}
