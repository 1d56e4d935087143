package load

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Fixtures in the kernel's format (proc(5)).
const (
	procStatFixture = `cpu  134651 3 38062 44999 701 5 980 838 17 0
cpu0 68129 0 17911 23328 74 0 123 368 0 0
cpu1 66522 3 20151 21671 627 5 857 470 17 0
intr 1 2 3
ctxt 9
`
	// A worker named with a space and a closing parenthesis: fields are
	// counted from the last ')'. utime 250, stime 50, starttime 110672.
	procPIDFixture = `8719 (my (odd) name) S 8672 8672 15076 0 -1 4194304 98 0 0 0 250 50 0 0 20 0 9 0 110672 3133440 380 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0
`
)

func TestParseMachineCPU(t *testing.T) {
	t.Parallel()
	got, err := parseMachineCPU([]byte(procStatFixture))
	if err != nil {
		t.Fatal(err)
	}
	// user+nice+system+irq+softirq+steal; guest (17) is inside user.
	wantBusy := uint64(134651 + 3 + 38062 + 5 + 980 + 838)
	if got.busy != wantBusy || got.total != wantBusy+44999+701 {
		t.Fatalf("parseMachineCPU = %+v, want busy %d total %d", got, wantBusy, wantBusy+44999+701)
	}
	for name, bad := range map[string]string{
		"no cpu line": "cpu0 1 2 3 4\n",
		"short line":  "cpu  1 2 3\n",
		"not numbers": "cpu  1 x 3 4 5\n",
	} {
		if _, err := parseMachineCPU([]byte(bad)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseProcCPU(t *testing.T) {
	t.Parallel()
	got, err := parseProcCPU([]byte(procPIDFixture))
	if err != nil {
		t.Fatal(err)
	}
	if got.comm != "my (odd) name" || got.ticks != 300 || got.start != 110672 {
		t.Fatalf("parseProcCPU = %+v", got)
	}
	for name, bad := range map[string]string{
		"no name":     "8719 S 1 2 3",
		"truncated":   "8719 (cat) R 8672 8672",
		"not numbers": "8719 (cat) R 1 1 1 0 -1 4194304 98 0 0 0 x 50 0 0 20 0 1 0 110672 1 1",
	} {
		if _, err := parseProcCPU([]byte(bad)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseCPUTargets(t *testing.T) {
	t.Parallel()
	got, err := ParseCPUTargets("walletd=4242, postgres=postgres,nats=nats-server")
	if err != nil {
		t.Fatal(err)
	}
	want := []CPUTarget{{Label: "walletd", PID: 4242}, {Label: "postgres", Comm: "postgres"}, {Label: "nats", Comm: "nats-server"}}
	if len(got) != len(want) {
		t.Fatalf("ParseCPUTargets = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("target %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"walletd", "=12", "walletd=", "walletd=-3"} {
		if _, err := ParseCPUTargets(bad); err == nil {
			t.Errorf("ParseCPUTargets(%q): no error", bad)
		}
	}
}

// writeProc writes a fake /proc: the machine line and one stat file per
// process, as "comm ticks start".
func writeProc(t *testing.T, dir string, busy, idle uint64, procs map[int]procCPU) {
	t.Helper()
	for _, e := range mustReadDir(t, dir) {
		if err := os.RemoveAll(filepath.Join(dir, e)); err != nil {
			t.Fatal(err)
		}
	}
	stat := "cpu  " + strconv.FormatUint(busy, 10) + " 0 0 " + strconv.FormatUint(idle, 10) + " 0 0 0 0 0 0\n"
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o600); err != nil {
		t.Fatal(err)
	}
	for pid, p := range procs {
		d := filepath.Join(dir, strconv.Itoa(pid))
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		line := strconv.Itoa(pid) + " (" + p.comm + ") S 1 1 1 0 -1 0 0 0 0 0 " +
			strconv.FormatUint(p.ticks, 10) + " 0 0 0 20 0 1 0 " + strconv.FormatUint(p.start, 10) + " 0 0\n"
		if err := os.WriteFile(filepath.Join(d, "stat"), []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func mustReadDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestCPUBetweenSnapshots(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	probe := &cpuProbe{
		proc:    dir,
		self:    10,
		targets: []CPUTarget{{Label: "walletd", PID: 20}, {Label: "postgres", Comm: "postgres"}},
	}
	writeProc(t, dir, 1000, 500, map[int]procCPU{
		10: {comm: "walletbench", ticks: 40, start: 1},
		20: {comm: "walletd", ticks: 100, start: 2},
		30: {comm: "postgres", ticks: 7, start: 3},   // the postmaster
		31: {comm: "postgres", ticks: 900, start: 4}, // a backend that ends
		40: {comm: "unrelated", ticks: 5, start: 5},
		50: {comm: "gateway", ticks: 5, start: 6}, // no target names it
	})
	a, err := probe.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	a.at = time.Unix(0, 0)
	writeProc(t, dir, 1400, 700, map[int]procCPU{
		10: {comm: "walletbench", ticks: 65, start: 1},
		20: {comm: "walletd", ticks: 250, start: 2},
		30: {comm: "postgres", ticks: 9, start: 3},
		32: {comm: "postgres", ticks: 30, start: 8}, // a new backend: all of it counts
		40: {comm: "unrelated", ticks: 500, start: 5},
		50: {comm: "gateway", ticks: 50, start: 6},
	})
	b, err := probe.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b.at = time.Unix(2, 0)

	u := cpuBetween(a, b)
	if u.WallSeconds != 2 || u.MachineSeconds != 4 || u.MachineCapacity != 6 {
		t.Errorf("machine: %+v", u)
	}
	want := map[string]float64{SelfLabel: 0.25, "walletd": 1.5, "postgres": 0.32}
	if len(u.Processes) != len(want) {
		t.Errorf("processes = %v, want %v", u.Processes, want)
	}
	for k, v := range want {
		if got := u.Processes[k]; got < v-1e-9 || got > v+1e-9 {
			t.Errorf("%s = %v s, want %v", k, got, v)
		}
	}
	if u.ProcessCounts["postgres"] != 2 {
		t.Errorf("postgres processes = %d, want 2", u.ProcessCounts["postgres"])
	}
}

func TestCPUBetweenReusedPID(t *testing.T) {
	t.Parallel()
	key := procKey{"postgres", 31}
	a := cpuSnapshot{procs: map[procKey]procCPU{key: {comm: "postgres", ticks: 900, start: 4}}}
	b := cpuSnapshot{procs: map[procKey]procCPU{key: {comm: "postgres", ticks: 12, start: 99}}}
	if got := cpuBetween(a, b).Processes["postgres"]; got != 0.12 {
		t.Fatalf("a new process under an old pid counts whole: got %v s, want 0.12", got)
	}
}
