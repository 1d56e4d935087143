package natsbus_test

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
	"github.com/wallet/wallet/internal/transfer"
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
				bus, err := natsbus.Open(c, js)
				if err != nil {
					b.Fatal(err)
				}
				publish := func(ctx context.Context, r transfer.Request) error {
					_, err := bus.PublishRequest(ctx, r, "")
					return err
				}
				if mode.minBatch > 0 {
					bt, err := natsbus.NewBatcher(nc, natsbus.BatcherConfig{Stream: natsbus.RequestsStream, MinMessages: mode.minBatch})
					if err != nil {
						b.Fatal(err)
					}
					defer runBatcher(b, bt)()
					publish = func(ctx context.Context, r transfer.Request) error {
						msg, err := natsbus.RequestMsg(r, "")
						if err == nil {
							_, err = bt.Publish(ctx, msg)
						}
						return err
					}
				}
				b.SetParallelism(par)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := publish(context.WithoutCancel(c), sampleTransfer()); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkGroupPublish measures what one group of n messages costs per
// message on a stream that syncs before every acknowledgement, by the
// three ways a group can be stored: n single publishes in flight together
// (one sync each), one atomic batch (one sync, plus the staging of the
// batch: in the store's directory, or in memory as walletd stages them,
// "atomic-memory"), and one fast-ingest batch (ADR-50's allow_batched,
// nats-server 2.14+). It is the measurement behind MinMessages.
func BenchmarkGroupPublish(b *testing.B) {
	for _, mode := range []string{"singles", "atomic", "atomic-memory", "fast"} {
		for _, n := range []int{1, 2, 4, 8, 16, 32, 100} {
			if mode != "singles" && n == 1 {
				continue
			}
			b.Run(fmt.Sprintf("%s/n=%d", mode, n), func(b *testing.B) {
				srv := natstest.Start(b)
				_, js := srv.Connect(b)
				c := testCtxB(b)
				if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "GROUPS", Subjects: []string{"groups.>"},
					Storage: jetstream.FileStorage, AllowAtomicPublish: true, AllowBatchPublish: true}); err != nil {
					b.Fatal(err)
				}
				if mode == "atomic-memory" {
					staging, err := natsbus.StageBatchesInMemory(srv.StoreDir(), "GROUPS", "/dev/shm")
					if err != nil {
						b.Skipf("no memory staging here: %v", err)
					}
					b.Cleanup(func() { _ = os.RemoveAll(staging.Dir) })
				}
				group := func() []*nats.Msg {
					msgs := make([]*nats.Msg, n)
					for i := range msgs {
						msgs[i] = nats.NewMsg("groups.x")
						msgs[i].Data = make([]byte, 300)
						msgs[i].Header.Set(natsbus.HeaderMsgID, uuid.NewString())
					}
					return msgs
				}
				b.ResetTimer()
				cpu := processCPU()
				defer func() { b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/msg") }()
				for sent := 0; sent < b.N; sent += n {
					msgs := group()
					var err error
					switch mode {
					case "singles":
						futures := make([]jetstream.PubAckFuture, n)
						for i, m := range msgs {
							if futures[i], err = js.PublishMsgAsync(m); err != nil {
								b.Fatal(err)
							}
						}
						for _, f := range futures {
							select {
							case <-f.Ok():
							case err := <-f.Err():
								b.Fatal(err)
							}
						}
					case "atomic", "atomic-memory":
						_, err = jetstreamext.PublishMsgBatch(c, js, msgs, jetstreamext.BatchFlowControl{AckFirst: false})
					case "fast":
						var fp jetstreamext.FastPublisher
						if fp, err = jetstreamext.NewFastPublisher(js); err != nil {
							b.Fatal(err)
						}
						for _, m := range msgs[:n-1] {
							if _, err = fp.AddMsg(m); err != nil {
								b.Fatal(err)
							}
						}
						_, err = fp.CommitMsg(c, msgs[n-1])
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// processCPU is the CPU time this process (the embedded server and its
// clients) has used: on two cores, what a group's wall time hides.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
