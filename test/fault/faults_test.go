package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fault is one thing the nemesis does to the cluster, returning what it
// measured.
type fault struct {
	name   string
	inject func(ctx context.Context, r *run) (faultFigure, error)
}

// faultPlan sizes a run.
type faultPlan struct {
	PerCurrency   int // accounts per currency
	Rate          int // ops per second
	Clients       int
	Rounds        int // how many times the fault list is run, shuffled each time
	Gap           time.Duration
	StormEvery    int
	StormSize     int
	ConflictEvery int
	// NATSKill makes every other NATS restart a kill -9.
	NATSKill bool
	// PGRestart adds a restart of the PostgreSQL cluster itself.
	PGRestart bool
}

func shortPlan() faultPlan {
	return faultPlan{PerCurrency: 8, Rate: 150, Clients: 24, Rounds: 1, Gap: time.Second,
		StormEvery: 40, StormSize: 4, ConflictEvery: 53}
}

// holdShare is the share of the load's ops that are holds, posts, voids
// and reversals; the rest keep the mix of transfers, deposits and
// withdrawals.
const holdShare = 0.2

// longFaultTarget is the fewest faults a long run must inject: 13 rounds
// of the 8 faults make 104.
const longFaultTarget = 100

func longPlan() faultPlan {
	restart, _ := strconv.ParseBool(os.Getenv(envPGRestart))
	return faultPlan{PerCurrency: 16, Rate: 300, Clients: 48, Rounds: 13, Gap: 2 * time.Second,
		StormEvery: 30, StormSize: 8, ConflictEvery: 41, NATSKill: true, PGRestart: restart}
}

