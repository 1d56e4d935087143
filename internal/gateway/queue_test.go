package gateway

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
	"github.com/wallet/wallet/internal/transfer"
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

// TestStoppedQueueIsUnavailable: once the queue is stopped (the gateway is
// stopping), a submission gets 503 and nothing is published.
func TestStoppedQueueIsUnavailable(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	a, b := h.account("USD", "10"), h.account("USD", "")
	if err := h.queue.Stop(); err != nil {
		t.Fatal(err)
	}
	r := h.do("POST", "/v1/transfers", transferJSON(uuid.New(), a, b, "1", "USD"))
	expect(t, r, 503, CodeServiceUnavailable)
	if n := h.requests(); n != 0 {
		t.Fatalf("%d published after close", n)
	}
}

// lateQueue publishes through the real queue and then reports what the batcher
// reports when the stream's answer came after the caller's deadline: an
// unknown outcome. With store false it stores nothing, as when the batch
// never reached the stream.
type lateQueue struct {
	*natstest.Producer
	store bool
}

func (q lateQueue) Publish(ctx context.Context, r transfer.Request, rid string) (bool, error) {
	if q.store {
		if _, err := q.Producer.Publish(ctx, r, rid); err != nil {
			return false, err
		}
	}
	return false, fmt.Errorf("batcher: waiting for the commit: %w: %w", natsbus.ErrOutcomeUnknown, context.DeadlineExceeded)
}

// TestUnknownPublishOutcomeIsNot503: a 503 promises that nothing was
// stored. When the publish's outcome is unknown the gateway finds out from
// the stream (stored: 202, pending) or, when it cannot tell, says so with
// outcome_unknown, never 503 - on both APIs.
func TestUnknownPublishOutcomeIsNot503(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	a, b := h.account("USD", "10"), h.account("USD", "")
	for _, store := range []bool{true, false} {
		g, err := New(Config{LegacyWait: 50 * time.Millisecond}, h.store, lateQueue{h.queue, store}, zap.NewNop(), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		h.g = g
		before := h.requests()
		id := uuid.New()
		r := h.do("POST", "/v1/transfers", transferJSON(id, a, b, "1", "USD"))
		if store {
			expect(t, r, 202, "")
			if r.str("status") != "pending" || h.requests() != before+1 {
				t.Fatalf("stored request: %s", r.raw)
			}
		} else {
			expect(t, r, 504, CodeOutcomeUnknown)
			if r.header.Get("Retry-After") == "" {
				t.Fatalf("no Retry-After: %v", r.header)
			}
		}
		legacy := h.do("POST", "/transfers/", `{"id":"`+uuid.NewString()+`","sender_account_id":"`+a.String()+
			`","receiver_account_id":"`+b.String()+`","amount":"1","currency_code":"USD"}`)
		if legacy.status == 503 {
			t.Fatalf("store=%v: 2020 API answered 503 for an unknown outcome: %s", store, legacy.raw)
		}
		if !store && (legacy.status != 504 || legacy.str("error") != string(CodeOutcomeUnknown)) {
			t.Fatalf("2020 API: %d %s", legacy.status, legacy.raw)
		}
	}
}
