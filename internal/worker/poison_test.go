package worker_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// TestPoisonIsDeadLettered publishes hostile payloads straight to a
// partition's subject: each is dead-lettered with its reason and original
// bytes (a bounded prefix of the larger ones), and valid requests published after them in the same partition are
// applied. A request that decodes but breaks a business rule is not poison:
// it gets a rejected outcome.
func TestPoisonIsDeadLettered(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := e.startWorker(e.cfg, nil)
	a, b := e.account("USD"), e.account("USD")

	valid := func(id uuid.UUID, mod func(string) string) []byte {
		body := `{"v":1,"kind":"transfer","id":"` + id.String() + `","from_account_id":"` + a.String() +
			`","to_account_id":"` + b.String() + `","amount":"1.00","currency":"USD"}`
		return []byte(mod(body))
	}
	same := func(s string) string { return s }
	type poison struct {
		subjectID string // request id token of the subject
		body      []byte
		want      natsbus.Reason
	}
	var cases []poison
	add := func(want natsbus.Reason, mod func(string) string) {
		id := uuid.New()
		cases = append(cases, poison{id.String(), valid(id, mod), want})
	}
	cases = append(cases, poison{uuid.NewString(), []byte("\x00\xff\xfe garbage"), natsbus.ReasonMalformedJSON})
	cases = append(cases, poison{uuid.NewString(), []byte(`{"v":1,"kind":`), natsbus.ReasonMalformedJSON})
	add(natsbus.ReasonPayloadTooLarge, func(s string) string {
		return strings.Replace(s, `"USD"`, `"`+strings.Repeat("U", 100<<10)+`"`, 1)
	})
	add(natsbus.ReasonInvalidAmount, func(s string) string { return strings.Replace(s, `"1.00"`, `"NaN"`, 1) })
	add(natsbus.ReasonInvalidAmount, func(s string) string { return strings.Replace(s, `"1.00"`, `"1e400"`, 1) })
	add(natsbus.ReasonInvalidAmount, func(s string) string { return strings.Replace(s, `"1.00"`, `1e400`, 1) })
	add(natsbus.ReasonUnsupportedVersion, func(s string) string { return strings.Replace(s, `"v":1`, `"v":2`, 1) })
	add(natsbus.ReasonDuplicateField, func(s string) string { return strings.Replace(s, `"v":1`, `"v":1,"v":1`, 1) })
	add(natsbus.ReasonUnknownField, func(s string) string { return strings.Replace(s, `"v":1`, `"v":1,"memo":"x"`, 1) })
	add(natsbus.ReasonMalformedJSON, func(s string) string { return s + `{}` })
	// The subject names another request id than the body.
	cases = append(cases, poison{uuid.NewString(), valid(uuid.New(), same), natsbus.ReasonSubjectMismatch})
	// The body debits another account than the subject's (b's requests
	// filed under a's partition).
	other := uuid.New()
	cases = append(cases, poison{other.String(), []byte(strings.Replace(string(valid(other, same)),
		`"from_account_id":"`+a.String()+`","to_account_id":"`+b.String()+`"`,
		`"from_account_id":"`+b.String()+`","to_account_id":"`+a.String()+`"`, 1)), natsbus.ReasonSubjectMismatch})
	// A request id token that is not a uuid.
	cases = append(cases, poison{"not-a-uuid", valid(uuid.New(), same), natsbus.ReasonInvalidSubject})

	for _, c := range cases {
		e.publishRaw(natsbus.RequestsPrefix+a.String()+"."+c.subjectID, c.subjectID, c.body)
	}
	negative := xfer(a, b, "-5", "USD")
	fund := deposit(a, "10", "USD")
	after := xfer(a, b, "2.5", "USD")
	e.publish(negative, fund, after)

	if r := e.waitResult(negative.ID); r.Status != transfer.StatusRejected || r.Reason != transfer.CodeTransferAmountMustBePositive {
		t.Fatalf("negative amount: %+v", r)
	}
	if r := e.waitResult(after.ID); r.Status != transfer.StatusApplied {
		t.Fatalf("valid transfer after the poison: %+v", r)
	}
	if got := e.balance(b); !got.Equal(dec("2.5")) {
		t.Fatalf("receiver balance %s", got)
	}

	dl, err := e.js.Stream(ctx(t), natsbus.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*jetstream.RawStreamMsg
	eventually(t, "dead letters", func() bool {
		info, err := dl.Info(ctx(t))
		return err == nil && info.State.Msgs >= uint64(len(cases))
	})
	for seq := uint64(1); seq <= uint64(len(cases)); seq++ {
		m, err := dl.GetMsg(ctx(t), seq)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if info, _ := dl.Info(ctx(t)); info.State.Msgs != uint64(len(cases)) {
		t.Fatalf("%d dead letters, want %d", info.State.Msgs, len(cases))
	}
	// Dead letters come in publish order: one partition, applied in order.
	for i, m := range msgs {
		c := cases[i]
		if got := natsbus.Reason(m.Header.Get(natsbus.HeaderDLReason)); got != c.want {
			t.Errorf("case %d: reason %s (%s), want %s", i, got, m.Header.Get(natsbus.HeaderDLDetail), c.want)
		}
		// Bodies up to the dead-letter limit are kept whole; larger ones
		// by prefix, size and SHA-256.
		checkDeadLetterSummary(t, m, c.body)
		if len(c.body) <= natsbus.DeadLetterBodyLimit && string(m.Data) != string(c.body) {
			t.Errorf("case %d: dead letter does not carry the original bytes", i)
		}
		wantSubj := natsbus.RequestsPrefix
		if orig := m.Header.Get(natsbus.HeaderDLOriginalSubject); !strings.HasPrefix(orig, wantSubj) || !strings.HasSuffix(orig, "."+c.subjectID+"."+a.String()) {
			t.Errorf("case %d: original subject %q", i, orig)
		}
		if !strings.HasPrefix(m.Subject, natsbus.DeadLetterPrefix+string(c.want)+".") {
			t.Errorf("case %d: dead-letter subject %s", i, m.Subject)
		}
	}
	if got := counterValue(t, w.reg, "wallet_worker_dead_letters_total"); got != float64(len(cases)) {
		t.Fatalf("dead-letter counter %v, want %d", got, len(cases))
	}
	// Terminated poison leaves nothing pending.
	eventually(t, "nothing pending", func() bool { return e.pendingAcks() == 0 })
}
