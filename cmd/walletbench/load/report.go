package load

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Check is one book check's verdict.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Result is one measured run: the service's, or the synchronous baseline's.
type Result struct {
	Name        string  `json:"name"`
	Via         string  `json:"via"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"target_rate,omitempty"` // 0: closed loop

	Requests   int            `json:"requests"`
	Accepted   int            `json:"accepted"`
	Failed     int            `json:"failed"` // never accepted
	FailedBy   map[string]int `json:"failed_by,omitempty"`
	Decided    int            `json:"decided"`
	Applied    int            `json:"applied"`
	Rejected   int            `json:"rejected"`
	RejectedBy map[string]int `json:"rejected_by,omitempty"`
	// DuplicateOutcomes counts outcome messages beyond the first per request.
	DuplicateOutcomes int `json:"duplicate_outcomes"`

	// SendSeconds runs from the first request to the last acceptance,
	// TotalSeconds to the last outcome.
	SendSeconds    float64 `json:"send_seconds"`
	TotalSeconds   float64 `json:"total_seconds"`
	AcceptedPerSec float64 `json:"accepted_per_s"`
	AppliedPerSec  float64 `json:"applied_per_s"`
	DecidedPerSec  float64 `json:"decided_per_s"`

	// AcceptLatency runs from when a request was due (its slot in an open
	// loop, its send in a closed one) to its 202 or PubAck; AppliedLatency
	// from acceptance to reading the applied outcome.
	AcceptLatency  Percentiles `json:"accept_latency"`
	AppliedLatency Percentiles `json:"accept_to_applied_latency"`

	// CPU is the CPU time spent over the measured phase (from the first
	// request to the last outcome): the whole machine's and by process.
	CPU *CPUUsage `json:"cpu,omitempty"`
	// CPUPerApplied is the whole machine's CPU milliseconds per applied
	// request over the measured phase.
	CPUPerApplied float64 `json:"cpu_ms_per_applied,omitempty"`

	Series  []Point          `json:"series,omitempty"`
	Checks  []Check          `json:"checks"`
	PeakRSS map[string]int64 `json:"peak_rss_bytes,omitempty"` // by process label
}

// Passed reports whether every check passed.
func (r Result) Passed() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// setCPU records the phase's CPU time and the machine's per applied request.
func (r *Result) setCPU(u *CPUUsage) {
	r.CPU = u
	if u != nil && r.Applied > 0 {
		r.CPUPerApplied = 1000 * u.MachineSeconds / float64(r.Applied)
	}
}

// summarize fills a result's counts, rates, latencies and series from a tracker.
func summarize(name, via string, t *tracker) Result {
	res := Result{
		Name:              name,
		Via:               via,
		Requests:          len(t.ids),
		Accepted:          int(t.nAccepted.Load()),
		Failed:            int(t.errN.Load()),
		FailedBy:          t.errors(),
		Decided:           int(t.nDecided.Load()),
		Applied:           int(t.nApplied.Load()),
		Rejected:          int(t.nRejected.Load()),
		RejectedBy:        t.rejectedBy(),
		DuplicateOutcomes: int(t.nDuplicate.Load()),
	}
	ts := make([]timing, len(t.ids))
	var acceptLat, appliedLat []time.Duration
	var lastAccepted, lastDecided int64
	for i := range t.ids {
		tm := timing{
			due:      t.due[i].Load(),
			accepted: t.accepted[i].Load(),
			decided:  t.decided[i].Load(),
			applied:  t.status[i].Load() == statusApplied,
		}
		ts[i] = tm
		lastAccepted = max(lastAccepted, tm.accepted)
		lastDecided = max(lastDecided, tm.decided)
		if tm.accepted > 0 && tm.due > 0 {
			acceptLat = append(acceptLat, time.Duration(tm.accepted-tm.due))
		}
		if tm.applied && tm.accepted > 0 {
			appliedLat = append(appliedLat, time.Duration(tm.decided-tm.accepted))
		}
	}
	res.AcceptLatency = Summarize(acceptLat)
	if via != ViaSync && via != ViaLegacy {
		// The baseline and the 2020 API decide when they answer: their
		// second figure would be zero.
		res.AppliedLatency = Summarize(appliedLat)
	}
	res.SendSeconds = time.Duration(lastAccepted).Seconds()
	res.TotalSeconds = time.Duration(max(lastAccepted, lastDecided)).Seconds()
	if res.SendSeconds > 0 {
		res.AcceptedPerSec = float64(res.Accepted) / res.SendSeconds
	}
	if res.TotalSeconds > 0 {
		res.AppliedPerSec = float64(res.Applied) / res.TotalSeconds
		res.DecidedPerSec = float64(res.Decided) / res.TotalSeconds
	}
	res.Series = buildSeries(ts, seriesStep(time.Duration(max(lastAccepted, lastDecided))))
	return res
}

