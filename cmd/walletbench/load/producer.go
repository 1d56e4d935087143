package load

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// NATS publishing modes of --via nats.
const (
	// ModeAtomic groups requests into JetStream atomic batch publishes
	// through natsbus.Batcher, as the gateway does: the server stores a
	// batch with one sync, where single publishes sync each message.
	ModeAtomic = "atomic"
	// ModeAsync publishes each request asynchronously, a batch-sized window
	// per sender in flight.
	ModeAsync = "async"
	// ModeSingle publishes one request at a time and waits for its PubAck,
	// with one sync per request.
	ModeSingle = "single"
)

// Limits of JetStream's atomic batch publish: at most 1000 messages a
// batch and 50 open batches per stream.
const (
	maxAtomicBatch    = natsbus.MaxBatchMessages
	maxAtomicInflight = 50
)

// producer publishes requests straight into the requests stream.
type producer struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	mode   string
	batch  int
	linger time.Duration

	// batcher is shared by every lane in atomic mode (one batcher commits
	// faster than several: the stream commits batches one after another).
	// It is made with the first lane and ends with nc.
	once       sync.Once
	batcher    *natsbus.Batcher
	batcherErr error
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
		b, err := p.atomicBatcher()
		if err != nil {
			for range msgs {
				t.markFailed("publish: " + err.Error())
			}
			return
		}
		// Every message of the group waits for its batch at once; the
		// batcher packs them, with other lanes' messages, into batches.
		var wg sync.WaitGroup
		for k, m := range msgs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.publishOne(ctx, t, group[k].i, func(ctx context.Context) error {
					_, err := b.Publish(ctx, m)
					return err
				})
			}()
		}
		wg.Wait()
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
			p.publishOne(ctx, t, group[k].i, func(ctx context.Context) error {
				_, err := p.js.PublishMsg(ctx, m, jetstream.WithExpectStream(natsbus.RequestsStream))
				return err
			})
		}
	}
}

// atomicBatcher returns the producer's batcher, made on first use.
func (p *producer) atomicBatcher() (*natsbus.Batcher, error) {
	p.once.Do(func() {
		p.batcher, p.batcherErr = natsbus.NewBatcher(p.nc, natsbus.BatcherConfig{
			MaxMessages: p.batch,
			Linger:      p.linger,
			Timeout:     10 * time.Second,
			Stream:      natsbus.RequestsStream,
		})
		if p.batcherErr == nil {
			// It runs as long as the producer's connection: closing that
			// ends it.
			go func() { _ = p.batcher.Run(context.Background()) }()
		}
	})
	return p.batcher, p.batcherErr
}

// publishOne publishes request i with publish, retrying a failure a few
// times (the stream deduplicates by the request id), and marks it.
func (p *producer) publishOne(ctx context.Context, t *tracker, i int, publish func(context.Context) error) {
	var err error
	for attempt := 1; attempt <= httpAttempts; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = publish(pctx)
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
