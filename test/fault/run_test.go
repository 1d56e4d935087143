package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/natsbus"
)

// run is one load against one cluster: the world, the clients, the
// recorder, and a pool for the checks' own polling.
type run struct {
	t      testing.TB
	c      *cluster
	world  *world
	rec    *recorder
	sub    *submitter
	pool   *pgxpool.Pool
	js     jetstream.JetStream
	probes *loadModel // draws probe ids, apart from the load's generator
}

// newRun creates the world's accounts through the gateway and connects
// the clients.
func newRun(t testing.TB, c *cluster, rng *rand.Rand, perCurrency int) *run {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	r := &run{t: t, c: c, world: newWorld(rng, perCurrency, c.cfg.Partitions), rec: newRecorder()}
	r.probes = newLoadModel(rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())), r.world, 0, 0, 0)
	var err error
	if r.pool, err = pgxpool.New(ctx, c.dbURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.pool.Close)
	// The clients publish with the producer role; the checks read every
	// stream as the operator.
	var jss []jetstream.JetStream
	for i := 0; i < 4; i++ {
		_, js := c.nats.connect(t, fmt.Sprintf("producer-%d", i), c.nats.credential(natsbus.RoleProducer))
		jss = append(jss, js)
	}
	_, r.js = c.nats.connect(t, "checks", c.nats.admin)
	r.sub = &submitter{
		rec:            r.rec,
		gateways:       c.gatewayURLs,
		http:           newHTTPClient(10*time.Second, true),
		js:             jss,
		attemptTimeout: 10 * time.Second,
	}
	all := append(append([]account(nil), r.world.Accounts...), r.world.Probes...)
	for _, a := range all {
		if err := createAccount(ctx, r.sub.http, c.gatewayURLs()[0], a); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// createAccount creates a through the API, retrying while it is unavailable.
func createAccount(ctx context.Context, client *http.Client, base string, a account) error {
	body, _ := json.Marshal(map[string]string{"id": a.ID.String(), "currency": a.Currency})
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/accounts", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err == nil {
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusCreated, http.StatusOK:
				return nil
			case http.StatusServiceUnavailable:
			default:
				return fmt.Errorf("create account %s: %s %s", a.ID, resp.Status, data)
			}
		}
		if !backoff(ctx, attempt) {
			return fmt.Errorf("create account %s: %w (last error %w)", a.ID, ctx.Err(), err)
		}
	}
}

// submitAll submits ops concurrently and waits for every definite answer.
func (r *run) submitAll(ctx context.Context, ops []*op) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, o := range ops {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.sub.submit(ctx, o)
		}()
	}
	wg.Wait()
}

// load runs the model's ops at rate per second over clients goroutines
// until ctx ends. Ops in hand keep being retried under settle. The
// returned function waits for the clients.
func (r *run) load(ctx, settle context.Context, m *loadModel, rate, clients int) (wait func()) {
	ops := make(chan *op)
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range ops {
				r.sub.submit(settle, o)
			}
		}()
	}
	go func() {
		defer close(ops)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			o := m.next()
			select {
			case ops <- o:
			case <-ctx.Done():
				// Not sent: forget it.
				return
			}
		}
	}()
	return wg.Wait
}

// decided counts how many of ids the database has decided.
func (r *run) decided(ctx context.Context, ids []uuid.UUID) (int, error) {
	var n int
	err := r.pool.QueryRow(ctx, `SELECT count(*) FROM transfers WHERE id = ANY($1)`, ids).Scan(&n)
	return n, err
}

// stallTimeout ends a wait for decisions that makes no progress at all
// for this long: the missing ones are lost, not late.
const stallTimeout = time.Minute

