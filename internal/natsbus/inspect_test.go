package natsbus_test

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/natsbus"
)

func TestPartitionOwner(t *testing.T) {
	if got := natsbus.PartitionOwner(nil, 3); got != "" {
		t.Errorf("no members: owner %q, want none", got)
	}
	view := []string{"a", "b", "c"}
	counts := map[string]int{}
	for p := 0; p < 32; p++ {
		counts[natsbus.PartitionOwner(view, p)]++
	}
	// 32 partitions over 3 members: 11, 11, 10, every member serving.
	if counts["a"] != 11 || counts["b"] != 11 || counts["c"] != 10 {
		t.Errorf("partitions per member %v, want a:11 b:11 c:10", counts)
	}
}

// TestReadPipeline reads a running service's state with the gateway's
// role, which must be enough for every read and refused nothing.
func TestReadPipeline(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	w := newWorld(t)
	gw := connectProbe(t, w.srv, natsbus.RoleGateway)

	// A worker pulls the request's partition, which pins it.
	part := natsbus.PartitionOf(w.request.PartitionAccount(), 4)
	cons, err := w.worker.js.Consumer(ctx, natsbus.RequestsStream, natsbus.ConsumerName(part))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchPriorityGroup(natsbus.PriorityGroup), jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var delivered int
	for range batch.Messages() {
		delivered++ // left unacked: the request is still pending
	}
	if delivered != 1 {
		t.Fatalf("fetched %d messages, want the stored request", delivered)
	}

	got, err := natsbus.ReadPipeline(ctx, gw.js)
	if err != nil {
		t.Fatal(err)
	}
	if got.Accepted != 1 || got.Stored != 1 {
		t.Errorf("accepted %d, stored %d; want 1 and 1", got.Accepted, got.Stored)
	}
	if len(got.Members) != 1 || got.Members[0].ID != "worker-1" || time.Since(got.Members[0].LastSeen) > time.Minute {
		t.Errorf("members %+v, want worker-1 seen just now", got.Members)
	}
	if len(got.Partitions) != 4 {
		t.Fatalf("%d partitions, want 4", len(got.Partitions))
	}
	for _, p := range got.Partitions {
		if !p.Exists || p.Owner != "worker-1" {
			t.Errorf("partition %d: exists %v, owner %q; want a consumer served by worker-1", p.Partition, p.Exists, p.Owner)
		}
		if p.Partition != part {
			if p.Pending() != 0 || p.Pinned || !p.OldestPendingAt.IsZero() {
				t.Errorf("idle partition %d: %+v", p.Partition, p)
			}
			continue
		}
		if p.AckPending != 1 || p.Waiting != 0 || p.Pending() != 1 {
			t.Errorf("partition %d: waiting %d, ack pending %d; want the one delivered request", p.Partition, p.Waiting, p.AckPending)
		}
		if !p.Pinned || p.PinnedAt.IsZero() {
			t.Errorf("partition %d is not reported pinned after a priority-group pull", p.Partition)
		}
		if age := time.Since(p.OldestPendingAt); p.OldestPendingAt.IsZero() || age < 0 || age > time.Minute {
			t.Errorf("partition %d: oldest pending at %v", p.Partition, p.OldestPendingAt)
		}
	}
	dl := got.DeadLetters
	if dl.Total != 1 || dl.Partial || dl.ByReason[natsbus.ReasonMalformedJSON] != 1 || dl.Last.IsZero() {
		t.Errorf("dead letters %+v, want one malformed_json", dl)
	}
	noDenials(t, gw)
}

// TestDeadLetters lists and reads dead letters, as the worker writes them,
// with the gateway's role.
func TestDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	w := newWorld(t) // its dead letter, sequence 1, has no headers
	gw := connectProbe(t, w.srv, natsbus.RoleGateway)

	body := bytes.Repeat([]byte("x"), natsbus.DeadLetterBodyLimit)
	for i := 2; i <= 6; i++ {
		m := nats.NewMsg(natsbus.DeadLetterPrefix + "unknown_field." + strconv.Itoa(100+i))
		m.Data = body
		m.Header.Set(natsbus.HeaderDLReason, "unknown_field")
		m.Header.Set(natsbus.HeaderDLDetail, "unknown field \"x\" for kind transfer")
		m.Header.Set(natsbus.HeaderDLOriginalSubject, "wallet.requests.1.a.b")
		m.Header.Set(natsbus.HeaderDLOriginalSeq, strconv.Itoa(100+i))
		m.Header.Set(natsbus.HeaderDLAcceptedAt, "2026-01-02T03:04:05.5Z")
		m.Header.Set(natsbus.HeaderDLOriginalSize, "10000")
		m.Header.Set(natsbus.HeaderDLOriginalSHA256, "ab12")
		m.Header.Set(natsbus.HeaderTraceID, "req-"+strconv.Itoa(i))
		if _, err := w.worker.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	page, next, err := natsbus.ListDeadLetters(ctx, gw.js, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 4 || page[0].Seq != 6 || page[3].Seq != 3 || next != 3 {
		t.Fatalf("first page: %d letters from %v, next %d; want 6..3 and next 3", len(page), seqs(page), next)
	}
	first := page[0]
	if first.Reason != "unknown_field" || first.OriginalSubject != "wallet.requests.1.a.b" || first.OriginalSeq != 106 ||
		first.OriginalSize != 10000 || !first.Truncated || first.TraceID != "req-6" || first.Body != nil ||
		!first.AcceptedAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 5e8, time.UTC)) || first.StoredAt.IsZero() {
		t.Errorf("listed dead letter %+v", first)
	}
	rest, next, err := natsbus.ListDeadLetters(ctx, gw.js, next, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 2 || rest[0].Seq != 2 || rest[1].Seq != 1 || next != 0 {
		t.Fatalf("second page: %v, next %d; want 2, 1 and no next", seqs(rest), next)
	}
	// The header-less one still tells its reason and sequence by subject.
	if rest[1].Reason != natsbus.ReasonMalformedJSON || rest[1].OriginalSeq != 1 || rest[1].OriginalSize != len("a poison body") || rest[1].Truncated {
		t.Errorf("header-less dead letter %+v", rest[1])
	}

	one, err := natsbus.GetDeadLetter(ctx, gw.js, 4)
	if err != nil {
		t.Fatal(err)
	}
	if one.Seq != 4 || !bytes.Equal(one.Body, body) || one.Detail != "unknown field \"x\" for kind transfer" {
		t.Errorf("dead letter 4: seq %d, %d body bytes, detail %q", one.Seq, len(one.Body), one.Detail)
	}
	for _, seq := range []uint64{0, 7, 1 << 40} {
		if _, err := natsbus.GetDeadLetter(ctx, gw.js, seq); !errors.Is(err, natsbus.ErrDeadLetterNotFound) {
			t.Errorf("dead letter %d: %v, want ErrDeadLetterNotFound", seq, err)
		}
	}
	noDenials(t, gw)
}

func seqs(dls []natsbus.DeadLetter) []uint64 {
	out := make([]uint64, len(dls))
	for i, d := range dls {
		out[i] = d.Seq
	}
	return out
}

// noDenials fails the test if the server refused p anything.
func noDenials(t *testing.T, p *probe) {
	t.Helper()
	select {
	case text := <-p.denied:
		t.Errorf("the server refused something: %s", text)
	default:
	}
}
