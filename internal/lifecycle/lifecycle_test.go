package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wallet/wallet/internal/config"
	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/gateway"
	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/worker"
)

func TestRetryGivesUpAfterTheConfiguredAttempts(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.InfoLevel)
	var calls atomic.Int32
	boom := errors.New("connection refused")
	_, err := Retry(context.Background(), zap.New(core), "postgres", 4, time.Millisecond, func(context.Context) (int, error) {
		calls.Add(1)
		return 0, boom
	})
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "postgres unreachable after 4 attempts") {
		t.Errorf("message %q", err)
	}
	if calls.Load() != 4 {
		t.Errorf("connect called %d times, want 4", calls.Load())
	}
	attempts := logs.FilterMessageSnippet("connection attempt failed").All()
	if len(attempts) != 4 {
		t.Fatalf("%d attempt log lines, want 4", len(attempts))
	}
	for i, e := range attempts {
		if got := e.ContextMap()["attempt"]; got != int64(i+1) {
			t.Errorf("line %d: attempt = %v", i, got)
		}
	}
}

func TestRetrySucceedsOnALaterAttempt(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	v, err := Retry(context.Background(), zap.NewNop(), "nats", 5, time.Millisecond, func(context.Context) (string, error) {
		if calls.Add(1) < 3 {
			return "", errors.New("not yet")
		}
		return "conn", nil
	})
	if err != nil || v != "conn" || calls.Load() != 3 {
		t.Fatalf("v=%q err=%v calls=%d", v, err, calls.Load())
	}
}

func TestRetryStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	_, err := Retry(ctx, zap.NewNop(), "postgres", 100, time.Hour, func(context.Context) (int, error) {
		calls.Add(1)
		cancel()
		return 0, errors.New("down")
	})
	if !errors.Is(err, context.Canceled) || calls.Load() != 1 {
		t.Fatalf("err=%v calls=%d", err, calls.Load())
	}
}

func TestReport(t *testing.T) {
	t.Parallel()
	_, cfgErr := config.Load(config.Gateway, []string{"--port", "x"}, nil)
	_, unknown := LoadConfig(config.Gateway, []string{"--nope"})
	for _, tc := range []struct {
		err    error
		status int
		out    string
		stderr string
	}{
		{nil, 0, "", ""},
		{config.ErrHelp, 0, "WALLET_PORT", ""},
		{cfgErr, 2, "", "gateway: invalid configuration: flag --port \"x\""},
		{unknown, 2, "", "gateway: invalid configuration: flag provided but not defined: -nope"},
		{fmt.Errorf("start: %w", errors.New("boom")), 1, "", "gateway: start: boom"},
	} {
		var out, errOut bytes.Buffer
		if got := report(config.Gateway, tc.err, &out, &errOut); got != tc.status {
			t.Errorf("%v: status %d, want %d", tc.err, got, tc.status)
		}
		if !strings.Contains(out.String(), tc.out) || (tc.out == "" && out.Len() > 0) {
			t.Errorf("%v: stdout %q", tc.err, out.String())
		}
		if !strings.HasPrefix(errOut.String(), tc.stderr) || strings.Count(errOut.String(), "\n") > 1 {
			t.Errorf("%v: stderr %q", tc.err, errOut.String())
		}
	}
}

func TestOpsHandler(t *testing.T) {
	t.Parallel()
	var dbDown atomic.Bool
	r := NewReadiness(Check{Name: "postgres", Probe: func(context.Context) error {
		if dbDown.Load() {
			return errors.New("down")
		}
		return nil
	}})
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "wallet_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)

	srv, err := Listen("ops", "127.0.0.1:0", OpsHandler(r, reg))
	if err != nil {
		t.Fatal(err)
	}
	srv.Start(zap.NewNop())
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("readyz before start-up completes: %d", code)
	}
	r.SetReady(true)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("readyz when ready: %d", code)
	}
	dbDown.Store(true)
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "postgres") {
		t.Errorf("readyz with postgres down: %d %q", code, body)
	}
	dbDown.Store(false)
	r.SetReady(false)
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("readyz during shutdown: %d", code)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "wallet_test_total 3") {
		t.Errorf("metrics %d %q", code, body)
	}
}

func TestDebugHandler(t *testing.T) {
	t.Parallel()
	srv, err := Listen("debug", "127.0.0.1:0", DebugHandler())
	if err != nil {
		t.Fatal(err)
	}
	srv.Start(zap.NewNop())
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	resp, err := http.Get("http://" + srv.Addr() + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "goroutine profile") {
		t.Errorf("pprof: %d %.80q", resp.StatusCode, b)
	}
}

