package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/transfer"
	"github.com/wallet/wallet/internal/worker"
)

// harness is one gateway on its own database and JetStream server.
type harness struct {
	t     *testing.T
	g     *Gateway
	store *postgres.Store
	nats  *natstest.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	queue *natstest.Producer
	reg   *prometheus.Registry
}

func setup(t *testing.T, cfg Config) *harness {
	t.Helper()
	return setupStreams(t, cfg, natsbus.Config{Partitions: 4})
}

// setupStreams is setup with the given stream settings.
func setupStreams(t *testing.T, cfg Config, streams natsbus.Config) *harness {
	t.Helper()
	h := &harness{t: t, store: dbtest.NewStore(t), nats: natstest.Start(t), reg: prometheus.NewRegistry()}
	h.nc, h.js = h.nats.Setup(t, streams)
	h.queue = h.nats.StartProducer(t, natsbus.BatcherConfig{})
	var err error
	if h.g, err = New(cfg, h.store, h.queue, zap.NewNop(), h.reg); err != nil {
		t.Fatal(err)
	}
	return h
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// reply is a response with its body read and, when JSON, decoded.
type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r reply) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

// do sends a request through app.Test. A body gets Content-Type
// application/json unless headers set one; headers are name, value pairs.
func (h *harness) do(method, path, body string, headers ...string) reply {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := h.g.App().Test(req, -1)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode, header: resp.Header}
	if r.raw, err = io.ReadAll(resp.Body); err != nil {
		h.t.Fatal(err)
	}
	if strings.Contains(resp.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(r.raw, &r.body); err != nil {
			h.t.Fatalf("%s %s: body %q: %v", method, path, r.raw, err)
		}
	}
	return r
}

// expect checks a reply's status and, for a problem, its code.
func expect(t *testing.T, r reply, status int, code transfer.Code) {
	t.Helper()
	if err := checkProblem(r, status, code); err != nil {
		t.Fatal(err)
	}
}

// checkProblem checks a reply's status and, when code is set, that it is a
// complete problem document with that code.
func checkProblem(r reply, status int, code transfer.Code) error {
	if r.status != status {
		return fmt.Errorf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if code == "" {
		return nil
	}
	if ct := r.header.Get("Content-Type"); ct != problemContentType {
		return fmt.Errorf("content type %q, want %q: %s", ct, problemContentType, r.raw)
	}
	if got := r.str("code"); got != string(code) {
		return fmt.Errorf("code %q, want %q: %s", got, code, r.raw)
	}
	if r.str("type") != problemTypePrefix+string(code) || r.str("title") == "" || r.str("detail") == "" ||
		r.body["status"] != float64(status) || r.str("trace_id") == "" {
		return fmt.Errorf("incomplete problem: %s", r.raw)
	}
	return nil
}

// listen serves the gateway on a local port until the test ends and
// returns its base URL.
func (h *harness) listen() string {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.g.Listener(ln) }()
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.g.Shutdown(ctx); err != nil {
			h.t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			h.t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// requests counts the messages in the requests stream.
func (h *harness) requests() uint64 {
	h.t.Helper()
	s, err := h.js.Stream(testCtx(h.t), natsbus.RequestsStream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(testCtx(h.t))
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Msgs
}

// transfers counts the decided transfers in the database.
func (h *harness) transfers() int {
	h.t.Helper()
	var n int
	if err := h.store.Pool().QueryRow(testCtx(h.t), "SELECT count(*) FROM transfers").Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// apply decides requests straight through the store, for tests that need
// decided ids without a worker.
func (h *harness) apply(reqs ...transfer.Request) []transfer.Outcome {
	h.t.Helper()
	out, err := h.store.ApplyBatch(testCtx(h.t), reqs)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// account creates an account through the store and funds it with a
// deposit applied through the store.
func (h *harness) account(currency, funds string) uuid.UUID {
	h.t.Helper()
	id := uuid.New()
	if _, _, err := h.store.CreateAccount(testCtx(h.t), id, currency); err != nil {
		h.t.Fatal(err)
	}
	if funds != "" {
		h.apply(transfer.Request{ID: uuid.New(), Kind: transfer.KindDeposit, To: id, Amount: decimal.RequireFromString(funds), Currency: currency})
	}
	return id
}

func (h *harness) balance(id uuid.UUID) string {
	h.t.Helper()
	a, err := h.store.GetAccount(testCtx(h.t), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return a.Balance.String()
}

func transferJSON(id, from, to uuid.UUID, amount, currency string) string {
	return `{"id":"` + id.String() + `","from_account_id":"` + from.String() + `","to_account_id":"` + to.String() +
		`","amount":"` + amount + `","currency":"` + currency + `"}`
}

func tokenHash(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// startWorker runs an in-process worker on its own connection until the
// test ends.
func (h *harness) startWorker() {
	h.t.Helper()
	nc, err := nats.Connect(h.nats.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		h.t.Fatal(err)
	}
	c, err := natsbus.NewConsumer(nc, natsbus.ConsumerSettings{
		Streams:       natsbus.Config{Partitions: 4},
		BatchSize:     50,
		Linger:        2 * time.Millisecond,
		AckWait:       time.Second,
		PinnedTTL:     2 * time.Second,
		Heartbeat:     100 * time.Millisecond,
		MemberTTL:     700 * time.Millisecond,
		PurgeInterval: 200 * time.Millisecond,
		StopTimeout:   20 * time.Second,
	}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		h.t.Fatal(err)
	}
	// Short, so that tests of hold timeouts wait little for the sweep.
	w, err := worker.New(c, h.store, worker.Config{ExpireInterval: 100 * time.Millisecond}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		h.t.Fatal(err)
	}
	runWorker(h.t, w, nc)
}

// runWorker runs w until the test ends, then stops it and closes nc.
func runWorker(t testing.TB, w *worker.Worker, nc *nats.Conn) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-w.Started():
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stop worker: %v", err)
		}
		nc.Close()
	})
}

// poll GETs path until cond holds or a generous deadline passes.
func (h *harness) poll(path string, cond func(reply) bool) reply {
	h.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		r := h.do("GET", path, "")
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("GET %s never reached the expected state; last: %d %s", path, r.status, r.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric reads the value of an unlabelled gauge or counter from the
// harness's registry (0 when it has no sample yet).
func (h *harness) metric(name string) float64 {
	h.t.Helper()
	families, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name || len(f.GetMetric()) == 0 {
			continue
		}
		m := f.GetMetric()[0]
		if m.GetGauge() != nil {
			return m.GetGauge().GetValue()
		}
		return m.GetCounter().GetValue()
	}
	return 0
}
