package load

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/transfer"
)

// syntheticTracker builds a run of n requests, one due every millisecond,
// accepted 2 ms after it was due and decided 10 ms after acceptance; every
// tenth is rejected for insufficient funds.
func syntheticTracker(n int) *tracker {
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
	}
	t := newTracker(ids)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t.begin(start)
	for i, id := range ids {
		due := start.Add(time.Duration(i) * time.Millisecond)
		t.markDue(i, due)
		t.markAccepted(i, due.Add(2*time.Millisecond))
		status, reason := transfer.StatusApplied, ""
		if i%10 == 0 {
			status, reason = transfer.StatusRejected, string(transfer.CodeInsufficientFunds)
		}
		t.markOutcome(id, status, reason, due.Add(12*time.Millisecond))
	}
	return t
}

func TestSummarizeTracker(t *testing.T) {
	t.Parallel()
	tr := syntheticTracker(2000)
	// A repeated identical outcome is counted, a disagreeing one flagged.
	tr.markOutcome(tr.ids[1], transfer.StatusApplied, "", tr.start.Add(time.Second))
	tr.markOutcome(tr.ids[2], transfer.StatusRejected, "insufficient_funds", tr.start.Add(time.Second))
	res := summarize("service", ViaNATS, tr)
	if res.Accepted != 2000 || res.Decided != 2000 || res.Applied != 1800 || res.Rejected != 200 {
		t.Fatalf("counts: %+v", res)
	}
	if res.RejectedBy["insufficient_funds"] != 200 {
		t.Errorf("rejected by: %v", res.RejectedBy)
	}
	if res.DuplicateOutcomes != 2 || tr.nMismatch.Load() != 1 {
		t.Errorf("duplicates %d, mismatches %d", res.DuplicateOutcomes, tr.nMismatch.Load())
	}
	if res.AcceptLatency.P50 != 2*time.Millisecond || res.AcceptLatency.Max != 2*time.Millisecond {
		t.Errorf("accept latency: %+v", res.AcceptLatency)
	}
	if res.AppliedLatency.P99 != 10*time.Millisecond || res.AppliedLatency.Count != 1800 {
		t.Errorf("applied latency: %+v", res.AppliedLatency)
	}
	// Last acceptance at 2.001 s; last outcome at 2.011 s.
	if res.SendSeconds < 2.0 || res.SendSeconds > 2.002 || res.TotalSeconds < 2.01 || res.TotalSeconds > 2.012 {
		t.Errorf("seconds: send %v total %v", res.SendSeconds, res.TotalSeconds)
	}
	if res.AppliedPerSec < 894 || res.AppliedPerSec > 896 {
		t.Errorf("applied/s %v, want 1800/2.011", res.AppliedPerSec)
	}
	// The series has 250 ms bins carrying about 1000 accepted/s each.
	if len(res.Series) < 8 {
		t.Fatalf("series has %d points", len(res.Series))
	}
	if p := res.Series[2]; p.Accepted != 1000 || p.AcceptP99 != 2 {
		t.Errorf("series point 2: %+v", p)
	}
	obs := tr.observed(func(i int) bool { return i == 0 })
	if !obs[0].MustReject || obs[0].Applied || obs[0].Reason != "insufficient_funds" || !obs[2].Mismatch || obs[1].Outcomes != 2 {
		t.Errorf("observed: %+v %+v %+v", obs[0], obs[1], obs[2])
	}
}

func TestTrackerOutstanding(t *testing.T) {
	t.Parallel()
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	tr := newTracker(ids)
	tr.begin(time.Now())
	// An outcome may be read before the sender records the acceptance.
	tr.markOutcome(ids[0], transfer.StatusApplied, "", time.Now())
	tr.markAccepted(0, time.Now())
	tr.markAccepted(1, time.Now())
	tr.markOutcome(uuid.New(), transfer.StatusApplied, "", time.Now())
	if got := tr.outstanding(); got != 1 {
		t.Errorf("outstanding %d, want 1", got)
	}
	if tr.drained() {
		t.Error("drained with request 1 undecided")
	}
	if m := tr.missing(); len(m) != 1 || m[0] != 1 {
		t.Errorf("missing %v", m)
	}
	if tr.nForeign.Load() != 1 {
		t.Errorf("foreign outcomes %d", tr.nForeign.Load())
	}
	tr.markOutcome(ids[1], transfer.StatusRejected, "insufficient_funds", time.Now())
	if tr.outstanding() != 0 || !tr.drained() {
		t.Error("not drained after every accepted request was decided")
	}
}

