package natsbus_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
	"github.com/wallet/wallet/internal/transfer"
)

// BenchmarkLookupPending measures the gateway's "is it pending?" lookup: a
// wildcard last-by-subject direct get on wallet.requests.*.<id>.* in a
// stream holding many distinct request subjects (100,000 by default;
// WALLET_BENCH_PENDING_SUBJECTS changes it).
func BenchmarkLookupPending(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("WALLET_BENCH_PENDING_SUBJECTS")); err == nil && v > 0 {
		n = v
	}
	srv := natstest.StartWith(b, natstest.Options{NoSync: true})
	_, js := srv.Setup(b, natsbus.Config{Partitions: 32, RequestsMaxMsgs: int64(n) + 1000})
	c := testCtxB(b)
	bus, err := natsbus.Open(c, js)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]uuid.UUID, 0, 1024)
	for i := 0; i < n; i++ {
		r := transfer.Request{ID: uuid.New(), Kind: transfer.KindDeposit, To: uuid.New(),
			Amount: decimal.NewFromInt(1), Currency: "USD"}
		msg, err := natsbus.RequestMsg(r, "")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishMsgAsync(msg); err != nil {
			b.Fatal(err)
		}
		if i%4000 == 3999 {
			<-js.PublishAsyncComplete()
		}
		if len(ids) < cap(ids) && i%(n/cap(ids)+1) == 0 {
			ids = append(ids, r.ID)
		}
	}
	<-js.PublishAsyncComplete()
	b.Run("hit", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, found, err := bus.LookupPending(c, ids[i%len(ids)]); err != nil || !found {
				b.Fatalf("lookup: found=%v err=%v", found, err)
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		for b.Loop() {
			if _, found, err := bus.LookupPending(c, uuid.New()); err != nil || found {
				b.Fatalf("lookup: found=%v err=%v", found, err)
			}
		}
	})
}
