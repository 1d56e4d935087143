package transfer

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
)

// BenchmarkBookApply measures the pure part of applying a batch: building
// the book of the batch's accounts (as the store does after loading them)
// and deciding every request, with its fingerprint, rounding and entries.
// One op is one batch; transfers/s is the figure to compare with the
// database's, to show the domain is not what limits throughput.
//
//	go test -run '^$' -bench BookApply -benchmem ./internal/transfer/
func BenchmarkBookApply(b *testing.B) {
	const nAccounts = 10_000
	r := rand.New(rand.NewPCG(1, 2))
	accounts := make([]Account, nAccounts)
	for i := range accounts {
		accounts[i] = Account{ID: uuid.New(), Currency: "USD", Balance: dec("1000000"), Version: 1}
	}
	amounts := []string{"1.25", "10", "0.01", "99.999", "250.5"}
	for _, size := range []int{1, 64, 512} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			// A few distinct batches, so the maps are not always warm
			// with the same keys.
			const distinct = 16
			batches := make([][]Request, distinct)
			for k := range batches {
				batch := make([]Request, size)
				for i := range batch {
					from := r.IntN(nAccounts)
					to := (from + 1 + r.IntN(nAccounts-1)) % nAccounts
					batch[i] = Request{ID: uuid.New(), Kind: KindTransfer, From: accounts[from].ID, To: accounts[to].ID,
						Amount: dec(amounts[i%len(amounts)]), Currency: "usd"}
				}
				batches[k] = batch
			}
			index := make(map[uuid.UUID]int, nAccounts)
			for i, a := range accounts {
				index[a.ID] = i
			}
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				batch := batches[n%distinct]
				book := &Book{
					Precisions: precisions,
					Accounts:   make(map[uuid.UUID]*Account, 2*len(batch)),
					Decided:    make(map[uuid.UUID]Transfer),
				}
				for _, req := range batch {
					for _, id := range []uuid.UUID{req.From, req.To} {
						if _, ok := book.Accounts[id]; !ok {
							a := accounts[index[id]]
							book.Accounts[id] = &a
						}
					}
				}
				outcomes, changes := book.Apply(batch, now)
				if len(outcomes) != len(batch) || len(changes.Entries) != 2*len(batch) {
					b.Fatalf("%d outcomes, %d entries for %d transfers", len(outcomes), len(changes.Entries), len(batch))
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "transfers/s")
		})
	}
}

// BenchmarkFingerprint measures the request hash computed once per request
// of every batch.
func BenchmarkFingerprint(b *testing.B) {
	req := Request{ID: uuid.New(), Kind: KindTransfer, From: uuid.New(), To: uuid.New(), Amount: dec("100.11"), Currency: "USD"}
	b.ReportAllocs()
	for b.Loop() {
		_ = req.Fingerprint()
	}
}