func TestReportText(t *testing.T) {
	t.Parallel()
	w, err := Generate(WorkloadConfig{Accounts: 10, Requests: 100, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	svc := summarize("service via nats", ViaNATS, syntheticTracker(500))
	svc.Checks = []Check{{Name: "money conserved", OK: true}}
	base := summarize("sync baseline", ViaSync, syntheticTracker(100))
	base.Checks = []Check{{Name: "money conserved", OK: false, Detail: "USD: off by 1"}}
	rep := &Report{Machine: machine(), Workload: describeWorkload(w), Runs: []Result{svc, base}, Ratio: 2.5}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"applied/s (end to end)", "accept p99.9 ms", "insufficient_funds", "2.50x", "FAIL money conserved: USD: off by 1", "service via nats"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if rep.Passed() {
		t.Error("report with a failed check passed")
	}
	b.Reset()
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Runs []struct {
			Applied       int     `json:"applied"`
			AppliedPerSec float64 `json:"applied_per_s"`
			Accept        struct {
				P99 float64 `json:"p99_ms"`
			} `json:"accept_latency"`
		} `json:"runs"`
		Ratio float64 `json:"applied_ratio"`
	}
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Runs) != 2 || back.Runs[0].Applied != 450 || back.Runs[0].Accept.P99 != 2 || back.Ratio != 2.5 {
		t.Errorf("json round trip: %+v", back)
	}
}

func TestWriteSVG(t *testing.T) {
	t.Parallel()
	runs := []Result{summarize("service", ViaHTTP, syntheticTracker(3000)), summarize("sync baseline", ViaSync, syntheticTracker(1000))}
	var b bytes.Buffer
	if err := WriteSVG(&b, "walletbench <test> & more", runs); err != nil {
		t.Fatal(err)
	}
	// The output is well-formed XML with one path per drawn series: two
	// throughput lines per run, four latency lines for the service and two
	// for the baseline.
	dec := xml.NewDecoder(&b)
	paths, texts := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("svg is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "path":
				paths++
			case "text":
				texts++
			}
		}
	}
	if paths != 10 {
		t.Errorf("%d paths, want 10", paths)
	}
	if texts < 20 {
		t.Errorf("%d text elements: axes or legend missing", texts)
	}
}

func TestNiceScale(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ v, top, step float64 }{
		{7, 8, 2}, {10, 10, 2}, {23_456, 25_000, 5000}, {0.3, 0.3, 0.1}, {999, 1000, 200}, {0, 1, 0.2},
	} {
		top, step := niceScale(c.v)
		if math.Abs(top-c.top) > 1e-9*c.top || math.Abs(step-c.step) > 1e-9*c.step {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", c.v, top, step, c.top, c.step)
		}
	}
}

// TestReportCompare checks the three ratios of a 2020-API run to the
// baseline and their lines in the text report.
func TestReportCompare(t *testing.T) {
	t.Parallel()
	svc := summarize("service via the 2020 API", ViaLegacy, syntheticTracker(500)) // 450 applied
	svc.Concurrency = 4
	svc.setCPU(&CPUUsage{MachineSeconds: 0.9, MachineCapacity: 2, Processes: map[string]float64{"walletd": 0.45, SelfLabel: 0.09}, ProcessCounts: map[string]int{"walletd": 1, SelfLabel: 1}})
	base := summarize("sync baseline", ViaSync, syntheticTracker(100)) // 90 applied
	base.Concurrency = 4
	base.AcceptLatency.P50 = 8 * time.Millisecond
	base.setCPU(&CPUUsage{MachineSeconds: 0.36, MachineCapacity: 2, Processes: map[string]float64{"postgres": 0.18}, ProcessCounts: map[string]int{"postgres": 5}})
	if svc.CPUPerApplied != 2 || base.CPUPerApplied != 4 {
		t.Fatalf("cpu ms per applied: service %v, baseline %v", svc.CPUPerApplied, base.CPUPerApplied)
	}
	if svc.AppliedLatency.Count != 0 {
		t.Errorf("the 2020 API answers with the outcome, yet accept-to-applied has %d figures", svc.AppliedLatency.Count)
	}
	rep := &Report{Runs: []Result{svc, base}}
	rep.compare(svc, base)
	if rep.CPURatio != 0.5 || rep.LatencyRatio != 0.25 || rep.Ratio <= 0 {
		t.Fatalf("ratios: applied %v, cpu %v, latency %v", rep.Ratio, rep.CPURatio, rep.LatencyRatio)
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"cpu ratio: service machine CPU per applied / sync baseline's = 0.50",
		"p50 request to answer: 2020 API 2.00 ms at 4 connections, sync baseline 8.00 ms at 4; ratio 0.25x",
		"1.000 (1)", // walletd: 0.45 s over 450 applied, one process
		"2.000 (5)", // postgres: 0.18 s over 90 applied, five processes
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
