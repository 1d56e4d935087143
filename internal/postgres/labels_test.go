package postgres_test

import (
	"context"
	"maps"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/transfer"
)

func getTransfer(t *testing.T, s *postgres.Store, id uuid.UUID) transfer.Transfer {
	t.Helper()
	tr, err := s.GetTransfer(context.Background(), id)
	if err != nil {
		t.Fatalf("get transfer %s: %v", id, err)
	}
	return tr
}

// TestMetadataAndReferenceStored: both are stored with the batch's insert
// and read back as given, by the outcome and by a later read; a replay with
// the same ones replays, other metadata or another reference conflicts.
func TestMetadataAndReferenceStored(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	a, b := newAccount(t, s, "USD"), newAccount(t, s, "USD")
	d := deposit(a, "100", "USD")
	d.Metadata = map[string]string{"order": "A-1", "note": "é \"quoted\" <tag>", "empty": ""}
	d.Reference = "dep-" + d.ID.String()
	tr := move(a, b, "1", "USD")
	tr.Reference = "tr-" + tr.ID.String()
	plain := move(a, b, "1", "USD")
	out := apply(t, s, d, tr, plain)
	for i, o := range out {
		if o.Status() != transfer.StatusApplied {
			t.Fatalf("request %d: %s", i, o.Reason())
		}
	}
	if !maps.Equal(out[0].Transfer.Metadata, d.Metadata) || out[0].Transfer.Reference != d.Reference {
		t.Fatalf("outcome %+v", out[0].Transfer)
	}
	for _, r := range []transfer.Request{d, tr, plain} {
		got := getTransfer(t, s, r.ID)
		if !maps.Equal(got.Metadata, r.Metadata) || got.Reference != r.Reference || (len(r.Metadata) == 0) != (got.Metadata == nil) {
			t.Fatalf("stored %s: metadata %v reference %q, want %v %q", r.ID, got.Metadata, got.Reference, r.Metadata, r.Reference)
		}
	}

	// The same request again replays; the same id with other labels is a
	// conflict, and the stored row is left as it was.
	if o := apply(t, s, d)[0]; !o.Replayed || o.Conflict {
		t.Fatalf("replay: %+v", o)
	}
	other := d
	other.Metadata = map[string]string{"order": "A-2", "note": d.Metadata["note"], "empty": ""}
	noRef := d
	noRef.Reference = ""
	anotherRef := d
	anotherRef.Reference = "another"
	noMeta := d
	noMeta.Metadata = nil
	for _, r := range []transfer.Request{other, noRef, anotherRef, noMeta} {
		if o := apply(t, s, r)[0]; !o.Conflict || o.Reason() != transfer.CodeTransferIDConflict {
			t.Fatalf("%+v: outcome %+v, want a conflict", r, o)
		}
	}
	if got := getTransfer(t, s, d.ID); !maps.Equal(got.Metadata, d.Metadata) || got.Reference != d.Reference {
		t.Fatalf("conflict changed the row: %+v", got)
	}
	// Adding labels to a request that had none is a conflict too.
	labelled := plain
	labelled.Metadata = map[string]string{"k": "v"}
	if o := apply(t, s, labelled)[0]; !o.Conflict {
		t.Fatalf("labels added: %+v", o)
	}
	if balance(t, s, a).String() != "98" {
		t.Fatalf("balance %s", balance(t, s, a))
	}
}

