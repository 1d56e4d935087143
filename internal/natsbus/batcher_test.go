package natsbus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
)

// batcherSetup starts a server with the wallet's streams and a batcher on
// a connection of its own.
func batcherSetup(t *testing.T, cfg natsbus.BatcherConfig) (*natstest.Server, *nats.Conn, jetstream.JetStream, *natsbus.Batcher) {
	t.Helper()
	srv := natstest.Start(t)
	nc, js := srv.Setup(t, natsbus.Config{Partitions: 4})
	b, err := natsbus.NewBatcher(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(runBatcher(t, b))
	return srv, nc, js, b
}

// runBatcher runs b until the returned stop is called; stop is the soft
// stop and waits for Run to return. It may be called more than once.
func runBatcher(t testing.TB, b *natsbus.Batcher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	return func() {
		cancel()
		once.Do(func() {
			if err := <-done; err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				t.Errorf("batcher: %v", err)
			}
		})
	}
}

// requestMsgs returns n request messages with distinct ids.
func requestMsgs(t *testing.T, n int) []*nats.Msg {
	t.Helper()
	msgs := make([]*nats.Msg, n)
	for i := range msgs {
		m, err := natsbus.RequestMsg(sampleTransfer(), "")
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = m
	}
	return msgs
}

type published struct {
	r   natsbus.PubResult
	err error
}

// publishAll publishes msgs concurrently, one goroutine each, and returns
// the answers in the order of msgs.
func publishAll(ctx context.Context, b *natsbus.Batcher, msgs []*nats.Msg) []published {
	out := make([]published, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := b.Publish(ctx, m)
			out[i] = published{r, err}
		}()
	}
	wg.Wait()
	return out
}

// stored reads the requests stream: message id by sequence, how many
// messages it holds and how many of them came in atomic batches.
func stored(t *testing.T, js jetstream.JetStream) (ids map[uint64]string, n uint64, batched int) {
	t.Helper()
	ctx := testCtx(t)
	s, err := js.Stream(ctx, natsbus.RequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids = make(map[uint64]string, info.State.Msgs)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get %d: %v", seq, err)
		}
		ids[seq] = m.Header.Get(natsbus.HeaderMsgID)
		if m.Header.Get(natsbus.HeaderBatchID) != "" {
			batched++
		}
	}
	return ids, info.State.Msgs, batched
}

// checkStoredOnce asserts that each message is stored exactly once, at the
// sequence its publisher was told, and returns how many messages the stream
// holds from atomic batches.
func checkStoredOnce(t *testing.T, js jetstream.JetStream, msgs []*nats.Msg, got []published) int {
	t.Helper()
	ids, n, batched := stored(t, js)
	count := make(map[string]int)
	for _, id := range ids {
		count[id]++
	}
	for i, m := range msgs {
		id := m.Header.Get(natsbus.HeaderMsgID)
		if got[i].err != nil {
			t.Fatalf("publish %s: %v", id, got[i].err)
		}
		if count[id] != 1 {
			t.Errorf("id %s stored %d times", id, count[id])
		}
		if ids[got[i].r.Seq] != id {
			t.Errorf("id %s told seq %d, which holds %q", id, got[i].r.Seq, ids[got[i].r.Seq])
		}
	}
	if int(n) != len(count) {
		t.Errorf("stream holds %d messages for %d ids", n, len(count))
	}
	return batched
}

func TestBatcherConcurrentPublishesStoredOnceEach(t *testing.T) {
	t.Parallel()
	_, _, js, b := batcherSetup(t, natsbus.BatcherConfig{MaxMessages: 50, Stream: natsbus.RequestsStream})
	msgs := requestMsgs(t, 400)
	got := publishAll(testCtx(t), b, msgs)
	seqs := make(map[uint64]bool)
	for i, p := range got {
		if p.err != nil {
			t.Fatal(p.err)
		}
		if p.r.Duplicate {
			t.Errorf("message %d reported duplicate", i)
		}
		if seqs[p.r.Seq] {
			t.Errorf("sequence %d told to two publishers", p.r.Seq)
		}
		seqs[p.r.Seq] = true
	}
	if batched := checkStoredOnce(t, js, msgs, got); batched == 0 {
		t.Error("no message was published in an atomic batch")
	}
	if b.Waiting() != 0 {
		t.Errorf("waiting = %d after every publish returned", b.Waiting())
	}
	// The caller's message is left as it was.
	if msgs[0].Header.Get(natsbus.HeaderBatchID) != "" {
		t.Error("publish set batch headers on the caller's message")
	}
}

