package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/legacytest"
	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
	"github.com/wallet/wallet/internal/proctest"
)

func TestMain(m *testing.M) { proctest.Main(m) }

const pkg = "github.com/wallet/wallet/cmd/walletd"

// shutdownTimeout is the walletd setting under test; exits are awaited for
// it plus a margin for process teardown.
const shutdownTimeout = 10 * time.Second

// walletd is a running walletd with its addresses.
type walletd struct {
	*proctest.Process
	http string
	nats string
}

// startWalletd runs walletd on db with its JetStream store in storeDir, on
// free ports, logging JSON, and waits until it is ready.
func startWalletd(t *testing.T, db, storeDir string, extra ...string) *walletd {
	t.Helper()
	args := append([]string{
		"--db", db,
		"--port", "0",
		"--nats-listen", "127.0.0.1:0",
		"--nats-store-dir", storeDir,
		"--log-format", "json",
		"--shutdown-timeout", shutdownTimeout.String(),
	}, extra...)
	p := proctest.Start(t, proctest.Build(t, pkg), args)
	ready := p.WaitLog("walletd ready", 2*time.Minute)
	w := &walletd{Process: p, http: ready.String("http"), nats: ready.String("nats")}
	if !strings.HasPrefix(w.http, "http://") || !strings.HasPrefix(w.nats, "nats://") {
		t.Fatalf("ready line lacks addresses: %v", ready)
	}
	// The banner is written before the log line, but stdout reaches the
	// test through its own pipe.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Stdout(), w.http) || !strings.Contains(p.Stdout(), storeDir) {
		if time.Now().After(deadline) {
			t.Fatalf("stdout does not say where walletd listens and stores:\n%s", p.Stdout())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return w
}

var client = &http.Client{Timeout: 30 * time.Second}

// call sends a JSON request and decodes a JSON answer into out (if not nil).
func call(method, url string, body any, out any, header ...string) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %w", data, err)
		}
	}
	return resp.StatusCode, nil
}

// fund creates n USD accounts with balance each, applied before it returns.
func fund(t *testing.T, base string, n int, balance string) []string {
	t.Helper()
	var ids []string
	for range n {
		var acc struct {
			ID string `json:"id"`
		}
		if code, err := call("POST", base+"/v1/accounts", map[string]string{"currency": "USD"}, &acc); err != nil || code != 201 {
			t.Fatalf("create account: %d %v", code, err)
		}
		dep := map[string]string{"id": uuid.NewString(), "account_id": acc.ID, "amount": balance, "currency": "USD"}
		if code, err := call("POST", base+"/v1/deposits", dep, nil, "Prefer", "wait=20"); err != nil || code != 201 {
			t.Fatalf("deposit: %d %v", code, err)
		}
		ids = append(ids, acc.ID)
	}
	return ids
}

// submitter sends transfers between accounts from several goroutines and
// records the ids the gateway accepted (202).
type submitter struct {
	mu       sync.Mutex
	accepted []string
	count    atomic.Int64
	stop     chan struct{}
	wg       sync.WaitGroup
}

func submit(base string, accounts []string, clients int) *submitter {
	s := &submitter{stop: make(chan struct{})}
	for c := range clients {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for {
				select {
				case <-s.stop:
					return
				default:
				}
				from := accounts[rng.IntN(len(accounts))]
				to := accounts[rng.IntN(len(accounts))]
				if from == to {
					continue
				}
				id := uuid.NewString()
				amount := fmt.Sprintf("%d.%02d", 1+rng.IntN(40), rng.IntN(100))
				code, err := call("POST", base+"/v1/transfers", map[string]string{
					"id": id, "from_account_id": from, "to_account_id": to, "amount": amount, "currency": "USD",
				}, nil)
				switch {
				case err == nil && code == 202:
					s.mu.Lock()
					s.accepted = append(s.accepted, id)
					s.mu.Unlock()
					s.count.Add(1)
				case err != nil:
					// The server is going away; a refused connection
					// would spin, so pause a moment.
					select {
					case <-s.stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}
		}()
	}
	return s
}

func (s *submitter) finish() []string {
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.accepted...)
}

