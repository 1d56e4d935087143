package worker_test

import (
	"time"

	"testing"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// TestStoreRefusalIsolatesOneRequest makes PostgreSQL refuse one request
// of a batch for a reason that will not change (a constraint only it
// breaks). The batch is bisected down to that request, which is
// dead-lettered, counted and left undecided; every other request of the
// batch, before and after it in the same partition, is applied in order.
func TestStoreRefusalIsolatesOneRequest(t *testing.T) {
	t.Parallel()
	e := setupWith(t, func(c *config) { c.Linger = 200 * time.Millisecond })
	if _, err := e.store.Pool().Exec(ctx(t), `
CREATE FUNCTION refuse_13_13() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.amount = 13.13 THEN
    RAISE EXCEPTION 'amount 13.13 refused' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse_13_13 BEFORE INSERT ON transfers FOR EACH ROW EXECUTE FUNCTION refuse_13_13();`); err != nil {
		t.Fatal(err)
	}
	a, b := e.account("USD"), e.account("USD")
	// One partition's batch: published before the worker starts.
	var load []transfer.Request
	for i := 0; i < 7; i++ {
		load = append(load, deposit(a, "10", "USD"), withdrawal(a, "10", "USD"))
	}
	bad := deposit(a, "13.13", "USD")
	load = append(load[:5], append([]transfer.Request{bad}, load[5:]...)...)
	// b is empty until its deposit: the transfer is rejected, in order.
	early := xfer(b, a, "1", "USD")
	load = append(load, early, deposit(b, "2", "USD"))
	e.publish(load...)
	w := e.startWorker(e.cfg, nil)

	for _, r := range load {
		if r.ID == bad.ID {
			continue
		}
		want := transfer.StatusApplied
		if r.ID == early.ID {
			want = transfer.StatusRejected
		}
		if res := e.waitResult(r.ID); res.Status != want {
			t.Fatalf("%s %s: %s %s, want %s", r.Kind, r.Amount, res.Status, res.Reason, want)
		}
	}
	if got, gotB := e.balance(a), e.balance(b); !got.IsZero() || !gotB.Equal(dec("2")) {
		t.Fatalf("balances %s and %s, want 0 and 2", got, gotB)
	}
	if n := e.transferCount(bad.ID); n != 0 {
		t.Fatalf("refused request stored %d times", n)
	}
	if _, found, _ := e.bus.LookupResult(ctx(t), bad.ID); found {
		t.Fatal("refused request has an outcome")
	}
	dl, err := e.js.Stream(ctx(t), natsbus.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dl.GetLastMsgForSubject(ctx(t), natsbus.DeadLetterPrefix+">")
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	if got := m.Header.Get(natsbus.HeaderDLReason); got != "store_refused" {
		t.Fatalf("dead letter reason %q (%s)", got, m.Header.Get(natsbus.HeaderDLDetail))
	}
	if string(m.Data) != string(mustEncode(t, bad)) {
		t.Fatalf("dead letter body %q", m.Data)
	}
	if got := counterValue(t, w.reg, "wallet_worker_isolated_total"); got != 1 {
		t.Fatalf("isolated %v, want 1", got)
	}
	eventually(t, "nothing pending", func() bool { return e.pendingAcks() == 0 })
}
