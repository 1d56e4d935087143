package worker_test

import (
	"maps"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.startWorker(e.cfg, nil)
	a, b, btc := e.account("USD"), e.account("USD"), e.account("BTC")

	d1, d2 := deposit(a, "1000", "usd"), deposit(b, "100", "USD")
	e.publish(d1, d2)
	for _, id := range []transfer.Request{d1, d2} {
		if r := e.waitResult(id.ID); r.Status != transfer.StatusApplied {
			t.Fatalf("deposit %s: %+v", id.ID, r)
		}
	}
	t1 := xfer(a, b, "100.111", "USD")
	t2 := xfer(a, b, "1001", "USD")
	t3 := xfer(a, btc, "1", "USD")
	w1 := withdrawal(b, "0.11", "USD")
	e.publish(t1, t2, t3, w1)

	r1 := e.waitResult(t1.ID)
	if r1.Status != transfer.StatusApplied || r1.Amount != "100.11" || r1.FromAccountID != a || r1.ToAccountID != b ||
		r1.Kind != transfer.KindTransfer || r1.AcceptedAt.IsZero() || r1.ProcessedAt.Before(r1.AcceptedAt) {
		t.Fatalf("transfer: %+v", r1)
	}
	if r := e.waitResult(t2.ID); r.Status != transfer.StatusRejected || r.Reason != transfer.CodeInsufficientFunds {
		t.Fatalf("overdraft: %+v", r)
	}
	if r := e.waitResult(t3.ID); r.Reason != transfer.CodeReceiverAccountWrongCurrency {
		t.Fatalf("wrong currency: %+v", r)
	}
	if r := e.waitResult(w1.ID); r.Status != transfer.StatusApplied || r.AccountID != b || r.Amount != "0.11" {
		t.Fatalf("withdrawal: %+v", r)
	}
	if got := e.balance(a); !got.Equal(dec("899.89")) {
		t.Fatalf("sender balance %s", got)
	}
	if got := e.balance(b); !got.Equal(dec("200")) {
		t.Fatalf("receiver balance %s", got)
	}
	// The outcome is the stored one.
	stored, err := e.store.GetTransfer(ctx(t), t1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !stored.AcceptedAt.Equal(r1.AcceptedAt) || !stored.ProcessedAt.Equal(r1.ProcessedAt) {
		t.Fatalf("result times %v/%v, stored %v/%v", r1.AcceptedAt, r1.ProcessedAt, stored.AcceptedAt, stored.ProcessedAt)
	}
	// Applied requests leave the requests stream (purged behind the ack floor).
	eventually(t, "purge of applied requests", func() bool {
		_, found, err := e.bus.LookupPending(ctx(t), t1.ID)
		return err == nil && !found
	})
	if n := e.resultCount(natsbus.ResultSubject(t1.ID)); n != 1 {
		t.Fatalf("%d outcomes for one request", n)
	}
}

// TestOutcomeCounts: every decision is counted once under its status and
// reason, however a batch interleaves them.
func TestOutcomeCounts(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := e.startWorker(e.cfg, nil)
	a, b := e.account("USD"), e.account("USD")
	d := deposit(a, "10", "USD")
	e.publish(d)
	e.waitResult(d.ID)
	// b holds 3 when the withdrawal comes.
	reqs := []transfer.Request{xfer(a, b, "1", "USD"), xfer(a, b, "100", "USD"), xfer(a, b, "2", "USD"),
		xfer(a, b, "100", "USD"), withdrawal(b, "50", "USD"), xfer(a, b, "3", "USD")}
	e.publish(reqs...)
	for _, r := range reqs {
		e.waitResult(r.ID)
	}
	want := map[string]float64{"applied/": 4, "rejected/insufficient_funds": 3}
	// The counts follow the acks, which follow the outcomes.
	deadline := time.Now().Add(10 * time.Second)
	for got := outcomeCounts(t, w.reg); !maps.Equal(got, want); got = outcomeCounts(t, w.reg) {
		if time.Now().After(deadline) {
			t.Fatalf("outcomes counted %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outcomeCounts reads wallet_worker_outcomes_total by "status/reason".
func outcomeCounts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := make(map[string]float64)
	for _, f := range families {
		if f.GetName() != "wallet_worker_outcomes_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := make(map[string]string)
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			counts[labels["status"]+"/"+labels["reason"]] += m.GetCounter().GetValue()
		}
	}
	return counts
}
