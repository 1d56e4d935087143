package load

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/transfer"
)

// Outcome status codes kept per request.
const (
	statusNone uint32 = iota
	statusApplied
	statusRejected
)

// tracker holds the timings and outcome of every request of one run. The
// senders write when a request was due and accepted, the outcome reader
// when it was decided; each field is atomic because the outcome can beat
// the sender's own bookkeeping of the acceptance.
type tracker struct {
	start time.Time
	ids   []uuid.UUID
	index map[uuid.UUID]int32 // read-only once built

	// Times are nanoseconds since start plus one, so zero means "not yet".
	due      []atomic.Int64
	accepted []atomic.Int64
	decided  []atomic.Int64
	status   []atomic.Uint32
	reason   []atomic.Uint32 // index into reasons
	outcomes []atomic.Uint32 // outcome messages seen
	mismatch []atomic.Bool   // a later outcome disagreed with the first
	flags    []atomic.Uint32 // flagAccepted | flagDecided

	nAccepted, nDecided, nApplied, nRejected atomic.Int64
	nComplete                                atomic.Int64 // accepted and decided
	nDuplicate, nMismatch, nForeign          atomic.Int64

	mu      sync.Mutex
	reasons []string
	byName  map[string]uint32
	errs    map[string]int // failed sends by error class
	errN    atomic.Int64
}

func newTracker(ids []uuid.UUID) *tracker {
	n := len(ids)
	t := &tracker{
		ids:      ids,
		index:    make(map[uuid.UUID]int32, n),
		due:      make([]atomic.Int64, n),
		accepted: make([]atomic.Int64, n),
		decided:  make([]atomic.Int64, n),
		status:   make([]atomic.Uint32, n),
		reason:   make([]atomic.Uint32, n),
		outcomes: make([]atomic.Uint32, n),
		mismatch: make([]atomic.Bool, n),
		flags:    make([]atomic.Uint32, n),
		reasons:  []string{""},
		byName:   map[string]uint32{"": 0},
		errs:     make(map[string]int),
	}
	for i, id := range ids {
		t.index[id] = int32(i)
	}
	return t
}

// begin fixes the run's time origin.
func (t *tracker) begin(at time.Time) { t.start = at }

func (t *tracker) stamp(at time.Time) int64 { return int64(at.Sub(t.start)) + 1 }

func (t *tracker) markDue(i int, at time.Time) { t.due[i].Store(t.stamp(at)) }

func (t *tracker) markAccepted(i int, at time.Time) {
	if t.accepted[i].CompareAndSwap(0, t.stamp(at)) {
		t.nAccepted.Add(1)
		t.flag(i, flagAccepted)
	}
}

const (
	flagAccepted uint32 = 1 << iota
	flagDecided
)

// flag sets one of a request's flags and counts the request complete
// when this call is the one that made it both accepted and decided.
func (t *tracker) flag(i int, f uint32) {
	old := t.flags[i].Or(f)
	if old&f == 0 && old|f == flagAccepted|flagDecided {
		t.nComplete.Add(1)
	}
}

// markFailed counts a request that was never accepted.
func (t *tracker) markFailed(class string) {
	t.errN.Add(1)
	t.mu.Lock()
	t.errs[class]++
	t.mu.Unlock()
}

func (t *tracker) reasonIndex(reason string) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.byName[reason]; ok {
		return i
	}
	i := uint32(len(t.reasons))
	t.reasons = append(t.reasons, reason)
	t.byName[reason] = i
	return i
}

// markOutcome records an outcome read for id. Outcomes for ids outside
// the run are counted and ignored; a second outcome for an id is counted,
// and flagged when it disagrees with the first.
func (t *tracker) markOutcome(id uuid.UUID, status transfer.Status, reason string, at time.Time) {
	i, ok := t.index[id]
	if !ok {
		t.nForeign.Add(1)
		return
	}
	st := statusRejected
	if status == transfer.StatusApplied {
		st = statusApplied
	}
	ri := uint32(0)
	if reason != "" {
		ri = t.reasonIndex(reason)
	}
	if t.outcomes[i].Add(1) > 1 {
		t.nDuplicate.Add(1)
		// Outcomes are read by one goroutine, so the first one's fields
		// are complete by now.
		if t.status[i].Load() != st || t.reason[i].Load() != ri {
			if !t.mismatch[i].Swap(true) {
				t.nMismatch.Add(1)
			}
		}
		return
	}
	t.status[i].Store(st)
	t.reason[i].Store(ri)
	t.decided[i].Store(t.stamp(at))
	t.nDecided.Add(1)
	t.flag(int(i), flagDecided)
	if st == statusApplied {
		t.nApplied.Add(1)
	} else {
		t.nRejected.Add(1)
	}
}

// outstanding is the number of accepted requests still without an outcome.
func (t *tracker) outstanding() int64 {
	return t.nAccepted.Load() - t.nComplete.Load()
}

// drained reports whether every accepted request has an outcome.
func (t *tracker) drained() bool {
	for i := range t.ids {
		if t.accepted[i].Load() != 0 && t.decided[i].Load() == 0 {
			return false
		}
	}
	return true
}

// missing lists accepted requests without an outcome.
func (t *tracker) missing() []int {
	var out []int
	for i := range t.ids {
		if t.accepted[i].Load() != 0 && t.decided[i].Load() == 0 {
			out = append(out, i)
		}
	}
	return out
}

// rejectedBy counts rejections by reason.
func (t *tracker) rejectedBy() map[string]int {
	out := make(map[string]int)
	t.mu.Lock()
	reasons := append([]string(nil), t.reasons...)
	t.mu.Unlock()
	for i := range t.ids {
		if t.status[i].Load() == statusRejected {
			out[reasons[t.reason[i].Load()]]++
		}
	}
	return out
}

func (t *tracker) errors() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int, len(t.errs))
	for k, v := range t.errs {
		out[k] = v
	}
	return out
}

// Observed is what the run saw of one request, for the book checks.
type Observed struct {
	ID         uuid.UUID
	Accepted   bool
	Decided    bool
	Applied    bool
	Reason     string
	Outcomes   int  // outcome messages read
	Mismatch   bool // two outcome messages disagreed
	MustReject bool
}

func (t *tracker) observed(mustReject func(i int) bool) []Observed {
	t.mu.Lock()
	reasons := append([]string(nil), t.reasons...)
	t.mu.Unlock()
	out := make([]Observed, len(t.ids))
	for i, id := range t.ids {
		out[i] = Observed{
			ID:         id,
			Accepted:   t.accepted[i].Load() != 0,
			Decided:    t.decided[i].Load() != 0,
			Applied:    t.status[i].Load() == statusApplied,
			Reason:     reasons[t.reason[i].Load()],
			Outcomes:   int(t.outcomes[i].Load()),
			Mismatch:   t.mismatch[i].Load(),
			MustReject: mustReject != nil && mustReject(i),
		}
	}
	return out
}
