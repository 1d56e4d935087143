package natsbus

import (
	"errors"
	"testing"
	"time"
)

// TestConfigsValidate: each configuration accepts its defaults and its zero
// value, and refuses a value out of range with ErrInvalidConfig.
func TestConfigsValidate(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ good, zero, bad interface{ Validate() error } }{
		"streams":  {DefaultConfig(), Config{}, Config{Partitions: 1001}},
		"consumer": {DefaultConsumerSettings(), ConsumerSettings{}, ConsumerSettings{AckWait: time.Minute, PinnedTTL: 10 * time.Second}},
		"batcher":  {DefaultBatcherConfig(), BatcherConfig{}, BatcherConfig{MinMessages: 50, MaxMessages: 10}},
	} {
		if err := tc.good.Validate(); err != nil {
			t.Errorf("%s: defaults refused: %v", name, err)
		}
		if err := tc.zero.Validate(); err != nil {
			t.Errorf("%s: zero value refused: %v", name, err)
		}
		if err := tc.bad.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %+v accepted (%v)", name, tc.bad, err)
		}
	}
}
