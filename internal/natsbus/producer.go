package natsbus

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/wallet/wallet/internal/transfer"
)

// Producer is the gateway's face of the streams, in transfer types only:
// it publishes requests (through a Batcher, so concurrent publishes share
// disk syncs), looks up a pending request, watches for an outcome and
// reads the pipeline's state for the console. Build it with NewProducer
// and Run it; it is safe for concurrent use.
type Producer struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	bus      *Bus
	batcher  *Batcher
	requests jetstream.Stream
	window   time.Duration // the requests stream's dedupe window
	outcomes *outcomeWatch

	// backlog: the requests stream may hold requests older than half the
	// dedupe window. Run keeps it current.
	backlog atomic.Bool
}

// NewProducer binds to the streams on nc, which must exist
// (EnsureStreams). Requests are published through a Batcher configured by
// batching; its Stream is always RequestsStream. opts are Open's options.
func NewProducer(ctx context.Context, nc *nats.Conn, batching BatcherConfig, opts ...Option) (*Producer, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	requests, err := js.Stream(ctx, RequestsStream)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	batching.Stream = RequestsStream
	batcher, err := NewBatcher(nc, batching)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	bus, err := Open(ctx, js, opts...)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	p := &Producer{nc: nc, js: js, bus: bus, batcher: batcher, requests: requests,
		window: requests.CachedInfo().Config.Duplicates, outcomes: newOutcomeWatch(nc)}
	p.readBacklog(ctx)
	return p, nil
}

// Run publishes until ctx is cancelled, then commits what is queued and
// returns nil; later publishes fail with ErrBatcherClosed. It also keeps
// the backlog reading Publish relies on current. It returns an error when
// the connection closes while ctx is live.
func (p *Producer) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.batcher.Run(gctx) })
	g.Go(func() error { p.watchBacklog(gctx); return nil })
	return g.Wait()
}

// Publish stores r in the requests stream and returns once JetStream has
// acknowledged it; traceID travels in a header for the logs. duplicate
// reports that the stream already held a request under r's message id.
//
// JetStream drops a second request under an id only within its dedupe
// window; when the stream may hold requests older than that (a backlog,
// during an outage of the workers or the database), the id is looked up
// first, and a pending request found under it is reported as the duplicate
// it is, so that the caller answers for it instead of storing a second
// request.
func (p *Producer) Publish(ctx context.Context, r transfer.Request, traceID string) (duplicate bool, err error) {
	if p.backlog.Load() {
		if _, found, err := p.bus.LookupPending(ctx, r.ID); err != nil {
			return false, err
		} else if found {
			return true, nil
		}
	}
	msg, err := RequestMsg(r, traceID)
	if err != nil {
		return false, err
	}
	return p.send(ctx, r.ID, msg)
}

// Resubmit stores r under ResubmitMsgID(r.ID): for a request whose id is
// taken in the dedupe window by a message that is not a valid request.
func (p *Producer) Resubmit(ctx context.Context, r transfer.Request, traceID string) (duplicate bool, err error) {
	msg, err := RequestMsg(r, traceID)
	if err != nil {
		return false, err
	}
	msg.Header.Set(HeaderMsgID, ResubmitMsgID(r.ID))
	return p.send(ctx, r.ID, msg)
}

// send hands request id's message to the batcher and waits for its
// answer, in a producer span when tracing is on.
func (p *Producer) send(ctx context.Context, id uuid.UUID, msg *nats.Msg) (duplicate bool, err error) {
	var res PubResult
	if p.bus.tracer != nil {
		var span trace.Span
		ctx, span = p.bus.startPublish(ctx, msg, msg.Header.Get(HeaderMsgID))
		defer func() {
			endPublish(span, &jetstream.PubAck{Stream: RequestsStream, Sequence: res.Seq, Duplicate: res.Duplicate}, err)
		}()
	}
	res, err = p.batcher.Publish(ctx, msg)
	if err != nil {
		return false, fmt.Errorf("publish request %s: %w", id, err)
	}
	return res.Duplicate, nil
}

// LookupPending is Bus.LookupPending: the request the workers will apply
// under id, with the stream's timestamp as its AcceptedAt.
func (p *Producer) LookupPending(ctx context.Context, id uuid.UUID) (transfer.Request, bool, error) {
	return p.bus.LookupPending(ctx, id)
}

// WatchOutcome starts listening for outcomes published for id (results
// and conflict notices alike): outcomes receives each as it appears, and
// a newer one replaces one not yet taken. All watchers share
// one subscription, made on the connection publishes go through, so the
// server has it before it has the request. Call stop when done; it is safe
// to call more than once.
func (p *Producer) WatchOutcome(_ context.Context, id uuid.UUID) (outcomes <-chan Outcome, stop func(), err error) {
	return p.outcomes.watch(id)
}

// Ping is a JetStream round trip, so a server without JetStream counts as
// down.
func (p *Producer) Ping(ctx context.Context) error {
	_, err := p.js.AccountInfo(ctx)
	return err
}

// Pipeline is a snapshot of the streams, partitions and members.
func (p *Producer) Pipeline(ctx context.Context) (Pipeline, error) {
	return ReadPipeline(ctx, p.js)
}

