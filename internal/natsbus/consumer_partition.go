package natsbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// partition pulls one partition's consumer while this worker owns it.
type partition struct {
	c    *Consumer
	p    int
	name string
	log  *zap.Logger

	// ctx ends when the partition is released: stop pulling, finish what
	// is in hand.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	lastPin string

	// lastDelivery is the consumer's delivery sequence of the newest
	// message this partition loop received (see deliveryGap).
	lastDelivery uint64

	// iter is the pull in progress (nil between pulls); restartPull stops
	// it so the loop pulls again, from a consumer that was recreated.
	iter jetstream.MessagesContext

	// held is what the partition has in hand and keeps alive (see
	// Consumer.progressLoop).
	held []jetstream.Msg
}

func newPartition(c *Consumer, p int) *partition {
	ctx, cancel := context.WithCancel(c.hard)
	return &partition{
		c: c, p: p, name: ConsumerName(p),
		log:    c.log.With(zap.Int("partition", p)),
		ctx:    ctx,
		cancel: cancel,
	}
}

// restartPull ends the current pull; the partition loop then pulls again
// from the partition's consumer as it now is. What it held unacked is
// delivered again and replays.
func (pt *partition) restartPull() {
	pt.mu.Lock()
	it := pt.iter
	pt.mu.Unlock()
	if it != nil {
		it.Stop()
	}
}

func (pt *partition) release()              { pt.cancel() }
func (pt *partition) releasing() bool       { return pt.ctx.Err() != nil }
func (pt *partition) hard() context.Context { return pt.c.hard }

// hold records msgs as in hand (nil: nothing), to be kept alive until
// they are settled or handed back.
func (pt *partition) hold(msgs []jetstream.Msg) {
	pt.mu.Lock()
	pt.held = msgs
	pt.mu.Unlock()
}

// inHand appends the messages in hand to dst.
func (pt *partition) inHand(dst []jetstream.Msg) []jetstream.Msg {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return append(dst, pt.held...)
}

// run pulls until released, then finishes the messages it received and
// hands the pin over.
func (pt *partition) run(takeover bool) {
	defer pt.unpin()
	if takeover {
		// The previous owner left the membership without handing over: free
		// its pin now instead of waiting out the pinned TTL.
		pt.unpin()
	}
	backoff := newBackoff(50*time.Millisecond, 2*time.Second)
	for pt.ctx.Err() == nil {
		err := pt.consume()
		if err == nil || pt.ctx.Err() != nil {
			return
		}
		if errors.Is(err, errAborted) {
			return
		}
		switch {
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			pt.log.Info("pulling again from the restored consumer")
		case errors.Is(err, errHandedBack):
			pt.log.Info("older messages stayed held elsewhere; handed the batch back, pulling again")
		default:
			pt.log.Warn("partition consumer failed, retrying", zap.Error(err))
		}
		if !backoff.wait(pt.ctx) {
			return
		}
	}
}

// consume runs one message iterator until the partition is released or the
// iterator fails.
func (pt *partition) consume() error {
	cons, err := pt.c.partitionConsumer(pt.ctx, pt.p)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", pt.name, err)
	}
	it, err := cons.Messages(
		jetstream.PullMaxMessages(pt.c.cfg.BatchSize),
		jetstream.PullPriorityGroup(PriorityGroup),
		jetstream.PullExpiry(pt.c.cfg.pullExpiry()),
	)
	if err != nil {
		return fmt.Errorf("messages %s: %w", pt.name, err)
	}
	pt.mu.Lock()
	pt.iter = it
	pt.mu.Unlock()
	defer func() {
		pt.mu.Lock()
		pt.iter = nil
		pt.held = nil
		pt.mu.Unlock()
		it.Stop()
	}()
	// Until proven otherwise, another worker may hold older messages of
	// this partition (it owned it before us).
	careful := true
	// A recreated consumer numbers its deliveries from 1 again.
	pt.lastDelivery = 0
	for {
		batch, iterErr := pt.collect(it)
		if len(batch) > 0 {
			if pt.pinChanged(batch) {
				careful = true
			}
			if pt.deliveryGap(batch) {
				careful = true
			}
			if careful {
				more, err := pt.awaitForeign(cons, it, batch)
				if err != nil {
					return err
				}
				batch = more
				careful = false
			}
			if err := pt.process(batch); err != nil {
				return err
			}
		}
		if pt.ctx.Err() != nil {
			if h := pt.c.cfg.BeforeFinish; h != nil {
				h(pt.p)
			}
			return pt.finish(it, careful)
		}
		if iterErr != nil {
			return iterErr
		}
	}
}

