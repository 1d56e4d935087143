package natsbus

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// outcomeWatchIdle is how long the shared outcome subscription outlives
// its last watcher. A subscribe and an unsubscribe per wait would cost
// more than the outcomes delivered to an idle gateway in between.
const outcomeWatchIdle = 30 * time.Second

// outcomeWatch serves every WatchOutcome of a producer from one
// subscription on all result subjects (ResultsPrefix + ">"), dispatching
// each outcome to the watchers of its id with one map lookup. A
// subscription per watcher (two, with the conflict subject) cost each
// waiting request four protocol operations and two updates of the server's
// subscription index. The shared subscription exists only while there are
// watchers, and outcomeWatchIdle after, so a gateway nobody waits on is
// not sent every outcome.
type outcomeWatch struct {
	nc *nats.Conn

	mu       sync.Mutex
	watchers map[uuid.UUID][]chan struct{}
	n        int                // watchers registered
	sub      *nats.Subscription // nil while nobody watches
	idle     *time.Timer        // drops sub once nobody watched for outcomeWatchIdle
}

func newOutcomeWatch(nc *nats.Conn) *outcomeWatch {
	return &outcomeWatch{nc: nc, watchers: make(map[uuid.UUID][]chan struct{})}
}

// watch registers a watcher of id. The subscription is made (when it is
// not already there) on the connection publishes go through, before watch
// returns, so the server has it before it has a request published after.
func (w *outcomeWatch) watch(id uuid.UUID) (<-chan struct{}, func(), error) {
	done := make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sub == nil {
		sub, err := w.nc.Subscribe(ResultsPrefix+">", w.dispatch)
		if err != nil {
			return nil, nil, fmt.Errorf("watch %s: %w", id, err)
		}
		// Outcomes are small and the callback only signals; a burst must
		// not be dropped as a slow consumer's, which would leave waiters
		// to their timeout.
		_ = sub.SetPendingLimits(-1, 64<<20) // fails only on a closed subscription
		w.sub = sub
	}
	if w.idle != nil {
		w.idle.Stop()
		w.idle = nil
	}
	w.watchers[id] = append(w.watchers[id], done)
	w.n++
	var once sync.Once
	stop := func() { once.Do(func() { w.forget(id, done) }) }
	return done, stop, nil
}

// forget removes one watcher; the last one arms the idle timer.
func (w *outcomeWatch) forget(id uuid.UUID, done chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	list := w.watchers[id]
	for i, c := range list {
		if c == done {
			list[i] = list[len(list)-1]
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(w.watchers, id)
	} else {
		w.watchers[id] = list
	}
	w.n--
	if w.n == 0 && w.sub != nil && w.idle == nil {
		w.idle = time.AfterFunc(outcomeWatchIdle, w.dropIfIdle)
	}
}

// dropIfIdle unsubscribes when nobody started watching since the timer was
// armed.
func (w *outcomeWatch) dropIfIdle() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n > 0 || w.sub == nil {
		return
	}
	_ = w.sub.Unsubscribe() // fails only on a closed connection, which drops it anyway
	w.sub = nil
	w.idle = nil
}

// dispatch signals the watchers of the id an outcome (a result or a
// conflict notice) names. A signal already waiting is shared.
func (w *outcomeWatch) dispatch(m *nats.Msg) {
	rest, ok := strings.CutPrefix(m.Subject, ResultsPrefix)
	if !ok {
		return
	}
	rest = strings.TrimSuffix(rest, ConflictSuffix)
	id, err := uuid.Parse(rest)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.watchers[id] {
		select {
		case c <- struct{}{}:
		default: // a signal is already waiting to be taken
		}
	}
}
