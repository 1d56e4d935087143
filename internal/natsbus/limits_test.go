package natsbus_test

import (
	"strings"
	"testing"

	"github.com/wallet/wallet/internal/natsbus"
)

func TestValidTraceID(t *testing.T) {
	for _, c := range []struct {
		id   string
		want bool
	}{
		{"req-1", true},
		{"01JABCDEF:trace/span=7", true},
		{strings.Repeat("a", natsbus.MaxTraceIDLen), true},
		{"", false},
		{strings.Repeat("a", natsbus.MaxTraceIDLen+1), false},
		{strings.Repeat("a", 64<<10), false},
		{"with space", false},
		{"tab\there", false},
		{"line\r\nInjected: header", false},
		{"caf\u00e9", false},
		{"nul\x00", false},
	} {
		if got := natsbus.ValidTraceID(c.id); got != c.want {
			t.Errorf("ValidTraceID(%.40q) = %v, want %v", c.id, got, c.want)
		}
	}
}

// TestRequestsStreamLeavesRoom: a stored request, whatever its size, must
// leave room under the server's default max_payload (1 MiB) for what a
// worker adds to it, and the decoder's own limit must be below the stream's
// so that oversized requests are dead-lettered with a reason.
func TestRequestsStreamLeavesRoom(t *testing.T) {
	cfg, err := natsbus.RequestsStreamConfig(natsbus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const defaultMaxPayload = 1 << 20
	if cfg.MaxMsgSize != natsbus.MaxStoredRequest {
		t.Fatalf("MaxMsgSize %d, want %d", cfg.MaxMsgSize, natsbus.MaxStoredRequest)
	}
	if 2*cfg.MaxMsgSize > defaultMaxPayload {
		t.Fatalf("MaxMsgSize %d leaves less than half of max_payload for a worker's additions", cfg.MaxMsgSize)
	}
	if natsbus.MaxRequestSize >= natsbus.MaxStoredRequest || natsbus.DeadLetterBodyLimit > natsbus.MaxRequestSize {
		t.Fatalf("limits out of order: decoder %d, stream %d, dead-letter body %d",
			natsbus.MaxRequestSize, natsbus.MaxStoredRequest, natsbus.DeadLetterBodyLimit)
	}
}
