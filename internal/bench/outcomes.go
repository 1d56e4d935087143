package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// outcomeReader reads the results stream from the moment it starts and
// hands each outcome to the trackers of the phases that are running.
type outcomeReader struct {
	cc       jetstream.ConsumeContext
	mu       sync.Mutex
	trackers []*tracker
	read     atomic.Int64
	bad      atomic.Int64 // results that did not decode
}

// resultFields is the part of a result the tool needs. It is decoded
// loosely on purpose: the strict decoder is for the service's own
// readers, and this one must keep up with the workers on a shared CPU.
type resultFields struct {
	ID     uuid.UUID       `json:"id"`
	Status transfer.Status `json:"status"`
	Reason string          `json:"reason"`
}

// readOutcomes starts an ordered consumer on the results stream that
// delivers only outcomes published from now on (not the conflict notices,
// whose subjects have one more token).
func readOutcomes(ctx context.Context, js jetstream.JetStream) (*outcomeReader, error) {
	cons, err := js.OrderedConsumer(ctx, natsbus.ResultsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{natsbus.ResultsPrefix + "*"},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("read outcomes: %w", err)
	}
	o := &outcomeReader{}
	cc, err := cons.Consume(o.handle, jetstream.PullMaxMessages(2000))
	if err != nil {
		return nil, fmt.Errorf("read outcomes: %w", err)
	}
	o.cc = cc
	return o, nil
}

// watch adds a phase's tracker.
func (o *outcomeReader) watch(t *tracker) {
	o.mu.Lock()
	o.trackers = append(o.trackers, t)
	o.mu.Unlock()
}

// handle runs on the consumer's single delivery goroutine.
func (o *outcomeReader) handle(m jetstream.Msg) {
	now := time.Now()
	o.read.Add(1)
	var r resultFields
	if err := json.Unmarshal(m.Data(), &r); err != nil || r.ID == uuid.Nil {
		o.bad.Add(1)
		return
	}
	o.mu.Lock()
	trackers := o.trackers
	o.mu.Unlock()
	for _, t := range trackers {
		if _, ok := t.index[r.ID]; ok {
			t.markOutcome(r.ID, r.Status, r.Reason, now)
			return
		}
	}
}

func (o *outcomeReader) stop() {
	if o.cc != nil {
		o.cc.Stop()
	}
}