// Machine describes where a report was measured.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model,omitempty"`
	OS       string `json:"os"`
	Go       string `json:"go"`
}

// Report is everything one invocation measured.
type Report struct {
	StartedAt time.Time `json:"started_at"`
	Command   string    `json:"command"`
	Machine   Machine   `json:"machine"`
	// LoadAvg is the 1-minute load average at the start and the end.
	LoadAvg  [2]float64     `json:"load_avg_1m"`
	Workload WorkloadReport `json:"workload"`
	Runs     []Result       `json:"runs"`
	// Ratio is the service's applied/s over the baseline's, when both ran.
	Ratio float64 `json:"applied_ratio,omitempty"`
	// CPURatio is the service's machine CPU per applied request over the
	// baseline's; below 1 the service is the cheaper.
	CPURatio float64 `json:"cpu_per_applied_ratio,omitempty"`
	// LatencyRatio is, through the 2020 API, the service's p50 from
	// request to answer over the baseline's.
	LatencyRatio float64 `json:"p50_answer_ratio,omitempty"`
	// OpenLoop describes a run at a share of the measured peak.
	OpenLoop *OpenLoop `json:"open_loop,omitempty"`
}

// OpenLoop is the open-loop run at a share of the closed-loop peak.
type OpenLoop struct {
	Share         float64     `json:"share_of_peak"`
	PeakPerSec    float64     `json:"peak_decided_per_s"`
	Rate          float64     `json:"rate_per_s"`
	AcceptLatency Percentiles `json:"accept_latency"`
}

// compare fills the ratios of a service run to a baseline run. With an
// open-loop run at a share of the peak, service is the closed-loop run.
func (r *Report) compare(service, baseline Result) {
	if baseline.AppliedPerSec > 0 {
		r.Ratio = service.AppliedPerSec / baseline.AppliedPerSec
	}
	if service.CPUPerApplied > 0 && baseline.CPUPerApplied > 0 {
		r.CPURatio = service.CPUPerApplied / baseline.CPUPerApplied
	}
	if service.Via == ViaLegacy && baseline.AcceptLatency.P50 > 0 {
		r.LatencyRatio = float64(service.AcceptLatency.P50) / float64(baseline.AcceptLatency.P50)
	}
}

// WorkloadReport describes the workload of a report.
type WorkloadReport struct {
	Accounts    int      `json:"accounts"`
	Requests    int      `json:"requests"`
	Currencies  []string `json:"currencies"`
	Transfers   int      `json:"transfers"`
	Deposits    int      `json:"deposits"`
	Withdrawals int      `json:"withdrawals"`
	MustReject  int      `json:"must_reject"`
	Holds       int      `json:"holds,omitempty"`
	Posts       int      `json:"posts,omitempty"`
	Voids       int      `json:"voids,omitempty"`
	Hot         string   `json:"hot"`
	ZipfS       float64  `json:"zipf_s,omitempty"`
	Seed        uint64   `json:"seed"`
}

func describeWorkload(w *Workload) WorkloadReport {
	tr, dep, wd, rej := w.Counts()
	wr := WorkloadReport{
		Accounts: w.Config.Accounts, Requests: len(w.Ops),
		Transfers: tr, Deposits: dep, Withdrawals: wd, MustReject: rej,
		Hot: string(w.Config.Hot), Seed: w.Config.Seed,
	}
	wr.Holds, wr.Posts, wr.Voids = w.HoldCounts()
	if wr.Hot == "" {
		wr.Hot = "none"
	} else {
		wr.ZipfS = w.Config.ZipfS
	}
	for _, c := range w.Config.Currencies {
		wr.Currencies = append(wr.Currencies, c.Code)
	}
	return wr
}

