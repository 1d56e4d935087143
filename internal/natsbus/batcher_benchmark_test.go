package natsbus_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
)

// BenchmarkPublishRequest compares one PubAck per request with the
// batcher (groups of at least MinMessages as atomic batches, or every
// group), from as many concurrent publishers as a busy gateway has
// handlers, on a server that syncs before every PubAck as production does.
func BenchmarkPublishRequest(b *testing.B) {
	modes := []struct {
		name     string
		minBatch int // 0: no batcher
	}{{"single", 0}, {"batcher", natsbus.DefaultBatchMin}, {"batcher-all", 2}}
	for _, par := range []int{8, 64} {
		for _, mode := range modes {
			b.Run(fmt.Sprintf("%s/publishers=%dxGOMAXPROCS", mode.name, par), func(b *testing.B) {
				srv := natstest.Start(b)
				nc, js := srv.Setup(b, natsbus.Config{Partitions: 8})
				c := testCtxB(b)
				var opts []natsbus.Option
				if mode.minBatch > 0 {
					bt, err := natsbus.NewBatcher(nc, natsbus.BatcherConfig{Stream: natsbus.RequestsStream, MinMessages: mode.minBatch})
					if err != nil {
						b.Fatal(err)
					}
					defer runBatcher(b, bt)()
					opts = append(opts, natsbus.WithBatcher(bt))
				}
				bus, err := natsbus.Open(c, js, opts...)
				if err != nil {
					b.Fatal(err)
				}
				b.SetParallelism(par)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := bus.PublishRequest(context.WithoutCancel(c), sampleTransfer(), ""); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