// waitDecided polls until every id is decided, or ctx ends, or no new
// decision comes for stallTimeout.
func (r *run) waitDecided(ctx context.Context, ids []uuid.UUID) error {
	var last error
	best, progressAt := -1, time.Now()
	for {
		n, err := r.decided(ctx, ids)
		if err == nil && n == len(ids) {
			return nil
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("%d of %d decided", n, len(ids))
			if n > best {
				best, progressAt = n, time.Now()
			}
		}
		if time.Since(progressAt) > stallTimeout {
			return fmt.Errorf("no progress for %s: %w", stallTimeout, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for decisions: %w", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// probe submits one deposit per partition over rt and returns how long it
// took until all were decided: the time for every partition to be served
// again.
func (r *run) probe(ctx context.Context, rt route) (time.Duration, error) {
	start := time.Now()
	ops := r.probes.probeOps()
	ids := make([]uuid.UUID, len(ops))
	for i, o := range ops {
		o.Route = rt
		ids[i] = o.ID
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	r.submitAll(ctx, ops)
	if err := r.waitDecided(ctx, ids); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// quiesce waits until every accepted id is decided and every partition's
// consumer has nothing pending or unacknowledged (so every outcome was
// published: a worker acks only after publishing).
func (r *run) quiesce(ctx context.Context) error {
	if err := r.waitDecided(ctx, r.rec.acceptedIDs()); err != nil {
		return err
	}
	for {
		busy, err := r.consumersBusy(ctx)
		if err == nil && busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consumers still busy (%d messages, %w)", busy, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// consumersBusy counts the messages the partition consumers have not
// delivered or not had acknowledged.
func (r *run) consumersBusy(ctx context.Context) (int, error) {
	s, err := r.js.Stream(ctx, "WALLET_REQUESTS")
	if err != nil {
		return 0, err
	}
	n := 0
	lister := s.ListConsumers(ctx)
	for ci := range lister.Info() {
		n += int(ci.NumPending) + ci.NumAckPending
	}
	return n, lister.Err()
}

// faultFigure is what one injected fault did.
type faultFigure struct {
	Name     string
	Down     time.Duration // how long the fault lasted
	Recovery time.Duration // from the end of the fault until every partition served again
	Note     string
}

func (f faultFigure) String() string {
	s := fmt.Sprintf("%-28s down %6s  recovery %6s", f.Name, f.Down.Round(10*time.Millisecond), f.Recovery.Round(10*time.Millisecond))
	if f.Note != "" {
		s += "  " + f.Note
	}
	return s
}

// summarizeFigures gives the count and the recovery range per fault kind.
func summarizeFigures(figs []faultFigure) string {
	type agg struct {
		n        int
		min, max time.Duration
	}
	by := map[string]*agg{}
	for _, f := range figs {
		kind, _, _ := strings.Cut(f.Name, " ")
		a := by[kind]
		if a == nil {
			a = &agg{min: f.Recovery, max: f.Recovery}
			by[kind] = a
		}
		a.n++
		a.min, a.max = min(a.min, f.Recovery), max(a.max, f.Recovery)
	}
	kinds := make([]string, 0, len(by))
	for k := range by {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	for _, k := range kinds {
		a := by[k]
		fmt.Fprintf(&b, "%-16s x%-3d recovery %s .. %s\n", k, a.n, a.min.Round(10*time.Millisecond), a.max.Round(10*time.Millisecond))
	}
	return b.String()
}

// logConsumers logs the requests stream's and partition consumers' state,
// to explain a stall.
func (r *run) logConsumers(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, "WALLET_REQUESTS")
	if err != nil {
		t.Logf("consumers: %v", err)
		return
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Logf("consumers: %v", err)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "requests stream: %d messages, first seq %d, last seq %d, deleted %d",
		info.State.Msgs, info.State.FirstSeq, info.State.LastSeq, info.State.NumDeleted)
	lister := s.ListConsumers(ctx)
	for ci := range lister.Info() {
		fmt.Fprintf(&b, "\n  %s: pending %d, ack pending %d, redelivered %d, delivered stream seq %d, ack floor stream seq %d, waiting pulls %d, pinned %v",
			ci.Name, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumWaiting, ci.PriorityGroups)
	}
	if err := lister.Err(); err != nil {
		fmt.Fprintf(&b, "\n  list: %v", err)
	}
	t.Log(b.String())
}