// waitAccepted waits until n requests have been accepted.
func (s *submitter) waitAccepted(t *testing.T, n int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for s.count.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d transfers accepted within %s", s.count.Load(), n, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkBooks waits until every accepted id has its outcome in the database,
// then checks that each has exactly one, that applied transfers have both
// entries, and that money was neither created nor lost.
func checkBooks(t *testing.T, db string, accepted []string, wantTotal decimal.Decimal) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	ids := make([]uuid.UUID, len(accepted))
	for i, s := range accepted {
		ids[i] = uuid.MustParse(s)
	}
	deadline := time.Now().Add(time.Minute)
	var decided int
	for {
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM transfers WHERE id = ANY($1)", ids).Scan(&decided); err != nil {
			t.Fatal(err)
		}
		if decided == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d accepted transfers have an outcome after restart", decided, len(ids))
		}
		time.Sleep(50 * time.Millisecond)
	}

	var badEntries int
	if err := conn.QueryRow(ctx, `
		SELECT count(*) FROM (
			SELECT t.id, t.kind, t.status, t.from_account, t.to_account, count(e.transfer_id) AS n
			FROM transfers t LEFT JOIN entries e ON e.transfer_id = t.id
			GROUP BY t.id, t.kind, t.status, t.from_account, t.to_account) x
		WHERE (status = 'applied' AND kind IN ('hold', 'void') AND n <> 0)
		   OR (status = 'applied' AND kind NOT IN ('hold', 'void') AND n <> (from_account IS NOT NULL)::int + (to_account IS NOT NULL)::int)
		   OR (status = 'rejected' AND n <> 0)`).Scan(&badEntries); err != nil {
		t.Fatal(err)
	}
	if badEntries != 0 {
		t.Errorf("%d transfers have the wrong number of entries", badEntries)
	}

	var balances, deposits decimal.Decimal
	var negative int
	if err := conn.QueryRow(ctx, "SELECT coalesce(sum(balance), 0), count(*) FILTER (WHERE balance < 0) FROM accounts WHERE currency = 'USD'").Scan(&balances, &negative); err != nil {
		t.Fatal(err)
	}
	// Money enters without a sender (deposits, reversed withdrawals) and
	// leaves without a receiver (withdrawals, reversed deposits).
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum(CASE WHEN from_account IS NULL THEN amount ELSE -amount END), 0)
		FROM transfers WHERE status = 'applied' AND kind NOT IN ('hold', 'void')
		AND (from_account IS NULL) <> (to_account IS NULL) AND currency = 'USD'`).Scan(&deposits); err != nil {
		t.Fatal(err)
	}
	if !balances.Equal(deposits) || !balances.Equal(wantTotal) || negative != 0 {
		t.Errorf("books: balances %s, deposits-withdrawals %s, want %s; %d negative", balances, deposits, wantTotal, negative)
	}
	var applied int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM transfers WHERE id = ANY($1) AND status = 'applied'", ids).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied == 0 {
		t.Errorf("none of the %d accepted transfers was applied", len(ids))
	}
	t.Logf("%d accepted transfers: %d applied, %d rejected; total %s conserved", len(ids), applied, len(ids)-applied, balances)
}

// countDecided counts the ids that have an outcome in the database.
func countDecided(t *testing.T, db string, ids []string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM transfers WHERE id = ANY($1::uuid[])", ids).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestGracefulStop submits a stream of transfers, signals walletd mid-way,
// and checks it exits 0 within the shutdown timeout; after a restart every
// accepted transfer has exactly one outcome and the totals are conserved.
func TestGracefulStop(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			db := dbtest.URL(t)
			storeDir := t.TempDir()
			// One-request batches on one writer let a backlog build up, so
			// the stop finds requests accepted but not yet applied.
			w := startWalletd(t, db, storeDir, "--batch-size", "1", "--worker-concurrency", "1")

			accounts := fund(t, w.http, 6, "500")
			s := submit(w.http, accounts, 16)
			s.waitAccepted(t, 300, time.Minute)

			w.Signal(sig)
			// A graceful stop ends within the timeout, with status 0.
			if code := w.Wait(shutdownTimeout + 5*time.Second); code != 0 {
				t.Fatalf("exit status %d after %s", code, sig)
			}
			accepted := s.finish()
			stopped, signalled := w.Lines("stopped"), w.Lines("signal received: stopping gracefully")
			if len(stopped) != 1 || len(signalled) != 1 {
				t.Fatalf("want one signal line and one \"stopped\" line, got %d and %d", len(signalled), len(stopped))
			}
			from, _ := time.Parse(time.RFC3339Nano, signalled[0].String("time"))
			to, _ := time.Parse(time.RFC3339Nano, stopped[0].String("time"))
			t.Logf("graceful stop took %s", to.Sub(from))

			t.Logf("%d accepted before the stop; %d had no outcome yet", len(accepted), len(accepted)-countDecided(t, db, accepted))

			// Restart on the same database and JetStream store: whatever
			// was accepted but not applied is applied now.
			w2 := startWalletd(t, db, storeDir)
			checkBooks(t, db, accepted, decimal.NewFromInt(int64(len(accounts))*500))
			var tr struct {
				Status string `json:"status"`
			}
			if code, err := call("GET", w2.http+"/v1/transfers/"+accepted[len(accepted)-1], nil, &tr); err != nil || code != 200 || tr.Status == "pending" {
				t.Errorf("last accepted transfer: %d %v %q", code, err, tr.Status)
			}
			w2.Signal(syscall.SIGTERM)
			if code := w2.Wait(shutdownTimeout + 5*time.Second); code != 0 {
				t.Errorf("second run: exit status %d", code)
			}
		})
	}
}

// TestPublishBatchMin: where walletd stages its atomic batches in memory
// the gateway sends groups from natsbus.MemoryStagedBatchMin as one batch;
// staged on disk, or with --publish-batch-min given, the setting stands.
func TestPublishBatchMin(t *testing.T) {
	t.Parallel()
	inMemory := natsbus.MemoryStagedBatchMin
	if runtime.GOOS != "linux" {
		inMemory = natsbus.DefaultBatchMin // no tmpfs to stage in
	}
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"memory", nil, inMemory},
		{"disk", []string{"--nats-batch-staging", "disk"}, natsbus.DefaultBatchMin},
		{"given", []string{"--publish-batch-min", "32"}, 32},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := startWalletd(t, dbtest.URL(t), t.TempDir(), c.args...)
			ready := w.Lines("walletd ready")[0]
			if got := ready.String("publish_batch_min"); got != strconv.Itoa(c.want) {
				t.Errorf("publish_batch_min %s, want %d", got, c.want)
			}
		})
	}
}

// TestPostgresUnreachable: start-up retries the configured number of
// times, logging each attempt, then exits non-zero with a clear message.
func TestPostgresUnreachable(t *testing.T) {
	t.Parallel()
	p := proctest.Start(t, proctest.Build(t, pkg), []string{
		"--db", "postgres://postgres@127.0.0.1:1/wallet?sslmode=disable",
		"--nats-store-dir", t.TempDir(),
		"--log-format", "json",
	}, "WALLET_DB_RETRY_COUNT=3", "WALLET_DB_RETRY_TIMEOUT=20ms")
	if code := p.Wait(time.Minute); code != 1 {
		t.Fatalf("exit status %d, want 1", code)
	}
	var attempts []string
	for _, l := range p.Lines("") {
		if strings.HasPrefix(l.Msg(), "connection attempt failed") && l.String("to") == "postgres" {
			attempts = append(attempts, l.String("attempt"))
		}
	}
	if strings.Join(attempts, ",") != "1,2,3" {
		t.Errorf("logged attempts %v, want 1,2,3", attempts)
	}
	stderr := p.Stderr()
	last := stderr[len(stderr)-1]
	if !strings.HasPrefix(last, "walletd: postgres unreachable after 3 attempts") {
		t.Errorf("last line %q", last)
	}
}

// TestBadConfiguration exits with status 2 and one line naming the setting.
func TestBadConfiguration(t *testing.T) {
	t.Parallel()
	bin := proctest.Build(t, pkg)
	p := proctest.Start(t, bin, []string{"--batch-size", "0"})
	if code := p.Wait(time.Minute); code != 2 {
		t.Fatalf("exit status %d, want 2", code)
	}
	if got := p.Stderr(); len(got) != 1 || !strings.Contains(got[0], "--batch-size") {
		t.Errorf("stderr %q", got)
	}

	p = proctest.Start(t, bin, []string{"--help"}, "WALLET_NATS_PASSWORD=do-not-print-me")
	if code := p.Wait(time.Minute); code != 0 {
		t.Fatalf("--help exit status %d", code)
	}
	out := p.Stdout()
	if !strings.Contains(out, "WALLET_NATS_STORE_DIR") || !strings.Contains(out, "-dbRetryCount") || strings.Contains(out, "do-not-print-me") {
		t.Errorf("--help output:\n%s", out)
	}
}

// TestMetrics: after traffic, /metrics exposes the gateway's and the
// workers' series with non-zero values.
func TestMetrics(t *testing.T) {
	t.Parallel()
	w := startWalletd(t, dbtest.URL(t), t.TempDir())
	accounts := fund(t, w.http, 2, "10")
	// One applied and one rejected transfer, each awaited.
	for _, amount := range []string{"3", "1000"} {
		body := map[string]string{"id": uuid.NewString(), "from_account_id": accounts[0], "to_account_id": accounts[1], "amount": amount, "currency": "USD"}
		if code, err := call("POST", w.http+"/v1/transfers", body, nil, "Prefer", "wait=20"); err != nil || (code != 201 && code != 422) {
			t.Fatalf("transfer %s: %d %v", amount, code, err)
		}
	}
	// A poison message published straight to NATS is dead-lettered.
	nc, err := nats.Connect(w.nats)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish("wallet.requests."+uuid.NewString()+"."+uuid.NewString(), []byte("{not json")); err != nil {
		t.Fatal(err)
	}

	want := map[string]func(map[string]float64) bool{
		"wallet_gateway_http_request_duration_seconds_count": positive,
		"wallet_gateway_publish_duration_seconds_count":      positive,
		"wallet_worker_batch_size_count":                     positive,
		"wallet_worker_commit_seconds_count":                 positive,
		"wallet_worker_outcomes_total": func(v map[string]float64) bool {
			return v["status=applied"] > 0 && v["reason=insufficient_funds,status=rejected"] > 0
		},
		"wallet_worker_dead_letters_total": positive,
		"wallet_worker_owned_partitions":   func(v map[string]float64) bool { return v[""] == 32 },
		"wallet_worker_consumer_pending":   func(v map[string]float64) bool { return len(v) > 0 },
		"wallet_worker_redeliveries_total": func(v map[string]float64) bool { return len(v) > 0 },
	}
	// Outcomes and dead letters are counted after the commit that the
	// client's answer waits for, so poll briefly.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := scrape(t, w.http+"/metrics")
		var missing []string
		for name, ok := range want {
			if !ok(got[name]) {
				missing = append(missing, fmt.Sprintf("%s=%v", name, got[name]))
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics missing or zero: %v", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func positive(v map[string]float64) bool {
	var sum float64
	for _, x := range v {
		sum += x
	}
	return sum > 0
}

// scrape reads /metrics into name -> "label=value,..." -> value, with
// histograms as their _count and _sum.
func scrape(t *testing.T, url string) map[string]map[string]float64 {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	add := func(name, labels string, v float64) {
		if out[name] == nil {
			out[name] = map[string]float64{}
		}
		out[name][labels] += v
	}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				if (l.GetName() == "status" || l.GetName() == "reason") && l.GetValue() != "" {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
			}
			slices.Sort(labels)
			key := strings.Join(labels, ",")
			switch {
			case m.GetHistogram() != nil:
				add(name+"_count", key, float64(m.GetHistogram().GetSampleCount()))
				add(name+"_sum", key, m.GetHistogram().GetSampleSum())
			case m.GetCounter() != nil:
				add(name, key, m.GetCounter().GetValue())
			case m.GetGauge() != nil:
				add(name, key, m.GetGauge().GetValue())
			}
		}
	}
	return out
}

// TestExternalNATS: with --nats-url walletd uses that server and starts
// none of its own. Credentials in the URL (the test server ignores them)
// are masked wherever walletd prints it.
func TestExternalNATS(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	withCreds := strings.Replace(ns.URL(), "nats://", "nats://wallet:hunter2@", 1)
	p := proctest.Start(t, proctest.Build(t, pkg), []string{
		"--db", dbtest.URL(t), "--port", "0", "--log-format", "json", "--nats-url", withCreds,
	})
	ready := p.WaitLog("walletd ready", 2*time.Minute)
	masked := strings.Replace(ns.URL(), "nats://", "nats://wallet:xxxxx@", 1)
	if ready.String("nats") != masked || ready.String("embedded_nats") != "false" {
		t.Fatalf("ready line: %v", ready)
	}
	if out := p.Stdout() + strings.Join(p.Stderr(), "\n"); strings.Contains(out, "hunter2") {
		t.Fatalf("the NATS password was printed:\n%s", out)
	}
	if len(p.Lines("embedded nats started")) != 0 {
		t.Error("an embedded server was started")
	}
	fund(t, ready.String("http"), 1, "1.5")
}

// TestOriginalScenario: walletd serves the 2020 API as the original did.
func TestOriginalScenario(t *testing.T) {
	t.Parallel()
	w := startWalletd(t, dbtest.URL(t), t.TempDir())
	legacytest.PlayOriginalScenario(t, w.http)
}
