package lifecycle

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/postgres"
)

// schemaPoll is the first pause between two looks at the schema version; it
// doubles up to schemaPollMax.
const (
	schemaPoll    = 250 * time.Millisecond
	schemaPollMax = 5 * time.Second
)

// AwaitSchema returns once the database holds at least the schema version
// this build needs, looking again for up to wait. A gateway or worker that
// starts before the migrations ran (Kubernetes creates the migration and the
// Deployments at once; Compose may be started without its migrate service)
// waits here, saying what for, instead of failing on a missing table.
func AwaitSchema(ctx context.Context, log *zap.Logger, store *postgres.Store, wait time.Duration) error {
	need, err := postgres.RequiredSchemaVersion()
	if err != nil {
		return err
	}
	start := time.Now()
	pause := schemaPoll
	for attempt := 1; ; attempt++ {
		have, err := store.SchemaVersion(ctx)
		if err == nil && have >= need {
			if attempt > 1 {
				log.Info("database schema ready", zap.Int64("version", have), zap.Duration("waited", time.Since(start).Round(time.Millisecond)))
			}
			return nil
		}
		waited := time.Since(start)
		if waited+pause > wait {
			if err != nil {
				return fmt.Errorf("database schema: version unknown after %s: %w", waited.Round(time.Second), err)
			}
			return fmt.Errorf("database schema is at version %d, this build needs %d: run the migrations (the migrate program) first, or raise --schema-wait (waited %s)",
				have, need, waited.Round(time.Second))
		}
		fields := []zap.Field{zap.Int64("have", have), zap.Int64("need", need), zap.Int("attempt", attempt),
			zap.Duration("waited", waited.Round(time.Millisecond)), zap.Duration("wait_limit", wait)}
		if err != nil {
			fields = append(fields, zap.Error(err))
		}
		log.Warn("waiting for the database schema: the migrations have not run yet", fields...)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("database schema: interrupted while waiting: %w", ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, schemaPollMax)
	}
}
