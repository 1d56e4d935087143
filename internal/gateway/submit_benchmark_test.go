package gateway

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
	"github.com/wallet/wallet/internal/transfer"
)

// BenchmarkSubmitTransfer measures POST /v1/transfers answered 202 (stored
// in the stream, not waited for) over a real listener, from concurrent
// keep-alive clients: the gateway's own work per request (decoding, the
// decided lookup, publishing through the batcher). The server skips its
// per-write sync, which would otherwise hide that work.
//
//	go test -run '^$' -bench SubmitTransfer ./internal/gateway/
func BenchmarkSubmitTransfer(b *testing.B) {
	benchSubmit(b, Config{}, nil)
}

// BenchmarkSubmitTransferTraced is BenchmarkSubmitTransfer with tracing on
// (every request sampled) and an exporter that drops the batches it is
// given: the cost of making the spans, not of shipping them.
func BenchmarkSubmitTransferTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	benchSubmit(b, Config{TracerProvider: tp}, []natsbus.Option{natsbus.WithTracing(tp)})
}

// benchSubmit runs the benchmark on a gateway built with cfg; queueOpts are
// passed to the queue.
func benchSubmit(b *testing.B, cfg Config, queueOpts []natsbus.Option) {
	store := dbtest.NewStore(b)
	srv := natstest.StartWith(b, natstest.Options{NoSync: true})
	srv.Setup(b, natsbus.Config{Partitions: 8, RequestsMaxMsgs: 10_000_000})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	queue := srv.StartProducer(b, natsbus.BatcherConfig{}, queueOpts...)
	g, err := New(cfg, store, queue, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	from, to := uuid.New(), uuid.New()
	for _, id := range []uuid.UUID{from, to} {
		if _, _, err := store.CreateAccount(ctx, id, "USD"); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := store.ApplyBatch(ctx, []transfer.Request{{ID: uuid.New(), Kind: transfer.KindDeposit, To: from,
		Amount: decimal.RequireFromString("1000"), Currency: "USD"}}); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = g.Listener(ln) }()
	defer func() { _ = g.Shutdown(context.Background()) }()
	url := "http://" + ln.Addr().String() + "/v1/transfers"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	defer client.CloseIdleConnections()

	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := transferJSON(uuid.New(), from, to, "0.01", "USD")
			resp, err := client.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Errorf("status %d, want 202", resp.StatusCode)
				return
			}
		}
	})
}
