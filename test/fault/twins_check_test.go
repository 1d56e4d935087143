package fault

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/transfer"
)

// TestTwinChecksCatchMistakes feeds checkTwins what the clients saw of
// conflicting twins and what the results stream held, clean and then
// wrong in each way the check is meant to catch.
func TestTwinChecksCatchMistakes(t *testing.T) {
	base := time.Now().Add(-time.Hour)
	from, to := uuid.New(), uuid.New()
	original := &op{ID: uuid.New(), Kind: transfer.KindTransfer, From: from, To: to, Amount: "10.005", Currency: "usd",
		Route: viaNATS, MayApply: true, Conflict: true}
	twin := original.conflicting() // 11.005
	stored := storedTransfer{ID: original.ID, Kind: transfer.KindTransfer, Status: transfer.StatusApplied,
		From: from, To: to, Amount: decimal.RequireFromString("10.01"), Currency: "USD", Decisions: 1}
	ledger := &ledgerSnapshot{Transfers: map[uuid.UUID]storedTransfer{original.ID: stored}, Precisions: map[string]int32{"USD": 2}}
	// The notice shows the twin's amount as sent: it has more digits
	// than USD keeps.
	notice := streamResult{ID: original.ID, Kind: transfer.KindTransfer, Status: transfer.StatusRejected,
		Reason: transfer.CodeTransferIDConflict, FromAccountID: from, ToAccountID: to, Amount: "11.005", Currency: "USD"}
	restartAt := base.Add(30 * time.Second)
	restarted := func(a, b time.Time) bool { return restartAt.After(a) && !restartAt.After(b) }

	type world struct {
		twin      twinRecord
		notices   []streamResult
		restarted bool
		stored    storedTransfer
	}
	// dropped: both twins answered within seconds, the NATS one a
	// duplicate.
	dropped := twinRecord{Op: twin, HTTPStatus: 409, HTTPCode: "transfer_id_conflict", HTTPDoneAt: base.Add(time.Second),
		NATSAcked: true, NATSDuplicate: true, NATSAckAt: base.Add(2 * time.Second)}
	// storedAfterRestart: the NATS twin came after a restart forgot the id.
	storedAfterRestart := dropped
	storedAfterRestart.NATSDuplicate, storedAfterRestart.NATSAckAt = false, base.Add(40*time.Second)
	storedEarly := dropped
	storedEarly.NATSDuplicate = false
	wrongAmount := notice
	wrongAmount.Amount = "10.005"
	wrongAccount := notice
	wrongAccount.ToAccountID = uuid.New()
	asTwin := stored
	asTwin.Amount = decimal.RequireFromString("11.01")

	for _, tc := range []struct {
		name  string
		w     world
		fires bool
	}{
		{"twin dropped, no notice", world{twin: dropped, stored: stored}, false},
		{"twin stored after a restart, with its notice", world{twin: storedAfterRestart, notices: []streamResult{notice}, restarted: true, stored: stored}, false},
		{"twin stored within the window and no restart", world{twin: storedEarly, notices: []streamResult{notice}, stored: stored}, true},
		{"twin stored, no notice", world{twin: storedAfterRestart, restarted: true, stored: stored}, true},
		{"notice though every twin was dropped", world{twin: dropped, notices: []streamResult{notice}, stored: stored}, true},
		{"notice with another amount", world{twin: storedAfterRestart, notices: []streamResult{wrongAmount}, restarted: true, stored: stored}, true},
		{"notice with another account", world{twin: storedAfterRestart, notices: []streamResult{wrongAccount}, restarted: true, stored: stored}, true},
		{"two notices", world{twin: storedAfterRestart, notices: []streamResult{notice, notice}, restarted: true, stored: stored}, true},
		{"the twin replaced the original", world{twin: storedAfterRestart, notices: []streamResult{notice}, restarted: true, stored: asTwin}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tw := tc.w.twin
			rec := record{Op: original, FirstSentAt: base, Accepted: true, Twin: &tw}
			byID := map[uuid.UUID]*record{original.ID: &rec}
			results := newResultsSnapshot()
			if tc.w.notices != nil {
				results.Conflicts[original.ID] = tc.w.notices
			}
			opts := checkOptions{}
			if tc.w.restarted {
				opts.NATSRestartedBetween = restarted
			}
			l := *ledger
			l.Transfers = map[uuid.UUID]storedTransfer{original.ID: tc.w.stored}
			v := newViolations()
			checkTwins(v, &bookReport{}, []record{rec}, byID, results, &l, opts, true)
			if got := v.count[checkConflict] > 0; got != tc.fires {
				t.Errorf("conflict check fired %v, want %v:%s", got, tc.fires, v)
			}
		})
	}

	// A 2020-API id: the first attempt (to an account of another
	// currency) was rejected, its retry applied and stored. A notice with
	// the first attempt's fields is one the client caused; one with the
	// stored retry's fields or another receiver is not.
	first := &op{ID: uuid.New(), Kind: transfer.KindTransfer, From: from, To: uuid.New(), Amount: "3", Currency: "USD", Route: viaLegacy}
	retry := *first
	retry.To = to
	first.Retry = &retry
	legacyStored := storedTransfer{ID: first.ID, Kind: transfer.KindTransfer, Status: transfer.StatusApplied,
		From: from, To: to, Amount: decimal.RequireFromString("3"), Currency: "USD", Decisions: 2}
	for _, tc := range []struct {
		name  string
		to    uuid.UUID
		fires bool
	}{{"notice of the first attempt", first.To, false}, {"notice of the stored retry", to, true}, {"notice of neither", uuid.New(), true}} {
		n := notice
		n.ID, n.ToAccountID, n.Amount = first.ID, tc.to, "3.00"
		rec := record{Op: first, FirstSentAt: base, Accepted: true}
		results := newResultsSnapshot()
		results.Conflicts[first.ID] = []streamResult{n}
		l := &ledgerSnapshot{Transfers: map[uuid.UUID]storedTransfer{first.ID: legacyStored}, Precisions: ledger.Precisions}
		v := newViolations()
		checkTwins(v, &bookReport{}, []record{rec}, map[uuid.UUID]*record{first.ID: &rec}, results, l, checkOptions{}, true)
		if got := v.count[checkConflict] > 0; got != tc.fires {
			t.Errorf("2020 API, %s: conflict check fired %v, want %v:%s", tc.name, got, tc.fires, v)
		}
	}

	// A notice for an id nobody reused.
	v := newViolations()
	results := newResultsSnapshot()
	stray := notice
	stray.ID = uuid.New()
	results.Conflicts[stray.ID] = []streamResult{stray}
	checkTwins(v, &bookReport{}, nil, map[uuid.UUID]*record{}, results, ledger, checkOptions{}, true)
	if v.count[checkConflict] != 1 {
		t.Errorf("a stray conflict notice: %s", v)
	}
}