// collect waits for a first message, then takes what has already arrived
// behind it, up to BatchSize. Only a partition that is busy (a second
// message was there) waits up to Linger, counted from the first message,
// for the batch to fill. A lone message goes on at once: waiting Linger for
// a second one that does not come was most of a request's time from
// acceptance to answer at low load, when every client waits for its own
// outcome before it sends again (group commit, as the gateway's batcher
// does). It returns what it got when the partition is released or the
// iterator fails.
func (pt *partition) collect(it jetstream.MessagesContext) ([]jetstream.Msg, error) {
	var batch []jetstream.Msg
	for len(batch) == 0 {
		m, err := it.Next(jetstream.NextContext(pt.ctx))
		if err != nil {
			if pt.ctx.Err() != nil {
				return nil, nil
			}
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				continue // the library re-pulls by itself
			}
			return nil, err
		}
		batch = append(batch, m)
	}
	deadline := time.Now().Add(pt.c.cfg.Linger)
	wait := min(arrivedWait, pt.c.cfg.Linger)
	for len(batch) < pt.c.cfg.BatchSize {
		m, err := it.Next(jetstream.NextMaxWait(wait))
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoHeartbeat) {
				break
			}
			return batch, err
		}
		batch = append(batch, m)
		if wait = time.Until(deadline); wait <= 0 {
			break
		}
	}
	return batch, nil
}

// arrivedWait is how long collect looks for messages already on their way
// behind the first. The client library queues what the server pushed in a
// channel that Next can only be asked with a timeout; this one is long
// enough to find what is queued (microseconds) and short next to a batch's
// commit.
const arrivedWait = 100 * time.Microsecond

// pinChanged reports whether the batch came under a pin other than the last
// one seen: the partition was (re)acquired, and another worker may hold
// older messages.
func (pt *partition) pinChanged(batch []jetstream.Msg) bool {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	changed := false
	for _, m := range batch {
		if pin := m.Headers().Get("Nats-Pin-Id"); pin != "" && pin != pt.lastPin {
			pt.lastPin = pin
			changed = true
		}
	}
	return changed
}

// deliveryGap reports whether batch skips a delivery. The consumer numbers
// every delivery, redeliveries included, so a jump means a message went to
// another client or was dropped on its way to us (a slow consumer under
// load). Either way an older request of this partition may be outstanding,
// and applying batch before it would break per-account order.
func (pt *partition) deliveryGap(batch []jetstream.Msg) bool {
	gap := false
	for _, m := range batch {
		meta, err := m.Metadata()
		if err != nil {
			continue
		}
		d := meta.Sequence.Consumer
		if pt.lastDelivery != 0 && d != pt.lastDelivery+1 {
			gap = true
		}
		if d > pt.lastDelivery {
			pt.lastDelivery = d
		}
	}
	return gap
}

// uniqueSeqs counts the distinct stream messages in batch: a redelivered
// copy of a message already in hand is still one pending message.
func uniqueSeqs(batch []jetstream.Msg) int {
	seen := make(map[uint64]bool, len(batch))
	for _, m := range batch {
		if meta, err := m.Metadata(); err == nil {
			seen[meta.Sequence.Stream] = true
		}
	}
	return len(seen)
}

// awaitForeign holds batch until the consumer has no unacked message
// outside it. After a takeover the previous owner may still hold older
// messages (it crashed or paused); they come back to us when their ack
// wait ends, and applying ours first would break per-account order.
func (pt *partition) awaitForeign(cons jetstream.Consumer, it jetstream.MessagesContext, batch []jetstream.Msg) ([]jetstream.Msg, error) {
	pt.hold(batch)
	// Waiting must end: two workers that each believe they own the
	// partition (their membership views differ for a moment after an
	// outage) would otherwise each keep their part alive while waiting for
	// the other's. A released partition, or one that waited several ack
	// waits, hands its batch back (a nak: the pinned owner gets it again,
	// with everything older) and pulls again.
	giveUp := time.Now().Add(pt.c.cfg.handBackAfter())
	logged := false
	for {
		if pt.ctx.Err() != nil || time.Now().After(giveUp) {
			for _, m := range batch {
				_ = m.Nak()
			}
			pt.hold(nil)
			if pt.ctx.Err() != nil {
				return nil, errAborted
			}
			return nil, errHandedBack
		}
		info, err := cons.Info(pt.hard())
		if err != nil {
			if pt.hard().Err() != nil {
				return nil, errAborted
			}
			pt.log.Warn("consumer info", zap.Error(err))
		} else if info.NumAckPending <= uniqueSeqs(batch) {
			return batch, nil
		} else if !logged {
			pt.log.Info("waiting for older messages not in hand",
				zap.Int("held_elsewhere", info.NumAckPending-uniqueSeqs(batch)))
			logged = true
		}
		m, err := it.Next(jetstream.NextMaxWait(100 * time.Millisecond))
		switch {
		case err == nil:
			pt.deliveryGap([]jetstream.Msg{m}) // keeps lastDelivery current
			batch = append(batch, m)
			pt.hold(batch)
		case errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoHeartbeat):
		default:
			return nil, err
		}
		if pt.hard().Err() != nil {
			return nil, errAborted
		}
	}
}