// Passed reports whether every run's checks passed.
func (r *Report) Passed() bool {
	for _, res := range r.Runs {
		if !res.Passed() {
			return false
		}
	}
	return true
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as a table for people.
func (r *Report) WriteText(w io.Writer) error {
	wl := r.Workload
	fmt.Fprintf(w, "workload: %d accounts (%s), %d requests: %d transfers, %d deposits, %d withdrawals, %d must be rejected; hot=%s",
		wl.Accounts, strings.Join(wl.Currencies, ","), wl.Requests, wl.Transfers, wl.Deposits, wl.Withdrawals, wl.MustReject, wl.Hot)
	if wl.ZipfS > 0 {
		fmt.Fprintf(w, " (zipf s=%g)", wl.ZipfS)
	}
	if wl.Holds > 0 {
		fmt.Fprintf(w, "; %d holds, %d posts, %d voids", wl.Holds, wl.Posts, wl.Voids)
	}
	fmt.Fprintf(w, ", seed %d\n", wl.Seed)
	fmt.Fprintf(w, "machine: %d CPUs %s, %s, %s; load average %.2f at start, %.2f at end\n\n",
		r.Machine.CPUs, r.Machine.CPUModel, r.Machine.OS, r.Machine.Go, r.LoadAvg[0], r.LoadAvg[1])

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(label string, f func(Result) string) {
		fmt.Fprint(tw, label+"\t")
		for _, res := range r.Runs {
			fmt.Fprint(tw, f(res)+"\t")
		}
		fmt.Fprintln(tw)
	}
	num := func(n int) string { return strconv.Itoa(n) }
	rate := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
	}
	lat := func(p Percentiles, pick func(Percentiles) time.Duration) string {
		if p.Count == 0 {
			return "-"
		}
		return ms(pick(p))
	}
	row("", func(res Result) string { return res.Name })
	row("via", func(res Result) string { return res.Via })
	row("concurrency", func(res Result) string { return num(res.Concurrency) })
	row("target rate/s", func(res Result) string {
		if res.Rate == 0 {
			return "closed loop"
		}
		return rate(res.Rate)
	})
	row("requests", func(res Result) string { return num(res.Requests) })
	row("accepted", func(res Result) string { return num(res.Accepted) })
	row("failed (never accepted)", func(res Result) string { return num(res.Failed) })
	row("applied", func(res Result) string { return num(res.Applied) })
	row("rejected", func(res Result) string { return num(res.Rejected) })
	reasons := map[string]bool{}
	for _, res := range r.Runs {
		for k := range res.RejectedBy {
			reasons[k] = true
		}
	}
	for _, reason := range slices.Sorted(maps.Keys(reasons)) {
		row("  "+reason, func(res Result) string { return num(res.RejectedBy[reason]) })
	}
	row("accepted/s", func(res Result) string { return rate(res.AcceptedPerSec) })
	row("applied/s (end to end)", func(res Result) string { return rate(res.AppliedPerSec) })
	row("seconds (send / total)", func(res Result) string {
		return fmt.Sprintf("%.1f / %.1f", res.SendSeconds, res.TotalSeconds)
	})
	for _, q := range []struct {
		name string
		pick func(Percentiles) time.Duration
	}{
		{"p50", func(p Percentiles) time.Duration { return p.P50 }},
		{"p90", func(p Percentiles) time.Duration { return p.P90 }},
		{"p99", func(p Percentiles) time.Duration { return p.P99 }},
		{"p99.9", func(p Percentiles) time.Duration { return p.P999 }},
		{"max", func(p Percentiles) time.Duration { return p.Max }},
	} {
		row("accept "+q.name+" ms", func(res Result) string { return lat(res.AcceptLatency, q.pick) })
	}
	for _, q := range []struct {
		name string
		pick func(Percentiles) time.Duration
	}{
		{"p50", func(p Percentiles) time.Duration { return p.P50 }},
		{"p99", func(p Percentiles) time.Duration { return p.P99 }},
		{"p99.9", func(p Percentiles) time.Duration { return p.P999 }},
		{"max", func(p Percentiles) time.Duration { return p.Max }},
	} {
		row("accept-to-applied "+q.name+" ms", func(res Result) string { return lat(res.AppliedLatency, q.pick) })
	}
	labels := map[string]bool{}
	for _, res := range r.Runs {
		for k := range res.PeakRSS {
			labels[k] = true
		}
	}
	for _, label := range slices.Sorted(maps.Keys(labels)) {
		row("peak RSS MiB "+label, func(res Result) string {
			if v, ok := res.PeakRSS[label]; ok {
				return strconv.FormatFloat(float64(v)/(1<<20), 'f', 1, 64)
			}
			return "-"
		})
	}
	cpuRow := func(label string, f func(u *CPUUsage) string) {
		row(label, func(res Result) string {
			if res.CPU == nil {
				return "-"
			}
			return f(res.CPU)
		})
	}
	cpuRow("CPU s machine / available", func(u *CPUUsage) string {
		return fmt.Sprintf("%.1f / %.1f", u.MachineSeconds, u.MachineCapacity)
	})
	row("CPU ms per applied, machine", func(res Result) string {
		if res.CPUPerApplied == 0 {
			return "-"
		}
		return strconv.FormatFloat(res.CPUPerApplied, 'f', 3, 64)
	})
	var usages []*CPUUsage
	for _, res := range r.Runs {
		usages = append(usages, res.CPU)
	}
	for _, label := range cpuLabels(usages...) {
		row("  "+label, func(res Result) string {
			if res.CPU == nil || res.Applied == 0 {
				return "-"
			}
			v, ok := res.CPU.Processes[label]
			if !ok {
				return "-"
			}
			return fmt.Sprintf("%.3f (%d)", 1000*v/float64(res.Applied), res.CPU.ProcessCounts[label])
		})
	}
	row("checks", func(res Result) string {
		if res.Passed() {
			return "pass"
		}
		return "FAIL"
	})
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(usages) > 0 {
		fmt.Fprintln(w, "\nCPU by process: ms per applied request (processes matched); the machine figure counts everything running on it")
	}
	if r.Ratio > 0 {
		fmt.Fprintf(w, "\nratio: service applied/s / sync baseline applied/s = %.2fx\n", r.Ratio)
	}
	if r.CPURatio > 0 {
		fmt.Fprintf(w, "cpu ratio: service machine CPU per applied / sync baseline's = %.2f\n", r.CPURatio)
	}
	if r.LatencyRatio > 0 && len(r.Runs) > 1 {
		svc, base := r.Runs[0], r.Runs[len(r.Runs)-1]
		fmt.Fprintf(w, "p50 request to answer: 2020 API %s ms at %d connections, sync baseline %s ms at %d; ratio %.2fx\n",
			ms(svc.AcceptLatency.P50), svc.Concurrency, ms(base.AcceptLatency.P50), base.Concurrency, r.LatencyRatio)
	}
	if o := r.OpenLoop; o != nil {
		fmt.Fprintf(w, "open loop at %.0f%% of the closed-loop peak (%.0f decided/s): %.0f requests/s, accept p50 %s ms, p99 %s ms\n",
			100*o.Share, o.PeakPerSec, o.Rate, ms(o.AcceptLatency.P50), ms(o.AcceptLatency.P99))
	}
	for _, res := range r.Runs {
		fmt.Fprintf(w, "\nchecks (%s):\n", res.Name)
		for _, c := range res.Checks {
			mark := "ok  "
			if !c.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "  %s %s", mark, c.Name)
			if c.Detail != "" {
				fmt.Fprintf(w, ": %s", c.Detail)
			}
			fmt.Fprintln(w)
		}
		if len(res.FailedBy) > 0 {
			fmt.Fprintf(w, "  never accepted, by error: %v\n", res.FailedBy)
		}
	}
	return nil
}

// machine reads what describes this machine.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// loadAvg1 is the 1-minute load average, or 0 where /proc has none.
func loadAvg1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
