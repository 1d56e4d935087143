package fault

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestNATSServerKeepsAcknowledgedMessages checks the suite's nats-server
// harness: every message acknowledged before a kill -9 is there after the
// restart on the same store, and clients reconnect to the same URL.
func TestNATSServerKeepsAcknowledgedMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	srv := startNATS(t, natsBinary(t), t.TempDir())
	_, js := srv.connect(t, "check", srv.admin)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "CHECK", Subjects: []string{"check.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := 0; i < n; i++ {
		if _, err := js.Publish(ctx, fmt.Sprintf("check.%d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	srv.kill()
	// Until the client notices the connection is gone, the publish can
	// wait for its PubAck instead of failing at once: bound that wait, so
	// that the restart below keeps its time.
	downCtx, cancelDown := context.WithTimeout(ctx, 5*time.Second)
	_, err := js.Publish(downCtx, "check.down", []byte("x"), jetstream.WithRetryAttempts(0))
	cancelDown()
	if err == nil {
		t.Fatal("a publish while the server is down got a PubAck")
	}
	if err := srv.restart(ctx); err != nil {
		t.Fatal(err)
	}
	var info *jetstream.StreamInfo
	for {
		s, err := js.Stream(ctx, "CHECK")
		if err == nil {
			if info, err = s.Info(ctx); err == nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream not back after restart: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if info.State.Msgs != n {
		t.Fatalf("after kill -9 and restart the stream holds %d messages, want %d", info.State.Msgs, n)
	}
	if c := srv.crashes(); len(c) != 0 {
		t.Fatalf("unexpected exits: %v", c)
	}
}
