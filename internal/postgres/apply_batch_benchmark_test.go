package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/transfer"
)

// BenchmarkApplyBatch reports transfers applied per second for batch sizes
// 1 (one transaction per transfer, the original design) to 512, with one and
// four concurrent writers, over 10,000 funded accounts chosen uniformly.
func BenchmarkApplyBatch(b *testing.B) {
	s := dbtest.NewStore(b)
	ctx := context.Background()
	const nAccounts = 10_000
	accounts := make([]uuid.UUID, nAccounts)
	for i := range accounts {
		accounts[i] = uuid.New()
	}
	if _, err := s.Pool().Exec(ctx, `INSERT INTO accounts (id, currency, balance)
		SELECT id, 'USD', 1000000 FROM unnest($1::uuid[]) AS id`, accounts); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `ANALYZE accounts`); err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{1, 64, 512} {
		for _, writers := range []int{1, 4} {
			b.Run(fmt.Sprintf("batch=%d/writers=%d", size, writers), func(b *testing.B) {
				per := (b.N + writers - 1) / writers
				var wg sync.WaitGroup
				errs := make(chan error, writers)
				b.ResetTimer()
				start := time.Now()
				for w := 0; w < writers; w++ {
					wg.Add(1)
					go func(seed uint64) {
						defer wg.Done()
						r := rand.New(rand.NewPCG(seed, uint64(size)))
						batch := make([]transfer.Request, size)
						for n := 0; n < per; n++ {
							for i := range batch {
								from := r.IntN(nAccounts)
								to := (from + 1 + r.IntN(nAccounts-1)) % nAccounts
								batch[i] = transfer.Request{ID: uuid.New(), Kind: transfer.KindTransfer,
									From: accounts[from], To: accounts[to], Amount: dec("1.25"), Currency: "USD"}
							}
							if _, err := s.ApplyBatch(ctx, batch); err != nil {
								errs <- err
								return
							}
						}
					}(uint64(w) + 1)
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				b.ReportMetric(float64(per*writers*size)/elapsed.Seconds(), "transfers/s")
			})
		}
	}
}

// BenchmarkApplyBatchHolds reports requests applied per second for batches
// of holds and posts, one writer: half of each batch holds, half posts the
// holds of the batch before. Posts name holds, not accounts, so these
// batches make the extra round trip that reads the holds' accounts; compare
// with BenchmarkApplyBatch's writers=1 figures.
func BenchmarkApplyBatchHolds(b *testing.B) {
	s := dbtest.NewStore(b)
	ctx := context.Background()
	const nAccounts = 10_000
	accounts := make([]uuid.UUID, nAccounts)
	for i := range accounts {
		accounts[i] = uuid.New()
	}
	if _, err := s.Pool().Exec(ctx, `INSERT INTO accounts (id, currency, balance)
		SELECT id, 'USD', 1000000 FROM unnest($1::uuid[]) AS id`, accounts); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `ANALYZE accounts`); err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{64, 512} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, uint64(size)))
			var held []uuid.UUID
			b.ResetTimer()
			start := time.Now()
			for n := 0; n < b.N; n++ {
				batch := make([]transfer.Request, 0, size)
				for _, id := range held {
					batch = append(batch, transfer.Request{ID: uuid.New(), Kind: transfer.KindPost, HoldID: id, Amount: dec("1")})
				}
				held = held[:0]
				for len(batch) < size {
					from := r.IntN(nAccounts)
					to := (from + 1 + r.IntN(nAccounts-1)) % nAccounts
					req := transfer.Request{ID: uuid.New(), Kind: transfer.KindHold, From: accounts[from], To: accounts[to],
						Amount: dec("1.25"), Currency: "USD", Timeout: time.Hour}
					held = append(held, req.ID)
					batch = append(batch, req)
				}
				if len(held) > size/2 {
					held = held[:size/2]
				}
				out, err := s.ApplyBatch(ctx, batch)
				if err != nil {
					b.Fatal(err)
				}
				for i, o := range out {
					if o.Status() != transfer.StatusApplied {
						b.Fatalf("request %d (%s): %s", i, batch[i].Kind, o.Reason())
					}
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N*size)/elapsed.Seconds(), "requests/s")
		})
	}
}
