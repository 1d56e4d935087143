package load

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc CPU times. It is
// 100 on every Linux architecture Go runs on; reading it would need cgo
// (sysconf).
const clockTicks = 100

// SelfLabel names the tool's own process in the CPU figures.
const SelfLabel = "walletbench"

// CPUTarget names processes whose CPU time a run records: the process
// with PID, or when PID is zero every process whose command name (the
// comm of /proc/<pid>/stat) is Comm.
type CPUTarget struct {
	Label string
	PID   int
	Comm  string
}

// DefaultCPUTargets are the service's processes by command name: walletd,
// or the gateway and worker binaries, and every PostgreSQL process. A
// separate nats-server is left out because one unrelated to the service
// often runs beside it; name it with nats=nats-server.
var DefaultCPUTargets = []CPUTarget{
	{Label: "walletd", Comm: "walletd"},
	{Label: "gateway", Comm: "gateway"},
	{Label: "worker", Comm: "worker"},
	{Label: "postgres", Comm: "postgres"},
}

// ParseCPUTargets reads "label=pid" or "label=command-name" pairs,
// comma-separated.
func ParseCPUTargets(s string) ([]CPUTarget, error) {
	var out []CPUTarget
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		label, v, ok := strings.Cut(part, "=")
		if !ok || label == "" || v == "" {
			return nil, fmt.Errorf("cpu %q: want label=pid or label=command-name", part)
		}
		t := CPUTarget{Label: label}
		if pid, err := strconv.Atoi(v); err == nil {
			if pid < 1 {
				return nil, fmt.Errorf("cpu %q: want a positive pid", part)
			}
			t.PID = pid
		} else {
			t.Comm = v
		}
		out = append(out, t)
	}
	return out, nil
}

// machineCPU is the whole machine's CPU time from /proc/stat, in ticks:
// busy counts user, nice, system, irq, softirq and steal (guest time is
// already inside user), total adds idle and iowait.
type machineCPU struct {
	busy, total uint64
}

// parseMachineCPU reads the aggregate "cpu" line of /proc/stat.
func parseMachineCPU(stat []byte) (machineCPU, error) {
	for _, line := range bytes.Split(stat, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		// user nice system idle iowait irq softirq steal; older kernels
		// stop earlier, and a missing field counts as zero.
		var v [8]uint64
		for i := range v {
			if i+1 >= len(f) {
				break
			}
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return machineCPU{}, fmt.Errorf("/proc/stat cpu field %d: %w", i+1, err)
			}
			v[i] = n
		}
		if len(f) < 5 {
			return machineCPU{}, errors.New("/proc/stat: short cpu line")
		}
		busy := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
		return machineCPU{busy: busy, total: busy + v[3] + v[4]}, nil
	}
	return machineCPU{}, errors.New("/proc/stat: no cpu line")
}

// procCPU is one process's CPU time from /proc/<pid>/stat.
type procCPU struct {
	comm  string
	ticks uint64 // utime + stime, all threads
	start uint64 // starttime: tells a reused pid from the process before it
}

// parseProcCPU reads /proc/<pid>/stat. The command name sits in
// parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last closing one.
func parseProcCPU(stat []byte) (procCPU, error) {
	open := bytes.IndexByte(stat, '(')
	end := bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return procCPU{}, errors.New("proc stat: no command name")
	}
	f := strings.Fields(string(stat[end+1:]))
	// Field 3 (state) is f[0], so field n is f[n-3]: utime 14, stime 15,
	// starttime 22.
	if len(f) < 20 {
		return procCPU{}, fmt.Errorf("proc stat: %d fields after the command name", len(f))
	}
	var v [3]uint64
	for i, idx := range []int{11, 12, 19} {
		n, err := strconv.ParseUint(f[idx], 10, 64)
		if err != nil {
			return procCPU{}, fmt.Errorf("proc stat field %d: %w", idx+3, err)
		}
		v[i] = n
	}
	return procCPU{comm: string(stat[open+1 : end]), ticks: v[0] + v[1], start: v[2]}, nil
}

// cpuSnapshot is the CPU time of the machine and of the targets' processes
// at one moment.
type cpuSnapshot struct {
	at      time.Time
	machine machineCPU
	procs   map[procKey]procCPU
}

type procKey struct {
	label string
	pid   int
}

// cpuProbe takes snapshots from a /proc tree.
type cpuProbe struct {
	proc    string // "/proc", or a fixture tree in tests
	targets []CPUTarget
	self    int
}