// oneBatch is a config under which the next n publishes form one batch:
// the batcher waits (up to an hour) until it holds n, and batches any
// group of two or more.
func oneBatch(n int) natsbus.BatcherConfig {
	return natsbus.BatcherConfig{MaxMessages: n, MinMessages: 2, Linger: time.Hour}
}

func TestBatcherBatchWithStoredIDStoresTheRest(t *testing.T) {
	t.Parallel()
	_, nc, js, b := batcherSetup(t, oneBatch(20))
	ctx := testCtx(t)
	msgs := requestMsgs(t, 20)
	// Store one of them alone first: a batch of one is a single publish.
	single, err := natsbus.NewBatcher(nc, natsbus.BatcherConfig{MaxMessages: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer runBatcher(t, single)()
	first, err := single.Publish(ctx, msgs[7])
	if err != nil || first.Duplicate {
		t.Fatalf("first publish: %+v %v", first, err)
	}

	got := publishAll(ctx, b, msgs)
	for i, p := range got {
		if p.err != nil {
			t.Fatal(p.err)
		}
		if p.r.Duplicate != (i == 7) {
			t.Errorf("message %d: duplicate = %v", i, p.r.Duplicate)
		}
	}
	if got[7].r.Seq != first.Seq {
		t.Errorf("duplicate told seq %d, stored at %d", got[7].r.Seq, first.Seq)
	}
	// The refused batch is split in halves: only the quarter holding the
	// stored id goes one by one.
	if batched := checkStoredOnce(t, js, msgs, got); batched < 15 {
		t.Errorf("%d of 19 new messages stored in batches, want at least 15", batched)
	}
}

func TestBatcherBatchWithSameIDTwice(t *testing.T) {
	t.Parallel()
	_, _, js, b := batcherSetup(t, oneBatch(21))
	msgs := requestMsgs(t, 20)
	twice := append(msgs, msgs[3])
	got := publishAll(testCtx(t), b, twice)
	dups := 0
	for i, p := range got {
		if p.err != nil {
			t.Fatal(p.err)
		}
		if p.r.Duplicate {
			dups++
			if i != 3 && i != 20 {
				t.Errorf("message %d reported duplicate", i)
			}
		}
	}
	if dups != 1 {
		t.Errorf("%d duplicates reported, want 1", dups)
	}
	if got[3].r.Seq != got[20].r.Seq {
		t.Errorf("the two copies were told seqs %d and %d", got[3].r.Seq, got[20].r.Seq)
	}
	checkStoredOnce(t, js, msgs, got[:20])
}

func TestBatcherRefusedMessagesAreErrors(t *testing.T) {
	t.Parallel()
	_, _, js, b := batcherSetup(t, oneBatch(4))
	msgs := requestMsgs(t, 3)
	// A subject no stream listens on gets no answer at all; one the stream
	// takes but with a wrong expected stream is refused by JetStream.
	stray := nats.NewMsg("wallet.nowhere")
	stray.Data = []byte("{}")
	wrong := requestMsgs(t, 1)[0]
	wrong.Header.Set("Nats-Expected-Stream", "OTHER")
	got := publishAll(testCtx(t), b, append(msgs, stray))
	if got[3].err == nil {
		t.Fatalf("stray subject: stored as %+v", got[3].r)
	}
	if !errors.Is(got[3].err, jetstream.ErrNoStreamResponse) {
		t.Errorf("stray subject: %v, want no stream response", got[3].err)
	}
	checkStoredOnce(t, js, msgs, got[:3])

	more := requestMsgs(t, 3)
	got = publishAll(testCtx(t), b, append(more, wrong))
	var refusal *jetstream.APIError
	if !errors.As(got[3].err, &refusal) {
		t.Fatalf("wrong expected stream: %+v %v, want a JetStream API error", got[3].r, got[3].err)
	}
	for i := range 3 {
		if got[i].err != nil || got[i].r.Duplicate {
			t.Errorf("message %d beside a refused one: %+v %v", i, got[i].r, got[i].err)
		}
	}
}

func TestBatcherOutageIsAnError(t *testing.T) {
	t.Parallel()
	srv, _, js, b := batcherSetup(t, natsbus.BatcherConfig{Timeout: 500 * time.Millisecond})
	before := requestMsgs(t, 5)
	got := publishAll(testCtx(t), b, before)
	checkStoredOnce(t, js, before, got)

	srv.Shutdown()
	during := requestMsgs(t, 5)
	ctx, cancel := context.WithTimeout(testCtx(t), 3*time.Second)
	defer cancel()
	for i, p := range publishAll(ctx, b, during) {
		if p.err == nil {
			t.Errorf("publish %d during the outage reported stored: %+v", i, p.r)
		}
	}
	srv.Restart()
	// The batcher keeps working once the connection is back.
	after := requestMsgs(t, 5)
	deadline := time.Now().Add(20 * time.Second)
	for {
		got = publishAll(testCtx(t), b, after)
		if got[0].err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, p := range got {
		if p.err != nil {
			t.Fatalf("publish %d after restart: %v", i, p.err)
		}
	}
}

func TestBatcherStopDrains(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc, js := srv.Setup(t, natsbus.Config{Partitions: 4})
	b, err := natsbus.NewBatcher(nc, natsbus.BatcherConfig{MaxMessages: 1000, Linger: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	stop := runBatcher(t, b)
	t.Cleanup(stop)
	msgs := requestMsgs(t, 30)
	done := make(chan []published)
	go func() { done <- publishAll(testCtx(t), b, msgs) }()
	// Wait until every publish is queued; the batcher then lingers for
	// more, up to an hour, and only the stop can cut that short.
	deadline := time.Now().Add(20 * time.Second)
	for b.Waiting() != len(msgs) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting = %d, want %d", b.Waiting(), len(msgs))
		}
		time.Sleep(time.Millisecond)
	}
	stop()
	got := <-done
	checkStoredOnce(t, js, msgs, got)
	if _, err := b.Publish(testCtx(t), requestMsgs(t, 1)[0]); !errors.Is(err, natsbus.ErrBatcherClosed) {
		t.Errorf("publish after stop: %v, want ErrBatcherClosed", err)
	}
	if err := b.Run(testCtx(t)); err == nil {
		t.Error("a second Run was accepted")
	}
}

func TestBatcherEndsWithItsConnection(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	srv.Setup(t, natsbus.Config{Partitions: 4})
	nc, _ := srv.Connect(t)
	b, err := natsbus.NewBatcher(nc, natsbus.BatcherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(testCtx(t)) }()
	nc.Close()
	if err := <-done; !errors.Is(err, nats.ErrConnectionClosed) {
		t.Errorf("run on a closed connection: %v, want ErrConnectionClosed", err)
	}
	if _, err := b.Publish(testCtx(t), requestMsgs(t, 1)[0]); err == nil {
		t.Error("publish on a closed connection succeeded")
	}
}

func TestBatcherConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []natsbus.BatcherConfig{{MaxMessages: -1}, {MaxMessages: 1001}, {Timeout: -time.Second}, {MaxMessages: 10, MinMessages: 11}} {
		if _, err := natsbus.NewBatcher(nil, cfg); !errors.Is(err, natsbus.ErrInvalidConfig) {
			t.Errorf("%+v: %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

// TestBatcherLateAnswerIsUnknownOutcome: a publish whose answer comes after
// the caller's deadline, or after the batcher's own timeout, may be stored
// (here a responder stands in for a slow stream and acknowledges late). The
// error must say the outcome is unknown, so that no caller reports "not
// stored"; a refusal and a subject nobody serves are known not stored.
func TestBatcherLateAnswerIsUnknownOutcome(t *testing.T) {
	t.Parallel()
	srv, _, _, b := batcherSetup(t, natsbus.BatcherConfig{Timeout: 300 * time.Millisecond})
	responder, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(responder.Close)
	sub, err := responder.Subscribe("wallet.slow", func(m *nats.Msg) {
		time.Sleep(time.Second)
		_ = m.Respond([]byte(`{"stream":"SLOW","seq":1}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := responder.Flush(); err != nil {
		t.Fatal(err)
	}
	slow := nats.NewMsg("wallet.slow")
	slow.Data = []byte("{}")

	// The caller gives up first.
	ctx, cancel := context.WithTimeout(testCtx(t), 100*time.Millisecond)
	defer cancel()
	if _, err := b.Publish(ctx, slow); !errors.Is(err, natsbus.ErrOutcomeUnknown) {
		t.Errorf("caller's deadline passed: %v, want ErrOutcomeUnknown", err)
	}
	// The batcher gives up first.
	if _, err := b.Publish(testCtx(t), slow); !errors.Is(err, natsbus.ErrOutcomeUnknown) {
		t.Errorf("batcher timeout: %v, want ErrOutcomeUnknown", err)
	}

	stray := nats.NewMsg("wallet.nowhere")
	stray.Data = []byte("{}")
	if _, err := b.Publish(testCtx(t), stray); err == nil || errors.Is(err, natsbus.ErrOutcomeUnknown) {
		t.Errorf("no responders: %v, want a known failure", err)
	}
	wrong := requestMsgs(t, 1)[0]
	wrong.Header.Set("Nats-Expected-Stream", "OTHER")
	if _, err := b.Publish(testCtx(t), wrong); err == nil || errors.Is(err, natsbus.ErrOutcomeUnknown) {
		t.Errorf("refused: %v, want a known failure", err)
	}
}
