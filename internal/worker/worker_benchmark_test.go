package worker_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
	"github.com/wallet/wallet/internal/worker"
)

// BenchmarkWorkerThroughput measures how fast one worker drains a
// pre-filled requests stream into Postgres, outcomes published and acked,
// with the shipped durability (the server syncs every request before its
// PubAck). One op is one transfer between random accounts. batch=1 commits
// one transfer per transaction (the original service's shape); batch=500
// is the default.
//
//	go test -run '^$' -bench WorkerThroughput -benchtime 50000x ./internal/worker/
func BenchmarkWorkerThroughput(b *testing.B) {
	for _, bc := range []struct {
		name         string
		batch, merge int
	}{
		{"batch=1", 1, 1},
		{"batch=500", 500, worker.DefaultMaxMerge},
	} {
		b.Run(bc.name, func(b *testing.B) { benchThroughput(b, bc.batch, bc.merge) })
	}
}

func benchThroughput(b *testing.B, batch, merge int) {
	const accounts = 1000
	e := setupWith(b, func(c *config) {
		c.Streams.Partitions = natsbus.DefaultPartitions
		c.BatchSize, c.MaxMerge = batch, merge
		c.Linger = natsbus.DefaultConsumerLinger
		c.AckWait, c.PinnedTTL = natsbus.DefaultAckWait, natsbus.DefaultPinnedTTL
		c.PurgeInterval = time.Second
	})
	ids := make([]uuid.UUID, accounts)
	var funding []transfer.Request
	for i := range ids {
		ids[i] = e.account("USD")
		funding = append(funding, deposit(ids[i], "1000000", "USD"))
	}
	if _, err := e.store.ApplyBatch(ctx(b), funding); err != nil {
		b.Fatal(err)
	}
	if err := natsbus.EnsureConsumers(ctx(b), e.js, natsbus.ConsumerConfig{
		Partitions: e.cfg.Streams.Partitions, MaxAckPending: e.cfg.BatchSize, AckWait: e.cfg.AckWait, PinnedTTL: e.cfg.PinnedTTL,
	}); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		from, to := rand.IntN(accounts), rand.IntN(accounts-1)
		if to >= from {
			to++
		}
		r := transfer.Request{ID: uuid.New(), Kind: transfer.KindTransfer, From: ids[from], To: ids[to],
			Amount: decimal.RequireFromString("0.01"), Currency: "USD"}
		msg, err := natsbus.RequestMsg(r, "")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.js.PublishMsgAsync(msg); err != nil {
			b.Fatal(err)
		}
		if i%4000 == 3999 {
			<-e.js.PublishAsyncComplete()
		}
	}
	<-e.js.PublishAsyncComplete()

	results, err := e.js.Stream(ctx(b), natsbus.ResultsStream)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	w := e.startWorker(e.cfg, nil)
	for {
		info, err := results.Info(ctx(b))
		if err != nil {
			b.Fatal(err)
		}
		if info.State.Msgs >= uint64(b.N) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "transfers/s")
	b.ReportMetric(0, "ns/op")
	if n, sum := histogram(b, w.reg, "wallet_worker_batch_size"); n > 0 {
		b.ReportMetric(sum/n, "transfers/commit")
	}
	if n, sum := histogram(b, w.reg, "wallet_worker_commit_seconds"); n > 0 {
		b.ReportMetric(sum/n*1000, "ms/commit")
	}
	if got, want := e.totalBalance(ids), decimal.NewFromInt(accounts*1000000); !got.Equal(want) {
		b.Fatalf("total %s, want %s", got, want)
	}
}

// histogram returns a histogram's count and sum from reg.
func histogram(t testing.TB, reg *prometheus.Registry, name string) (count, sum float64) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				count += float64(m.GetHistogram().GetSampleCount())
				sum += m.GetHistogram().GetSampleSum()
			}
		}
	}
	return count, sum
}