func newCPUProbe(targets []CPUTarget) *cpuProbe {
	return &cpuProbe{proc: "/proc", targets: targets, self: os.Getpid()}
}

// snapshot reads the machine and every matching process. Processes that
// end while it reads are skipped.
func (p *cpuProbe) snapshot() (cpuSnapshot, error) {
	s := cpuSnapshot{at: time.Now(), procs: map[procKey]procCPU{}}
	b, err := os.ReadFile(filepath.Join(p.proc, "stat"))
	if err != nil {
		return s, err
	}
	if s.machine, err = parseMachineCPU(b); err != nil {
		return s, err
	}
	read := func(pid int) (procCPU, bool) {
		b, err := os.ReadFile(filepath.Join(p.proc, strconv.Itoa(pid), "stat"))
		if err != nil {
			return procCPU{}, false
		}
		pc, err := parseProcCPU(b)
		return pc, err == nil
	}
	if pc, ok := read(p.self); ok {
		s.procs[procKey{SelfLabel, p.self}] = pc
	}
	byComm := map[string][]string{}
	for _, t := range p.targets {
		if t.PID > 0 {
			if pc, ok := read(t.PID); ok {
				s.procs[procKey{t.Label, t.PID}] = pc
			}
			continue
		}
		byComm[t.Comm] = append(byComm[t.Comm], t.Label)
	}
	if len(byComm) == 0 {
		return s, nil
	}
	entries, err := os.ReadDir(p.proc)
	if err != nil {
		return s, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == p.self {
			continue
		}
		pc, ok := read(pid)
		if !ok {
			continue
		}
		for _, label := range byComm[pc.comm] {
			s.procs[procKey{label, pid}] = pc
		}
	}
	return s, nil
}

// CPUUsage is the CPU time spent over a measured phase, in seconds.
type CPUUsage struct {
	WallSeconds    float64 `json:"wall_seconds"`
	MachineSeconds float64 `json:"machine_seconds"` // every core's busy time, /proc/stat
	// MachineCapacity is the machine's CPU time available over the
	// phase (cores x wall time, from /proc/stat), for reading
	// MachineSeconds as a share.
	MachineCapacity float64            `json:"machine_capacity_seconds"`
	Processes       map[string]float64 `json:"processes,omitempty"` // by label
	// ProcessCounts is how many processes each label matched.
	ProcessCounts map[string]int `json:"process_counts,omitempty"`
}

// cpuBetween is the CPU time spent between two snapshots. A process in
// both counts its growth; one that started in between counts whole (it
// is new: a connection's backend, say); one that ended in between is lost,
// as the kernel gives its time to its parent only when reaped.
func cpuBetween(a, b cpuSnapshot) CPUUsage {
	u := CPUUsage{
		WallSeconds:     b.at.Sub(a.at).Seconds(),
		MachineSeconds:  float64(b.machine.busy-a.machine.busy) / clockTicks,
		MachineCapacity: float64(b.machine.total-a.machine.total) / clockTicks,
		Processes:       map[string]float64{},
		ProcessCounts:   map[string]int{},
	}
	for k, after := range b.procs {
		before, ok := a.procs[k]
		ticks := after.ticks
		if ok && before.start == after.start && before.ticks <= after.ticks {
			ticks -= before.ticks
		}
		u.Processes[k.label] += float64(ticks) / clockTicks
		u.ProcessCounts[k.label]++
	}
	return u
}

// cpuMeter measures one phase; a nil meter measures nothing.
type cpuMeter struct {
	probe *cpuProbe
	start cpuSnapshot
}

// startCPU takes the opening snapshot. Where /proc cannot be read (not
// Linux) it returns nil and the report has no CPU figures.
func startCPU(targets []CPUTarget) *cpuMeter {
	p := newCPUProbe(targets)
	s, err := p.snapshot()
	if err != nil {
		return nil
	}
	return &cpuMeter{probe: p, start: s}
}

// finish takes the closing snapshot and returns the usage, nil if none.
func (m *cpuMeter) finish() *CPUUsage {
	if m == nil {
		return nil
	}
	s, err := m.probe.snapshot()
	if err != nil {
		return nil
	}
	u := cpuBetween(m.start, s)
	return &u
}

// cpuLabels returns the labels with a figure in any of the usages, sorted.
func cpuLabels(us ...*CPUUsage) []string {
	var out []string
	for _, u := range us {
		if u == nil {
			continue
		}
		for k := range u.Processes {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}
