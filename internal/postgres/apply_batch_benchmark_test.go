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
