package gateway

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/natsbus"
)

// TestConcurrentSubmissionsStoredOnce submits many transfers at once through
// the batcher, and some of them twice: each is accepted and stored once.
func TestConcurrentSubmissionsStoredOnce(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	a, b := h.account("USD", "1000"), h.account("USD", "")
	const n = 60
	ids := make([]uuid.UUID, n)
	bodies := make([]string, 0, n+10)
	for i := range ids {
		ids[i] = uuid.New()
		bodies = append(bodies, transferJSON(ids[i], a, b, "1", "USD"))
	}
	// Resubmissions while pending: JetStream drops them by id, and the
	// gateway answers 202 again.
	bodies = append(bodies, bodies[:10]...)
	stored := h.requests()

	statuses := make([]int, len(bodies))
	errs := make([]error, len(bodies))
	var wg sync.WaitGroup
	for i, body := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest("POST", "/v1/transfers", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := h.g.App().Test(req, -1)
			if err != nil {
				errs[i] = err
				return
			}
			statuses[i] = resp.StatusCode
			_ = resp.Body.Close()
		}()
	}
	wg.Wait()
	for i := range bodies {
		if errs[i] != nil || statuses[i] != 202 {
			t.Fatalf("submission %d: %d %v", i, statuses[i], errs[i])
		}
	}
	if got := h.requests() - stored; got != n {
		t.Fatalf("%d messages stored for %d ids", got, n)
	}

	s, err := h.js.Stream(testCtx(t), natsbus.RequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool)
	for seq := stored + 1; seq <= stored+n; seq++ {
		m, err := s.GetMsg(testCtx(t), seq)
		if err != nil {
			t.Fatal(err)
		}
		seen[m.Header.Get(natsbus.HeaderMsgID)] = true
	}
	for _, id := range ids {
		if !seen[id.String()] {
			t.Errorf("%s accepted but not stored", id)
		}
	}
}

// TestClosedBusIsUnavailable: once the bus is closed (the gateway is
// stopping), a submission gets 503 and nothing is published.
func TestClosedBusIsUnavailable(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	a, b := h.account("USD", "10"), h.account("USD", "")
	h.bus.Close()
	r := h.do("POST", "/v1/transfers", transferJSON(uuid.New(), a, b, "1", "USD"))
	expect(t, r, 503, CodeServiceUnavailable)
	if n := h.requests(); n != 0 {
		t.Fatalf("%d published after close", n)
	}
}
