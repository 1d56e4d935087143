package worker_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// TestLabelsThroughTheStream: metadata and references published in the
// envelope are stored and come back on the outcome message; a used
// reference under another id is rejected reference_already_used (and the
// same id replays); envelopes with broken labels are dead-lettered with a
// stable reason.
func TestLabelsThroughTheStream(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.startWorker(e.cfg, nil)
	a, b := e.account("USD"), e.account("USD")
	meta := map[string]string{"order_id": "A-7", "note": "naïve \"q\" <x>"}

	fund := deposit(a, "10", "USD")
	fund.Metadata, fund.Reference = meta, "fund-"+fund.ID.String()
	tr := xfer(a, b, "1", "USD")
	tr.Metadata, tr.Reference = meta, "order-7"
	dup := xfer(a, b, "2", "USD")
	dup.Reference = "order-7"
	e.publish(fund, tr, dup)

	for _, r := range []transfer.Request{fund, tr} {
		res := e.waitResult(r.ID)
		if res.Status != transfer.StatusApplied || !maps.Equal(res.Metadata, r.Metadata) || res.Reference != r.Reference {
			t.Fatalf("outcome of %s: %+v", r.ID, res)
		}
		stored, err := e.store.GetTransfer(ctx(t), r.ID)
		if err != nil || !maps.Equal(stored.Metadata, r.Metadata) || stored.Reference != r.Reference {
			t.Fatalf("stored %s: %+v %v", r.ID, stored, err)
		}
	}
	if res := e.waitResult(dup.ID); res.Reason != transfer.CodeReferenceAlreadyUsed || res.Reference != "" {
		t.Fatalf("used reference: %+v", res)
	}
	if got := e.balance(b); !got.Equal(dec("1")) {
		t.Fatalf("receiver balance %s", got)
	}

	// Broken labels: poison, never applied.
	type poison struct {
		body string
		want natsbus.Reason
	}
	env := func(id uuid.UUID, extra string) string {
		return `{"v":1,"kind":"transfer","id":"` + id.String() + `","from_account_id":"` + a.String() +
			`","to_account_id":"` + b.String() + `","amount":"1","currency":"USD"` + extra + `}`
	}
	cases := []poison{
		{`,"metadata":{"Key":"x"}`, natsbus.ReasonInvalidMetadata},
		{`,"metadata":{"k":1}`, natsbus.ReasonInvalidMetadata},
		{`,"metadata":"k=v"`, natsbus.ReasonInvalidMetadata},
		{`,"reference":""`, natsbus.ReasonInvalidReference},
		{`,"reference":"` + strings.Repeat("x", 129) + `"`, natsbus.ReasonInvalidReference},
	}
	for _, c := range cases {
		id := uuid.New()
		e.publishRaw(natsbus.RequestsPrefix+a.String()+"."+id.String(), id.String(), []byte(env(id, c.body)))
	}
	after := xfer(a, b, "1", "USD")
	e.publish(after)
	if res := e.waitResult(after.ID); res.Status != transfer.StatusApplied {
		t.Fatalf("after the poison: %+v", res)
	}
	dl, err := e.js.Stream(ctx(t), natsbus.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "dead letters", func() bool {
		info, err := dl.Info(ctx(t))
		return err == nil && info.State.Msgs >= uint64(len(cases))
	})
	for i, c := range cases {
		var m *jetstream.RawStreamMsg
		if m, err = dl.GetMsg(ctx(t), uint64(i+1)); err != nil {
			t.Fatal(err)
		}
		if got := natsbus.Reason(m.Header.Get(natsbus.HeaderDLReason)); got != c.want {
			t.Errorf("%s: reason %s (%s), want %s", c.body, got, m.Header.Get(natsbus.HeaderDLDetail), c.want)
		}
	}
	if got := e.balance(b); !got.Equal(dec("2")) {
		t.Fatalf("receiver balance %s after the poison", got)
	}
}
