package gateway

import (
	"context"

	"github.com/wallet/wallet/internal/natsbus"
)

// Pipeline implements Ops.
func (b *NATSBus) Pipeline(ctx context.Context) (natsbus.Pipeline, error) {
	return natsbus.ReadPipeline(ctx, b.js)
}

// DeadLetters implements Ops.
func (b *NATSBus) DeadLetters(ctx context.Context, before uint64, limit int) ([]natsbus.DeadLetter, uint64, error) {
	return natsbus.ListDeadLetters(ctx, b.js, before, limit)
}

// DeadLetter implements Ops.
func (b *NATSBus) DeadLetter(ctx context.Context, seq uint64) (natsbus.DeadLetter, error) {
	return natsbus.GetDeadLetter(ctx, b.js, seq)
}
