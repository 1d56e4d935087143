package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/config"
)

// ErrUnreachable is wrapped by Retry's error when every attempt failed.
var ErrUnreachable = errors.New("unreachable")

// permanentError marks a failure that waiting cannot cure (a database that
// does not exist, credentials the server refused): Retry gives up on it at
// once instead of spending minutes on its back-off.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that Retry stops at it.
func Permanent(err error) error { return permanentError{err} }

// attemptTimeout bounds one connection attempt, so an address that drops
// packets costs a few seconds per attempt rather than the kernel's minutes.
func attemptTimeout(base time.Duration) time.Duration { return max(5*time.Second, base) }

// Retry calls connect until it succeeds, at most attempts times, waiting
// config.RetryWait(base, n) after failed attempt n, as the 2020 service did
// for its database. Every failure is logged with its attempt number. It
// gives up early when ctx ends (a signal during start-up) or when connect
// returns a Permanent error.
func Retry[T any](ctx context.Context, log *zap.Logger, what string, attempts int, base time.Duration, connect func(context.Context) (T, error)) (T, error) {
	var zero T
	attempts = max(attempts, 1)
	var last error
	for n := 1; n <= attempts; n++ {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout(base))
		v, err := connect(actx)
		cancel()
		if err == nil {
			if n > 1 {
				log.Info("connected", zap.String("to", what), zap.Int("attempt", n))
			}
			return v, nil
		}
		last = err
		if ctx.Err() != nil {
			return zero, fmt.Errorf("connect to %s: interrupted: %w", what, ctx.Err())
		}
		var perm permanentError
		if errors.As(err, &perm) {
			log.Error("connection attempt failed: not retrying", zap.String("to", what),
				zap.Int("attempt", n), zap.Error(perm.err))
			return zero, fmt.Errorf("connect to %s: %w", what, perm.err)
		}
		if n == attempts {
			log.Error("connection attempt failed: giving up", zap.String("to", what),
				zap.Int("attempt", n), zap.Int("attempts", attempts), zap.Error(err))
			break
		}
		wait := config.RetryWait(base, n)
		log.Warn("connection attempt failed: retrying", zap.String("to", what),
			zap.Int("attempt", n), zap.Int("attempts", attempts), zap.Duration("wait", wait), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return zero, fmt.Errorf("connect to %s: interrupted: %w", what, ctx.Err())
		case <-t.C:
		}
	}
	return zero, fmt.Errorf("%s %w after %d attempts: %w", what, ErrUnreachable, attempts, last)
}