// TestFaults runs a seeded mixed load against real processes while the
// nemesis kills, pauses and cuts them, then checks the books.
func TestFaults(t *testing.T) {
	plan := shortPlan()
	if long() {
		plan = longPlan()
	}
	s := seed(t)
	rng := rand.New(rand.NewPCG(s, 0xfa017))
	// The nemesis and the load draw from their own generators, so that
	// the fault order does not depend on how many ops the load drew.
	nemesis := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
	c := startCluster(t, clusterConfig{Gateways: 2, Workers: 3})
	r := newRun(t, c, rng, plan.PerCurrency)
	model := newLoadModel(rng, r.world, plan.StormEvery, plan.ConflictEvery, plan.StormSize)
	model.holdShare, model.accepted, model.reverseAfter = holdShare, r.rec.acceptedAt, time.Second

	ctx := t.Context()
	// Ops in hand keep being retried until the load stops, and then for a
	// few minutes more.
	settle, cancelSettle := context.WithCancel(ctx)
	defer cancelSettle()
	fundCtx, cancelFund := context.WithTimeout(ctx, 2*time.Minute)
	r.submitAll(fundCtx, model.fundingOps())
	cancelFund()

	loadCtx, stopLoad := context.WithCancel(ctx)
	waitClients := r.load(loadCtx, settle, model, plan.Rate, plan.Clients)
	start := time.Now()

	var figures []faultFigure
	var failed []string
	natsRestarts := 0
rounds:
	for round := 0; round < plan.Rounds; round++ {
		faults := []fault{
			killWorker(0), killWorker(2), killWorker(0), pauseWorker(1), killGateways(),
			restartNATS(plan.NATSKill && natsRestarts%2 == 1), postgresOutage(3 * time.Second), postgresBlip(),
		}
		natsRestarts++
		if plan.PGRestart {
			faults = append(faults, restartPostgres())
		}
		if os.Getenv(envSequence) != "" {
			// Every fault can be named in a sequence.
			faults = append(faults, restartNATS(true), restartNATS(false), restartPostgres())
		}
		nemesis.Shuffle(len(faults), func(i, j int) { faults[i], faults[j] = faults[j], faults[i] })
		if seq := os.Getenv(envSequence); seq != "" {
			faults = pickFaults(t, faults, seq)
		}
		for _, f := range faults {
			if !sleepCtx(ctx, plan.Gap) {
				t.Fatal(ctx.Err())
			}
			fig, err := f.inject(ctx, r)
			if err != nil {
				// The service did not recover: stop the nemesis and go
				// on to the checks, which say what went wrong.
				failed = append(failed, fmt.Sprintf("%s: %v", f.name, err))
				t.Errorf("fault %s: %v", f.name, err)
				c.logActivity(t)
				r.logConsumers(t)
				break rounds
			}
			t.Logf("fault %s", fig)
			figures = append(figures, fig)
		}
	}
	if !sleepCtx(ctx, plan.Gap) {
		t.Fatal(ctx.Err())
	}
	stopLoad()
	giveUp := time.AfterFunc(5*time.Minute, cancelSettle)
	waitClients()
	giveUp.Stop()
	loadTime := time.Since(start)
	t.Logf("load ran %s; clients: %v", loadTime.Round(time.Second), r.rec.summary())

	qctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	qstart := time.Now()
	if err := r.quiesce(qctx); err != nil {
		t.Errorf("quiesce: %v", err)
	}
	t.Logf("quiesced in %s", time.Since(qstart).Round(10*time.Millisecond))

	conn, err := c.db(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	opts := checkOptions{NATSRestartedBetween: c.nats.restartedBetween, SweepWithin: 10 * time.Second}
	for _, f := range figures {
		if f.Name == "nats-kill" {
			opts.ResultsMayBeMissing = true
		}
	}
	rep, err := checkBook(ctx, conn, r.js, r.rec, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, crash := range c.crashes() {
		rep.Violations.add(checkCrash, "%s", crash)
	}
	for _, f := range failed {
		rep.Violations.add(checkRecovery, "%s", f)
	}
	t.Logf("faults: %d injected\n%s", len(figures), summarizeFigures(figures))
	if long() && len(figures) < longFaultTarget {
		t.Errorf("the long run injected %d faults, want at least %d", len(figures), longFaultTarget)
	}
	t.Logf("book:\n%s", rep)
	writeReport(t, "faults", map[string]any{
		"seed": s, "long": long(), "load_seconds": loadTime.Seconds(), "clients": r.rec.summary(),
		"faults": figures, "faults_injected": len(figures), "summary": summarizeFigures(figures), "book": rep.String(),
		"accepted": rep.Accepted, "lost": rep.Violations.count[checkLost],
		"duplicated": rep.Violations.count[checkEntries] + rep.Violations.count[checkResults],
		"conserved":  rep.Violations.count[checkConservation] == 0,
	})
	if rep.Violations.total() != 0 {
		t.Errorf("the books are wrong (seed %d):%s", s, rep.Violations)
		// Goroutine dumps of the services, for whoever reads the logs.
		for _, svc := range append(append([]*service(nil), c.workers...), c.gateways...) {
			svc.stopWith(syscall.SIGQUIT, 10*time.Second)
		}
	}
	if rep.Accepted == 0 || rep.Applied == 0 {
		t.Errorf("the load did nothing: %d accepted, %d applied", rep.Accepted, rep.Applied)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// killWorker kills a worker with SIGKILL mid-batch: the first one caught
// inside a database transaction that has written (worker i when none is
// caught within a few seconds). It times the takeover of its partitions by
// the others, then restarts it.
func killWorker(i int) fault {
	return fault{name: "worker-kill", inject: func(ctx context.Context, r *run) (faultFigure, error) {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		w := r.c.workerMidBatch(wctx)
		cancel()
		note := "killed mid-batch"
		if w == nil {
			w, note = r.c.workers[i], "killed between batches"
		}
		w.kill()
		rec, err := r.probe(ctx, viaNATS)
		if err != nil {
			return faultFigure{}, err
		}
		if err := w.restart(ctx); err != nil {
			return faultFigure{}, err
		}
		return faultFigure{Name: "worker-kill " + w.name, Recovery: rec, Note: note + "; partitions taken over by the others"}, nil
	}}
}

// pauseWorker stops worker i with SIGSTOP for longer than its ack wait and
// pinned TTL, so its batch in hand is redelivered to another worker, then
// lets it continue with its stale batch. A probe sent when it stops shows
// whether the others served its partitions meanwhile: they cannot when the
// stopped worker holds row locks in an open transaction, and then they go
// on as soon as it continues.
func pauseWorker(i int) fault {
	return fault{name: "worker-pause", inject: func(ctx context.Context, r *run) (faultFigure, error) {
		w := r.c.workers[i]
		down := r.c.cfg.AckWait + r.c.cfg.PinnedTTL + 2*time.Second
		if err := w.pause(); err != nil {
			return faultFigure{}, err
		}
		type result struct {
			d   time.Duration
			err error
		}
		during := make(chan result, 1)
		go func() {
			d, err := r.probe(ctx, viaNATS)
			during <- result{d, err}
		}()
		slept := sleepCtx(ctx, down)
		// Just before it continues: sessions waiting on a lock held by a
		// transaction that has been open for most of the pause (the
		// stopped worker's).
		blocked, _ := r.c.blockedByOldTransactions(ctx, down/2)
		if err := w.resume(); err != nil {
			return faultFigure{}, err
		}
		if !slept {
			return faultFigure{}, ctx.Err()
		}
		res := <-during
		if res.err != nil {
			return faultFigure{}, fmt.Errorf("partitions not served after the pause: %w", res.err)
		}
		rec, err := r.probe(ctx, viaNATS)
		if err != nil {
			return faultFigure{}, err
		}
		note := fmt.Sprintf("others served its partitions after %s", res.d.Round(10*time.Millisecond))
		if res.d >= down {
			note = fmt.Sprintf("its partitions waited for it to continue (%s; %d sessions were waiting on its open transaction's locks)",
				res.d.Round(10*time.Millisecond), blocked)
			rec = max(rec, res.d-down)
		}
		return faultFigure{Name: "worker-pause " + w.name, Down: down, Recovery: rec, Note: note}, nil
	}}
}

// killGateways kills every gateway with SIGKILL while clients submit, and
// restarts them; clients retry with the same ids meanwhile.
func killGateways() fault {
	return fault{name: "gateway-kill", inject: func(ctx context.Context, r *run) (faultFigure, error) {
		start := time.Now()
		for _, g := range r.c.gateways {
			g.kill()
		}
		if !sleepCtx(ctx, time.Second) {
			return faultFigure{}, ctx.Err()
		}
		down := time.Since(start)
		healed := time.Now()
		for _, g := range r.c.gateways {
			if err := g.start(); err != nil {
				return faultFigure{}, err
			}
		}
		if _, err := r.probe(ctx, viaHTTP); err != nil {
			return faultFigure{}, err
		}
		return faultFigure{Name: "gateway-kill all", Down: down, Recovery: time.Since(healed), Note: "until an HTTP deposit per partition is applied"}, nil
	}}
}

// restartNATS stops the NATS server (SIGTERM, or SIGKILL when kill) under
// load. While it is down the gateway must answer 503; after it is back on
// the same store, every partition must be served again.
func restartNATS(kill bool) fault {
	name := "nats-restart"
	if kill {
		name = "nats-kill"
	}
	return fault{name: name, inject: func(ctx context.Context, r *run) (faultFigure, error) {
		start := time.Now()
		if kill {
			r.c.nats.kill()
		} else if !r.c.nats.terminate(30 * time.Second) {
			return faultFigure{}, fmt.Errorf("nats-server did not stop on SIGTERM")
		}
		// Ask a gateway for a deposit, once per attempt, until one 503
		// comes back: the gateway must say it cannot store the request.
		statuses := map[int]int{}
		racedKill := 0
		deadline := time.Now().Add(20 * time.Second)
		for statuses[http.StatusServiceUnavailable] == 0 && time.Now().Before(deadline) {
			o := r.probes.probeOps()[0]
			o.Route = viaHTTP
			r.rec.sent(o)
			status, code, err := r.sub.httpOnce(ctx, r.sub.http, r.c.gatewayURLs()[0], o)
			switch {
			case err != nil:
				statuses[0]++
			case status < 300:
				// Accepted with NATS down: the book check will find it
				// lost unless it was truly stored.
				r.rec.accepted(o.ID, fmt.Sprintf("http %d while nats down", status), 0)
				statuses[status]++
			case status == http.StatusServiceUnavailable:
				// NATS was already gone when the request was sent: it
				// cannot have been stored, and must never be applied.
				r.rec.refused(o.ID, status, code)
				statuses[status]++
			case status == http.StatusGatewayTimeout && code == "outcome_unknown" && statuses[http.StatusServiceUnavailable] == 0:
				// Sent before the gateway's connection saw the server
				// go: its publish may have reached the server, so "may
				// be stored" is the honest answer. The book check treats
				// the id as either applied or not, never both.
				r.rec.answer(o.ID, fmt.Sprintf("http %d %s as nats went down", status, code))
				racedKill++
			default:
				r.rec.answer(o.ID, fmt.Sprintf("http %d %s while nats down", status, code))
				statuses[status]++
			}
		}
		if statuses[http.StatusServiceUnavailable] == 0 {
			return faultFigure{}, fmt.Errorf("no 503 from the gateway while NATS was down: %v", statuses)
		}
		if racedKill > 0 {
			r.t.Logf("%d request(s) sent as NATS went down answered 504 outcome_unknown", racedKill)
		}
		for status, n := range statuses {
			if status != http.StatusServiceUnavailable {
				r.rec.problem("gateway answered %d (%d times) while NATS was down", status, n)
			}
		}
		down := time.Since(start)
		healed := time.Now()
		if err := r.c.nats.restart(ctx); err != nil {
			return faultFigure{}, err
		}
		if _, err := r.probe(ctx, viaNATS); err != nil {
			return faultFigure{}, err
		}
		return faultFigure{Name: name, Down: down, Recovery: time.Since(healed),
			Note: fmt.Sprintf("gateway answers while down: %v", statuses)}, nil
	}}
}

// postgresOutage refuses new connections to the test database and ends
// every session on it for d: workers must back off and resume, rejecting
// nothing because the database was away.
func postgresOutage(d time.Duration) fault {
	return fault{name: "postgres-outage", inject: func(ctx context.Context, r *run) (faultFigure, error) {
		start := time.Now()
		if err := r.c.setConnectable(ctx, false); err != nil {
			return faultFigure{}, err
		}
		n, err := r.c.terminateBackends(ctx)
		if err != nil {
			return faultFigure{}, err
		}
		if !sleepCtx(ctx, d) {
			return faultFigure{}, ctx.Err()
		}
		if err := r.c.setConnectable(ctx, true); err != nil {
			return faultFigure{}, err
		}
		down := time.Since(start)
		healed := time.Now()
		if _, err := r.probe(ctx, viaNATS); err != nil {
			return faultFigure{}, err
		}
		return faultFigure{Name: "postgres-outage", Down: down, Recovery: time.Since(healed),
			Note: fmt.Sprintf("%d sessions terminated", n)}, nil
	}}
}

// postgresBlip terminates every session on the test database once.
func postgresBlip() fault {
	return fault{name: "postgres-blip", inject: func(ctx context.Context, r *run) (faultFigure, error) {
		n, err := r.c.terminateBackends(ctx)
		if err != nil {
			return faultFigure{}, err
		}
		healed := time.Now()
		if _, err := r.probe(ctx, viaNATS); err != nil {
			return faultFigure{}, err
		}
		return faultFigure{Name: "postgres-blip", Recovery: time.Since(healed), Note: fmt.Sprintf("%d sessions terminated", n)}, nil
	}}
}

// restartPostgres restarts the whole PostgreSQL cluster. Other tests on
// the same server fail meanwhile, so it is only used when asked for.
func restartPostgres() fault {
	return fault{name: "postgres-restart", inject: func(ctx context.Context, r *run) (faultFigure, error) {
		start := time.Now()
		out, err := exec.CommandContext(ctx, "pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart").CombinedOutput()
		if err != nil {
			return faultFigure{}, fmt.Errorf("pg_ctlcluster restart: %w: %s", err, out)
		}
		down := time.Since(start)
		healed := time.Now()
		if _, err := r.probe(ctx, viaNATS); err != nil {
			return faultFigure{}, err
		}
		return faultFigure{Name: "postgres-restart", Down: down, Recovery: time.Since(healed)}, nil
	}}
}

// writeReport writes a run's figures as JSON to WALLET_FAULT_REPORT_DIR,
// when set, for docs/reliability.md.
func writeReport(t testing.TB, name string, v map[string]any) {
	dir := os.Getenv(envReportDir)
	if dir == "" {
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	data, err := jsonIndent(v)
	if err != nil {
		t.Errorf("report: %v", err)
		return
	}
	if err := os.WriteFile(dir+"/"+name+".json", data, 0o644); err != nil {
		t.Errorf("report: %v", err)
	}
}

var reportMu sync.Mutex

// pickFaults returns the faults named in seq, in its order; a name may
// repeat and picks the next fault of that name, round robin.
func pickFaults(t testing.TB, all []fault, seq string) []fault {
	used := map[string]int{}
	var out []fault
	for _, name := range strings.Split(seq, ",") {
		name = strings.TrimSpace(name)
		var same []fault
		for _, f := range all {
			if f.name == name {
				same = append(same, f)
			}
		}
		if len(same) == 0 {
			t.Fatalf("%s: no fault named %q", envSequence, name)
		}
		out = append(out, same[used[name]%len(same)])
		used[name]++
	}
	return out
}
