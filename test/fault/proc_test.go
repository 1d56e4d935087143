package fault

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc supervises one program across kills and restarts. Its output goes
// to one log file, appended to by every incarnation. An exit the suite did
// not cause is recorded as a crash.
type proc struct {
	name    string
	path    string
	args    []string
	env     []string
	logPath string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the current incarnation exits
	expected bool          // the current incarnation is being stopped by the suite
	paused   bool
	starts   int
	crashed  []string
}

// newProc prepares a program; it is killed when the test ends.
func newProc(t testing.TB, dir, name, path string, args, env []string) *proc {
	p := &proc{
		name:    name,
		path:    path,
		args:    args,
		env:     env,
		logPath: filepath.Join(dir, name+".log"),
	}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- last lines of %s (whole log kept in %s)\n%s", name, keepLog(t, p.logPath), p.logTail(40))
		}
	})
	return p
}

// start runs a new incarnation. The program is in its own process group
// and is killed if the test binary dies.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s: already running", p.name)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.starts++
	fmt.Fprintf(logf, "=== fault: start %d of %s at %s\n", p.starts, p.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.expected, p.paused = cmd, exited, false, false
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.expected {
			p.crashed = append(p.crashed, fmt.Sprintf("%s (pid %d) exited on its own: %v", p.name, cmd.Process.Pid, err))
		}
		p.cmd = nil
		close(exited)
	}()
	return nil
}

// stopWith sends sig to a running incarnation as an expected exit and
// waits up to timeout for it to go; after that it is killed.
func (p *proc) stopWith(sig syscall.Signal, timeout time.Duration) (clean bool) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	if cmd == nil {
		p.mu.Unlock()
		return true
	}
	p.expected = true
	_ = cmd.Process.Signal(sig)
	if p.paused && sig != syscall.SIGKILL {
		// A stopped process only acts on SIGKILL until it is continued.
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	p.mu.Unlock()
	select {
	case <-exited:
		return true
	case <-time.After(timeout):
	}
	_ = cmd.Process.Kill()
	<-exited
	return false
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() { p.stopWith(syscall.SIGKILL, time.Minute) }

// terminate asks for a graceful stop with SIGTERM; it reports whether the
// program exited within timeout.
func (p *proc) terminate(timeout time.Duration) bool { return p.stopWith(syscall.SIGTERM, timeout) }

// pause stops the process with SIGSTOP; resume continues it.
func (p *proc) pause() error  { return p.signalPaused(syscall.SIGSTOP, true) }
func (p *proc) resume() error { return p.signalPaused(syscall.SIGCONT, false) }

func (p *proc) signalPaused(sig syscall.Signal, paused bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("%s is not running", p.name)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return err
	}
	p.paused = paused
	return nil
}

// running reports whether an incarnation is alive.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// pid is the current incarnation's process id, or 0.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// crashes lists the exits the suite did not cause.
func (p *proc) crashes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.crashed...)
}

// rss reads the resident set size of the current incarnation in bytes.
func (p *proc) rss() (int64, error) {
	pid := p.pid()
	if pid == 0 {
		return 0, fmt.Errorf("%s is not running", p.name)
	}
	return rssOf(pid)
}

func rssOf(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// logTail returns the last n lines of the program's log.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// logAlarms returns log lines that betray a crash or a data race: a panic
// that was recovered and logged still means a bug.
func (p *proc) logAlarms() []string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, alarm := range []string{"panic:", "fatal error:", "WARNING: DATA RACE"} {
			if strings.HasPrefix(line, alarm) {
				out = append(out, p.name+": "+truncateLine(line))
				break
			}
		}
	}
	return out
}

func truncateLine(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// freePort finds a TCP port free on every interface. It draws from below
// the kernel's ephemeral range (32768 and up on Linux), where the outgoing
// connections of other processes cannot take it between this check and
// the program's bind, and remembers what it handed out so that two
// programs of one test binary never get the same port.
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for attempt := 0; attempt < 1000; attempt++ {
		port := 20000 + rand.IntN(12000)
		if portsGiven[port] {
			continue
		}
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		portsGiven[port] = true
		return port
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// keepLog copies a failed test's log out of its temporary directory, which
// the test removes, and returns where it went.
func keepLog(t testing.TB, path string) string {
	dir := keptDir(t)
	b, err := os.ReadFile(path)
	if err != nil {
		return path
	}
	dst := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return path
	}
	return dst
}

// keptDir is where a failed test's logs are kept.
func keptDir(t testing.TB) string {
	dir := filepath.Join(os.TempDir(), "wallet-fault-logs", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-"+strconv.FormatUint(seedVal, 10))
	_ = os.MkdirAll(dir, 0o755)
	return dir
}
