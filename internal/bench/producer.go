package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// NATS publishing modes of --via nats.
const (
	// ModeAtomic groups requests into JetStream atomic batch publishes: the
	// server stores a batch with one sync, where single publishes sync each
	// message.
	ModeAtomic = "atomic"
	// ModeAsync publishes each request asynchronously, a batch-sized window
	// per sender in flight.
	ModeAsync = "async"
	// ModeSingle publishes one request at a time and waits for its PubAck,
	// as the gateway does for each HTTP request.
	ModeSingle = "single"
)

// Atomic batch headers (ADR-50); the server refuses batches over 1000
// messages and more than 50 open batches per stream.
const (
	headerBatchID     = "Nats-Batch-Id"
	headerBatchSeq    = "Nats-Batch-Sequence"
	headerBatchCommit = "Nats-Batch-Commit"
	maxAtomicBatch    = 1000
	maxAtomicInflight = 50
)

// producer publishes requests straight into the requests stream.
type producer struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	mode   string
	batch  int
	linger time.Duration
}

// batchAck is the server's answer to an atomic batch commit.
type batchAck struct {
	Stream   string `json:"stream"`
	Sequence uint64 `json:"seq"`
	BatchID  string `json:"batch"`
	Count    int    `json:"count"`
	Error    *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// sender returns the sender of one producer lane: it gathers up to batch
// jobs (waiting at most linger for more once it has one), publishes them
// and marks each accepted when its acknowledgement arrives.
func (p *producer) sender(t *tracker, request func(i int) transfer.Request) sender {
	return func(ctx context.Context, jobs <-chan job) {
		size := p.batch
		if p.mode == ModeSingle {
			size = 1
		}
		group := make([]job, 0, size)
		msgs := make([]*nats.Msg, 0, size)
		linger := time.NewTimer(time.Hour)
		linger.Stop()
		for {
			group, msgs = group[:0], msgs[:0]
			var j job
			var ok bool
			select {
			case <-ctx.Done():
				return
			case j, ok = <-jobs:
				if !ok {
					return
				}
			}
			group = append(group, j)
			closed := false
			if len(group) < size {
				linger.Reset(p.linger)
			gather:
				for len(group) < size {
					select {
					case j, ok = <-jobs:
						if !ok {
							closed = true
							break gather
						}
						group = append(group, j)
					case <-linger.C:
						break gather
					}
				}
				if !linger.Stop() {
					select {
					case <-linger.C:
					default:
					}
				}
			}
			for _, j := range group {
				t.markDue(j.i, j.dueAt())
				m, err := natsbus.RequestMsg(request(j.i), "")
				if err != nil {
					t.markFailed("encode: " + err.Error())
					continue
				}
				msgs = append(msgs, m)
			}
			p.publish(ctx, t, group, msgs)
			if closed {
				return
			}
		}
	}
}

// publish sends one group in the producer's mode.
func (p *producer) publish(ctx context.Context, t *tracker, group []job, msgs []*nats.Msg) {
	switch p.mode {
	case ModeAtomic:
		err := p.publishAtomic(ctx, msgs)
		if err == nil {
			now := time.Now()
			for _, j := range group {
				t.markAccepted(j.i, now)
			}
			return
		}
		// A batch is all or nothing: after a failure (an id the stream
		// already holds, too many open batches) each message goes alone,
		// with its id, which the stream deduplicates.
		for k, m := range msgs {
			p.publishOne(ctx, t, group[k].i, stripBatchHeaders(m))
		}
	case ModeAsync:
		futures := make([]jetstream.PubAckFuture, len(msgs))
		for k, m := range msgs {
			f, err := p.js.PublishMsgAsync(m, jetstream.WithExpectStream(natsbus.RequestsStream))
			if err != nil {
				t.markFailed("publish: " + errorClass(err))
				continue
			}
			futures[k] = f
		}
		for k, f := range futures {
			if f == nil {
				continue
			}
			select {
			case <-f.Ok():
				t.markAccepted(group[k].i, time.Now())
			case err := <-f.Err():
				t.markFailed("publish: " + errorClass(err))
			case <-ctx.Done():
				t.markFailed("stopped (deadline)")
			}
		}
	default:
		for k, m := range msgs {
			p.publishOne(ctx, t, group[k].i, m)
		}
	}
}

func (p *producer) publishOne(ctx context.Context, t *tracker, i int, m *nats.Msg) {
	var err error
	for attempt := 1; attempt <= httpAttempts; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = p.js.PublishMsg(pctx, m, jetstream.WithExpectStream(natsbus.RequestsStream))
		cancel()
		if err == nil {
			t.markAccepted(i, time.Now())
			return
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
		}
	}
	t.markFailed("publish: " + errorClass(err))
}

// publishAtomic publishes msgs as one atomic batch: every message carries
// the batch id and its sequence, the last one commits and is the only one
// answered.
func (p *producer) publishAtomic(ctx context.Context, msgs []*nats.Msg) error {
	if len(msgs) == 0 {
		return nil
	}
	id := uuid.NewString()
	for k, m := range msgs {
		m.Header.Set(headerBatchID, id)
		m.Header.Set(headerBatchSeq, strconv.Itoa(k+1))
		if k < len(msgs)-1 {
			if err := p.nc.PublishMsg(m); err != nil {
				return err
			}
		}
	}
	last := msgs[len(msgs)-1]
	last.Header.Set(headerBatchCommit, "1")
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := p.nc.RequestMsgWithContext(rctx, last)
	if err != nil {
		return fmt.Errorf("batch commit: %w", err)
	}
	var ack batchAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return fmt.Errorf("batch commit: %w", err)
	}
	if ack.Error != nil {
		return fmt.Errorf("batch commit: %d %s", ack.Error.ErrCode, ack.Error.Description)
	}
	if ack.Count != len(msgs) {
		return errors.New("batch commit: count mismatch")
	}
	return nil
}

func stripBatchHeaders(m *nats.Msg) *nats.Msg {
	m.Header.Del(headerBatchID)
	m.Header.Del(headerBatchSeq)
	m.Header.Del(headerBatchCommit)
	return m
}