// TestReferenceAlreadyUsed: a reference is taken by the first request that
// has it, applied or rejected; another id with it is rejected
// reference_already_used, final, and does not take it - also when both are
// in one batch, and without failing the batch on the unique index.
func TestReferenceAlreadyUsed(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	a, b := newAccount(t, s, "USD"), newAccount(t, s, "USD")
	apply(t, s, deposit(a, "10", "USD"))

	first, second := move(a, b, "1", "USD"), move(a, b, "2", "USD")
	first.Reference, second.Reference = "order-1", "order-1"
	second.Metadata = map[string]string{"try": "2"}
	out := apply(t, s, first, second)
	if out[0].Status() != transfer.StatusApplied || out[1].Reason() != transfer.CodeReferenceAlreadyUsed {
		t.Fatalf("one batch: %s/%s, %s/%s", out[0].Status(), out[0].Reason(), out[1].Status(), out[1].Reason())
	}
	rejected := getTransfer(t, s, second.ID)
	if rejected.Status != transfer.StatusRejected || rejected.Reference != "" || rejected.Metadata["try"] != "2" {
		t.Fatalf("stored rejection %+v", rejected)
	}
	// The rejection is final and replays, as its fingerprint still covers
	// the reference it was sent with.
	if o := apply(t, s, second)[0]; !o.Replayed || o.Conflict || o.Reason() != transfer.CodeReferenceAlreadyUsed {
		t.Fatalf("replay of the rejection: %+v", o)
	}
	// In a later batch, any kind.
	dep := deposit(b, "5", "USD")
	dep.Reference = "order-1"
	if o := apply(t, s, dep)[0]; o.Reason() != transfer.CodeReferenceAlreadyUsed {
		t.Fatalf("later batch: %s", o.Reason())
	}
	// The first id again replays as applied.
	if o := apply(t, s, first)[0]; !o.Replayed || o.Status() != transfer.StatusApplied {
		t.Fatalf("first again: %+v", o)
	}
	// A request rejected for another reason takes its reference too.
	poor := move(a, b, "1000", "USD")
	poor.Reference = "order-2"
	late := move(a, b, "1", "USD")
	late.Reference = "order-2"
	out = apply(t, s, poor, late)
	if out[0].Reason() != transfer.CodeInsufficientFunds || out[1].Reason() != transfer.CodeReferenceAlreadyUsed {
		t.Fatalf("rejected owner: %s, %s", out[0].Reason(), out[1].Reason())
	}
	if got := getTransfer(t, s, poor.ID); got.Reference != "order-2" {
		t.Fatalf("rejected owner's reference %q", got.Reference)
	}
	if !balance(t, s, a).Equal(dec("9")) || !balance(t, s, b).Equal(dec("1")) {
		t.Fatalf("balances %s %s", balance(t, s, a), balance(t, s, b))
	}
}

// TestReferenceRaceAcrossBatches: concurrent batches on disjoint accounts
// (so no lock orders them) all try to take one reference. Exactly one gets
// it; the others are rejected reference_already_used, and no batch fails.
func TestReferenceRaceAcrossBatches(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	const n = 8
	reqs := make([]transfer.Request, n)
	for i := range reqs {
		acc := newAccount(t, s, "USD")
		reqs[i] = deposit(acc, "1", "USD")
		reqs[i].Reference = "shared"
	}
	var wg sync.WaitGroup
	outs := make([]transfer.Outcome, n)
	errs := make([]error, n)
	for i := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := s.ApplyBatch(context.Background(), reqs[i:i+1])
			errs[i] = err
			if err == nil {
				outs[i] = out[0]
			}
		}()
	}
	wg.Wait()
	applied := 0
	for i := range reqs {
		if errs[i] != nil {
			t.Fatalf("batch %d failed: %v", i, errs[i])
		}
		switch outs[i].Reason() {
		case "":
			applied++
		case transfer.CodeReferenceAlreadyUsed:
		default:
			t.Fatalf("batch %d: %s", i, outs[i].Reason())
		}
	}
	if applied != 1 {
		t.Fatalf("%d requests took the reference", applied)
	}
}

// TestInvalidLabelsRejectedNotStored: a request that reaches the store with
// labels beyond their limits (no decoder lets one through) is rejected with
// the domain's code; an invalid reference is never written.
func TestInvalidLabelsRejectedNotStored(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	a := newAccount(t, s, "USD")
	badRef := deposit(a, "1", "USD")
	badRef.Reference = "tab\there"
	badMeta := deposit(a, "1", "USD")
	badMeta.Metadata = map[string]string{"UPPER": "x"}
	out := apply(t, s, badRef, badMeta)
	if out[0].Reason() != transfer.CodeInvalidReference || out[1].Reason() != transfer.CodeInvalidMetadata {
		t.Fatalf("%s, %s", out[0].Reason(), out[1].Reason())
	}
	if got := getTransfer(t, s, badRef.ID); got.Reference != "" {
		t.Fatalf("invalid reference stored: %q", got.Reference)
	}
	if got := getTransfer(t, s, badMeta.ID); got.Metadata != nil {
		t.Fatalf("invalid metadata stored: %v", got.Metadata)
	}
	// The rejections replay: their fingerprints cover what was sent.
	if o := apply(t, s, badRef)[0]; !o.Replayed || o.Conflict {
		t.Fatalf("replay of a bad reference: %+v", o)
	}
}