// DeadLetters lists dead letters as ListDeadLetters does.
func (p *Producer) DeadLetters(ctx context.Context, before uint64, limit int) ([]DeadLetter, uint64, error) {
	return ListDeadLetters(ctx, p.js, before, limit)
}

// DeadLetter reads one dead letter as GetDeadLetter does.
func (p *Producer) DeadLetter(ctx context.Context, seq uint64) (DeadLetter, error) {
	return GetDeadLetter(ctx, p.js, seq)
}

// backlogEvery is how often the backlog is read: at most every quarter
// window and every second, so the reading is never too stale to matter.
func (p *Producer) backlogEvery() time.Duration {
	return max(10*time.Millisecond, min(time.Second, p.window/4))
}

// watchBacklog re-reads the backlog until ctx ends.
func (p *Producer) watchBacklog(ctx context.Context) {
	t := time.NewTicker(p.backlogEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.readBacklog(ctx)
		}
	}
}

// readBacklog notes whether the requests stream may hold a request the
// dedupe window no longer covers: its oldest message is older than half
// the window. Workers purge applied requests every few seconds, so with
// the default two-minute window this holds only during a backlog, and the
// extra lookup in Publish is paid only then. When the stream cannot be
// read it says yes.
func (p *Producer) readBacklog(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := p.requests.Info(ctx)
	if err != nil {
		p.backlog.Store(true)
		return
	}
	p.backlog.Store(info.State.Msgs > 0 && time.Since(info.State.FirstTime) > p.window/2)
}

// outcomeWatchIdle is how long the shared outcome subscription outlives
// its last watcher. A subscribe and an unsubscribe per wait would cost
// more than the outcomes delivered to an idle gateway in between.
const outcomeWatchIdle = 30 * time.Second

// Outcome is what a watcher of an id hears: a message on the id's outcome
// subject, or (Conflict) a notice on its conflict subject.
type Outcome struct {
	// Result is the message as published. It is zero when the message
	// could not be read as a result for the watched id; the watcher then
	// only knows that something was published, and reads the decision
	// elsewhere.
	Result Result
	// Conflict says the message is a conflict notice (ConflictSubject):
	// a request reused the id with other fields; the id's decision is
	// unchanged.
	Conflict bool
}

// Decides reports whether o is the decision a request sent with attempt
// waits for: a result on the outcome subject that is applied, or that
// names attempt (see the 2020 API's retries in docs/messaging.md). Every
// other outcome (a rejection made for another attempt, a conflict notice,
// a message that could not be read) is not an answer for attempt.
func (o Outcome) Decides(attempt uuid.UUID) bool {
	if o.Conflict || o.Result.ID == uuid.Nil {
		return false
	}
	return o.Result.Status == transfer.StatusApplied ||
		(attempt != uuid.Nil && o.Result.Attempt == attempt)
}

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
	watchers map[uuid.UUID][]chan Outcome
	n        int                // watchers registered
	sub      *nats.Subscription // nil while nobody watches
	idle     *time.Timer        // drops sub once nobody watched for outcomeWatchIdle
}

func newOutcomeWatch(nc *nats.Conn) *outcomeWatch {
	return &outcomeWatch{nc: nc, watchers: make(map[uuid.UUID][]chan Outcome)}
}

// watch registers a watcher of id. The subscription is made (when it is
// not already there) on the connection publishes go through, before watch
// returns, so the server has it before it has a request published after.
func (w *outcomeWatch) watch(id uuid.UUID) (<-chan Outcome, func(), error) {
	done := make(chan Outcome, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sub == nil {
		sub, err := w.nc.Subscribe(ResultsPrefix+">", w.dispatch)
		if err != nil {
			return nil, nil, fmt.Errorf("watch %s: %w", id, err)
		}
		// Outcomes are small and the callback only hands them on; a burst
		// must not be dropped as a slow consumer's, which would leave waiters
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
func (w *outcomeWatch) forget(id uuid.UUID, done chan Outcome) {
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

// dispatch hands an outcome (a result or a conflict notice) to the
// watchers of the id it names, decoding it once and only when the id is
// watched. Each watcher holds one outcome: a newer one replaces one not
// yet taken. The newest is the one worth reading (the last message on an
// outcome subject is the id's current decision), and a watcher that cannot
// tell the decision from it reads the decision elsewhere.
func (w *outcomeWatch) dispatch(m *nats.Msg) {
	rest, ok := strings.CutPrefix(m.Subject, ResultsPrefix)
	if !ok {
		return
	}
	rest, conflict := strings.CutSuffix(rest, ConflictSuffix)
	id, err := uuid.Parse(rest)
	if err != nil {
		return
	}
	w.mu.Lock()
	watched := len(w.watchers[id]) > 0
	w.mu.Unlock()
	if !watched {
		return
	}
	o := Outcome{Conflict: conflict}
	if res, err := DecodeResult(m.Data); err == nil && res.ID == id {
		o.Result = res
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.watchers[id] {
		select {
		case <-c: // replaced by the newer outcome
		default:
		}
		c <- o // dispatch is the only sender, under w.mu: there is room
	}
}