// finish is the release path: stop pulling, apply whatever was already
// delivered to us (so nothing we received waits out an ack wait before the
// next owner may go on), then return; run's deferred unpin hands over.
//
// careful says the pull has not yet proven that no older message of the
// partition is held elsewhere (no batch since it started, or since the pin
// changed). Then, as after a delivery gap, what was delivered is handed
// back instead: applying it could put it before an older message that a
// previous owner still holds. A nak makes it available to the next owner
// at once, who waits for everything older before applying it.
func (pt *partition) finish(it jetstream.MessagesContext, careful bool) error {
	it.Drain()
	var rest []jetstream.Msg
	for {
		m, err := it.Next(jetstream.NextMaxWait(time.Second))
		if err != nil {
			break
		}
		rest = append(rest, m)
	}
	if len(rest) == 0 {
		return nil
	}
	pinChanged := pt.pinChanged(rest)
	gap := pt.deliveryGap(rest)
	if careful || pinChanged || gap {
		pt.log.Info("released before older messages were ruled out; handing messages to the next owner",
			zap.Int("messages", len(rest)), zap.Bool("delivery_gap", gap), zap.Bool("pin_changed", pinChanged))
		for _, m := range rest {
			_ = m.Nak()
		}
		return nil
	}
	return pt.process(rest)
}

// process decodes batch, dead-letters poison, and hands the rest to the
// handler; it returns when all of it is settled, or errAborted.
func (pt *partition) process(batch []jetstream.Msg) error {
	pt.hold(batch)
	defer pt.hold(nil)
	b := &Batch{Partition: pt.p, c: pt.c, msgs: batch}
	for _, m := range batch {
		meta, err := m.Metadata()
		if err != nil {
			// Not a JetStream delivery; nothing to ack.
			pt.log.Warn("message without metadata", zap.Error(err))
			continue
		}
		if meta.NumDelivered > 1 {
			pt.c.m.redeliveries.Inc()
		}
		d := &Delivery{msg: m, meta: meta, Seq: meta.Sequence.Stream, Subject: m.Subject(), TraceID: traceID(m)}
		req, err := DecodeStoredRequest(m.Subject(), m.Data())
		if err != nil {
			var derr *DecodeError
			if !errors.As(err, &derr) {
				derr = &DecodeError{Reason: ReasonMalformedJSON, Detail: err.Error()}
			}
			if err := pt.c.deadLetter(pt.hard(), pt.log, d, derr.Reason, derr.Detail); err != nil {
				return err
			}
			continue
		}
		req.AcceptedAt = meta.Timestamp
		d.Request = req
		b.Requests = append(b.Requests, d)
	}
	if len(b.Requests) == 0 {
		return nil
	}
	// Redeliveries and a previous owner's messages may arrive out of order;
	// the stream sequence is the acceptance order.
	slices.SortFunc(b.Requests, func(x, y *Delivery) int {
		switch {
		case x.Seq < y.Seq:
			return -1
		case x.Seq > y.Seq:
			return 1
		}
		return 0
	})
	err := pt.c.handle(pt.hard(), b)
	if err != nil && pt.hard().Err() != nil {
		return errAborted
	}
	return err
}

// unpin releases the partition's pin so the next owner is served at once.
func (pt *partition) unpin() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(pt.ctx), 2*time.Second)
	defer cancel()
	if err := pt.c.requests.UnpinConsumer(ctx, pt.name, PriorityGroup); err != nil && !pt.c.nc.IsClosed() {
		pt.log.Debug("unpin", zap.Error(err))
	}
}

// traceID is m's trace id header (or the header's old name) when it is
// valid, else empty: an invalid one is never copied anywhere.
func traceID(m jetstream.Msg) string {
	h := m.Headers()
	id := h.Get(HeaderTraceID)
	if id == "" {
		id = h.Get(HeaderLegacyTraceID)
	}
	if ValidTraceID(id) {
		return id
	}
	return ""
}
