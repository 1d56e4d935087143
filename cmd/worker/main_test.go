package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/proctest"
	"github.com/wallet/wallet/internal/transfer"
)

func TestMain(m *testing.M) { proctest.Main(m) }

const pkg = "github.com/wallet/wallet/cmd/worker"

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWorkerBinary runs cmd/worker against a JetStream server and a
// database: it serves its probes and metrics, applies a request published
// straight to NATS, and stops gracefully on SIGTERM.
func TestWorkerBinary(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	db := dbtest.URL(t)
	ctx := context.Background()
	store, err := postgres.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	p := proctest.Start(t, proctest.Build(t, pkg), []string{
		"--db", db, "--nats-url", ns.URL(), "--metrics-port", "0", "--log-format", "json",
		"--partitions", "8", "--shutdown-timeout", "10s",
	})
	ready := p.WaitLog("worker ready", 2*time.Minute)
	_, port, err := net.SplitHostPort(ready.String("metrics_addr"))
	if err != nil {
		t.Fatalf("metrics_addr %q: %v", ready.String("metrics_addr"), err)
	}
	base := "http://127.0.0.1:" + port
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz %d %s", code, body)
	}
	// The image has no shell: the binary checks itself for Compose.
	if out, err := healthcheck(t, "--metrics-port", port); err != nil {
		t.Errorf("worker healthcheck on a ready worker: %v %s", err, out)
	}

	// A deposit published by a producer with nothing but a NATS client.
	account := uuid.New()
	if _, _, err := store.CreateAccount(ctx, account, "USD"); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := natsbus.RequestMsg(transfer.Request{ID: uuid.New(), Kind: transfer.KindDeposit, To: account,
		Amount: decimal.RequireFromString("12.34"), Currency: "USD"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		a, err := store.GetAccount(ctx, account)
		if err != nil {
			t.Fatal(err)
		}
		if a.Balance.Equal(decimal.RequireFromString("12.34")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deposit not applied: balance %s", a.Balance)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The outcome is counted just after the commit the balance shows, so
	// poll the metrics briefly.
	want := []string{
		"wallet_worker_owned_partitions 8",
		`wallet_worker_outcomes_total{reason="",status="applied"} 1`,
		"wallet_worker_batch_size_count 1",
		"go_goroutines ",
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		_, metrics := get(t, base+"/metrics")
		var missing []string
		for _, w := range want {
			if !strings.Contains(metrics, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q", missing)
		}
		time.Sleep(50 * time.Millisecond)
	}

	p.Signal(syscall.SIGTERM)
	if code := p.Wait(15 * time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM", code)
	}
	if out, err := healthcheck(t, "--metrics-port", port); err == nil {
		t.Errorf("worker healthcheck passed on a stopped worker: %s", out)
	}
	if p.Lines("worker stopped") == nil {
		t.Error("no \"worker stopped\" line")
	}
}

// TestNATSUnreachable: the worker retries NATS the configured number of
// times, then exits non-zero naming it.
func TestNATSUnreachable(t *testing.T) {
	t.Parallel()
	p := proctest.Start(t, proctest.Build(t, pkg), []string{
		"--db", dbtest.URL(t), "--nats-url", "nats://127.0.0.1:1", "--metrics-port", "0",
		"--nats-retry-count", "2", "--nats-retry-timeout", "10ms", "--log-format", "json",
	})
	if code := p.Wait(time.Minute); code != 1 {
		t.Fatalf("exit status %d, want 1", code)
	}
	if n := len(p.Lines("connection attempt failed: retrying")) + len(p.Lines("connection attempt failed: giving up")); n != 2 {
		t.Errorf("%d attempts logged, want 2", n)
	}
	stderr := p.Stderr()
	if last := stderr[len(stderr)-1]; !strings.HasPrefix(last, "worker: nats unreachable after 2 attempts") {
		t.Errorf("last line %q", last)
	}
}

// healthcheck runs the binary's healthcheck subcommand with args and an
// empty environment.
func healthcheck(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(proctest.Build(t, pkg), append([]string{"healthcheck"}, args...)...)
	cmd.Env = []string{}
	return cmd.CombinedOutput()
}