// TestOnSignals is not parallel: it replaces exit and signals the test
// process itself (which OnSignals has taken over for these signals).
func TestOnSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			exited := make(chan int, 1)
			exit = func(code int) { exited <- code }
			t.Cleanup(func() { exit = osExit })

			ctx, stop := OnSignals(context.Background(), zap.NewNop(), time.Hour)
			defer stop()
			if err := syscall.Kill(syscall.Getpid(), sig); err != nil {
				t.Fatal(err)
			}
			<-ctx.Done() // the first signal starts the graceful stop
			select {
			case code := <-exited:
				t.Fatalf("exited with %d after one signal", code)
			default:
			}
			if err := syscall.Kill(syscall.Getpid(), sig); err != nil {
				t.Fatal(err)
			}
			if code := <-exited; code != 1 {
				t.Errorf("second signal: exit %d, want 1", code)
			}
		})
	}
}

func TestOnSignalsWatchdog(t *testing.T) {
	exited := make(chan int, 1)
	exit = func(code int) { exited <- code }
	t.Cleanup(func() { exit = osExit })

	ctx, stop := OnSignals(context.Background(), zap.NewNop(), time.Millisecond)
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-ctx.Done()
	// Nothing stops the program, so the watchdog must end it.
	if code := <-exited; code != 1 {
		t.Errorf("watchdog exit %d, want 1", code)
	}
}

func TestNewLogger(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"json", "console"} {
		if _, err := NewLogger("debug", f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := NewLogger("loud", "json"); err == nil {
		t.Error("bad level accepted")
	}
	if _, err := NewLogger("info", "xml"); err == nil {
		t.Error("bad format accepted")
	}
}

func TestRetryStopsAtAPermanentError(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	missing := errors.New(`database "nope" does not exist`)
	_, err := Retry(context.Background(), zap.NewNop(), "postgres", 10, time.Hour, func(context.Context) (int, error) {
		calls.Add(1)
		return 0, Permanent(missing)
	})
	if !errors.Is(err, missing) || errors.Is(err, ErrUnreachable) || calls.Load() != 1 {
		t.Fatalf("err=%v calls=%d", err, calls.Load())
	}
}

// TestOpenStoreMissingDatabase: without --create-db a database that does
// not exist fails start-up at once, saying what to do, rather than after
// minutes of back-off.
func TestOpenStoreMissingDatabase(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/wallet_missing_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	cfg := &config.Config{DB: u.String(), DBRetryCount: 10, DBRetryTimeout: time.Hour}
	_, err = OpenStore(context.Background(), zap.NewNop(), cfg)
	if err == nil || !strings.Contains(err.Error(), "--create-db") || errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v", err)
	}
}

// TestOpenStoreWarnsWhenAutovacuumIsOff: the warning appears exactly when
// the server has autovacuum off (as the development machine's has).
func TestOpenStoreWarnsWhenAutovacuumIsOff(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.WarnLevel)
	cfg := &config.Config{DB: dbtest.URL(t), DBRetryCount: 1, DBRetryTimeout: time.Second}
	store, err := OpenStore(context.Background(), zap.New(core), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	on, err := store.Autovacuum(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	warned := logs.FilterMessageSnippet("autovacuum is off").Len() == 1
	if warned != (on == "off") {
		t.Fatalf("autovacuum %s, warned %v", on, warned)
	}
}

// TestConfigDefaultsMatchThePackages: the settings' defaults are written in
// the config package, which depends on nothing; they must stay the
// defaults the worker and natsbus packages document and were measured
// with.
func TestConfigDefaultsMatchThePackages(t *testing.T) {
	t.Parallel()
	for _, p := range []config.Program{config.Walletd, config.Gateway, config.Worker} {
		cfg := config.Defaults(p)
		w, c, s, b, g := WorkerConfig(&cfg), ConsumerSettings(&cfg), Streams(&cfg), BatcherConfig(&cfg), GatewayConfig(&cfg)
		got := []any{c.BatchSize, c.Linger, w.Concurrency, c.AckWait, c.PinnedTTL,
			s.Partitions, s.Duplicates, b.MinMessages, b.MaxMessages, g.MaxWaiters}
		want := []any{natsbus.DefaultConsumerBatch, natsbus.DefaultConsumerLinger, worker.DefaultConcurrency, natsbus.DefaultAckWait, natsbus.DefaultPinnedTTL,
			natsbus.DefaultPartitions, natsbus.DefaultDuplicates, natsbus.DefaultBatchMin, natsbus.DefaultBatchMessages, gateway.DefaultMaxWaiters}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: default %d is %v, the package's is %v", p, i, got[i], want[i])
			}
		}
	}
}

func TestAwaitSchemaWaitsForTheMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.EmptyURL(t)
	store, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	need, err := postgres.RequiredSchemaVersion()
	if err != nil {
		t.Fatal(err)
	}

	// Nothing migrated and no time to wait: a clear error, at once.
	core, logs := observer.New(zap.InfoLevel)
	err = AwaitSchema(ctx, zap.New(core), store, 0)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("database schema is at version 0, this build needs %d", need)) {
		t.Fatalf("err = %v", err)
	}

	// The migrations land while it waits: it returns once they have.
	done := make(chan error, 1)
	go func() { done <- AwaitSchema(ctx, zap.New(core), store, time.Minute) }()
	for logs.FilterMessageSnippet("waiting for the database schema").Len() < 2 {
		select {
		case err := <-done:
			t.Fatalf("returned before the migrations ran: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after the migrations: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still waiting 30s after the migrations ran")
	}
	line := logs.FilterMessageSnippet("waiting for the database schema").All()[0].ContextMap()
	if line["have"] != int64(0) || line["need"] != need {
		t.Errorf("wait log line %v; want have 0, need %d", line, need)
	}
	if logs.FilterMessage("database schema ready").Len() != 1 {
		t.Error("no \"database schema ready\" line after the wait")
	}

	// Interrupted by a signal while waiting: it stops at once.
	empty, err := postgres.Open(ctx, dbtest.EmptyURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := AwaitSchema(cctx, zap.NewNop(), empty, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	status.Store(http.StatusOK)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(status.Load())) })
	srv := httptest.NewServer(mux)
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	check := func(p config.Program, args ...string) (int, string) {
		var stderr bytes.Buffer
		code := Healthcheck(p, args, &stderr)
		return code, stderr.String()
	}
	gw := []string{"--port", strconv.Itoa(port)}
	wk := []string{"--metrics-port", strconv.Itoa(port)}
	if code, msg := check(config.Gateway, gw...); code != 0 {
		t.Errorf("gateway ready: exit %d, %s", code, msg)
	}
	if code, msg := check(config.Worker, wk...); code != 0 {
		t.Errorf("worker ready: exit %d, %s", code, msg)
	}
	// The worker is checked on its metrics port, not on --port.
	if code, _ := check(config.Worker, "--metrics-port", "1"); code != 1 {
		t.Errorf("worker checked on a closed port: exit %d, want 1", code)
	}

	status.Store(http.StatusServiceUnavailable)
	if code, msg := check(config.Gateway, gw...); code != 1 || !strings.Contains(msg, "503") {
		t.Errorf("gateway unready: exit %d, %q; want 1 and the status", code, msg)
	}

	srv.Close()
	if code, msg := check(config.Gateway, gw...); code != 1 || !strings.Contains(msg, "refused") {
		t.Errorf("nothing listening: exit %d, %q; want 1 and the reason", code, msg)
	}
	if code, msg := check(config.Gateway, "--port", "0"); code != 2 || !strings.Contains(msg, "port is 0") {
		t.Errorf("port 0: exit %d, %q; want 2", code, msg)
	}
	if code, _ := check(config.Gateway, "--port", "http"); code != 2 {
		t.Errorf("invalid port: exit %d, want 2", code)
	}
}

// TestDebugHandlerHidesCommandLine: pprof's /debug/pprof/cmdline would show
// every flag, secrets included; the debug server does not serve it.
func TestDebugHandlerHidesCommandLine(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	DebugHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/cmdline", nil))
	if strings.Contains(rec.Body.String(), os.Args[0]) {
		t.Fatalf("cmdline served: %d %q", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	DebugHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/goroutine?debug=1", nil))
	if rec.Code != 200 {
		t.Fatalf("profiles are still served: %d", rec.Code)
	}
}

// TestNATSLogLinesHideCredentials: a token given as the URL's user name
// (which the test server ignores) appears in no log line, neither when
// connecting nor when reconnecting.
func TestNATSLogLinesHideCredentials(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	core, logs := observer.New(zap.InfoLevel)
	cfg := config.Defaults(config.Gateway)
	url := strings.Replace(ns.URL(), "nats://", "nats://hunter2@", 1)
	nc, err := ConnectNATS(t.Context(), zap.New(core), &cfg, url, "test", natsbus.RoleProducer)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ns.Shutdown()
	ns.Restart()
	deadline := time.Now().Add(30 * time.Second)
	for logs.FilterMessage("nats reconnected").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("never reconnected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, e := range logs.All() {
		for k, v := range e.ContextMap() {
			if strings.Contains(fmt.Sprint(v), "hunter2") {
				t.Errorf("%q logs %s=%v", e.Message, k, v)
			}
		}
	}
}
