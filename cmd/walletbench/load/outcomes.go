package load

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// outcomeReader reads the outcomes published from the moment it starts
// and hands each to the trackers of the phases that are running.
type outcomeReader struct {
	nc       *nats.Conn
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

// readOutcomes subscribes to the outcome subjects on a connection of its
// own, as any producer may (the producer role reads wallet.results.>,
// but may not create consumers). The subject filter skips the conflict
// notices, whose subjects have one more token. The subscription's buffer
// is unbounded, so a burst of outcomes is queued rather than dropped.
func readOutcomes(url string) (*outcomeReader, error) {
	nc, err := nats.Connect(url, nats.Name("walletbench-outcomes"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("read outcomes: %w", err)
	}
	o := &outcomeReader{nc: nc}
	sub, err := nc.Subscribe(natsbus.ResultsPrefix+"*", o.handle)
	if err == nil {
		err = sub.SetPendingLimits(-1, -1)
	}
	if err == nil {
		// The server has the subscription once the flush returns, so no
		// outcome published after readOutcomes returns is missed.
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("read outcomes: %w", err)
	}
	return o, nil
}

// watch adds a phase's tracker.
func (o *outcomeReader) watch(t *tracker) {
	o.mu.Lock()
	o.trackers = append(o.trackers, t)
	o.mu.Unlock()
}

// handle runs on the subscription's single delivery goroutine.
func (o *outcomeReader) handle(m *nats.Msg) {
	now := time.Now()
	o.read.Add(1)
	var r resultFields
	if err := json.Unmarshal(m.Data, &r); err != nil || r.ID == uuid.Nil {
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

func (o *outcomeReader) stop() { o.nc.Close() }
