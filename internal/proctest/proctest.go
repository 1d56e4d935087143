// Package proctest runs the wallet's binaries as subprocesses in tests:
// it builds each once per test binary, starts it with arguments and a clean
// environment, collects its JSON log lines, sends signals and waits for the
// exit. Test-only.
package proctest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binDir  string
	buildMu sync.Mutex
	built   = map[string]string{}
)

// Main runs a test binary's tests with a temporary directory for the
// binaries Build makes, removed afterwards. Call it from TestMain.
func Main(m *testing.M) {
	dir, err := os.MkdirTemp("", "proctest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "proctest:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// Build compiles the main package pkg (an import path such as
// github.com/wallet/wallet/cmd/walletd) once per test binary and returns the
// executable's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	if binDir == "" {
		t.Fatal("proctest: call proctest.Main from TestMain")
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[pkg]; ok {
		return bin
	}
	bin := filepath.Join(binDir, path.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	built[pkg] = bin
	return bin
}

// Line is one JSON log line.
type Line map[string]any

// Msg is the line's message.
func (l Line) Msg() string { s, _ := l["msg"].(string); return s }

// String returns the field as a string ("" when absent).
func (l Line) String(field string) string {
	switch v := l[field].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// Process is a running binary.
type Process struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd

	stdout bytes.Buffer

	mu      sync.Mutex
	raw     []string // every stderr line
	lines   []Line   // the ones that parsed as JSON
	changed chan struct{}

	exited   chan struct{}
	exitCode int
}

// Start runs bin with args. The child's environment is the test's without
// any WALLET_* variable, plus env ("NAME=value" entries), so a developer's
// settings cannot leak into a test. The process is killed when t ends if it
// is still running.
func Start(t testing.TB, bin string, args []string, env ...string) *Process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WALLET_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	p := &Process{t: t, name: filepath.Base(bin), cmd: cmd, changed: make(chan struct{}), exited: make(chan struct{})}
	cmd.Stdout = &lockedWriter{mu: &p.mu, w: &p.stdout}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			text := sc.Text()
			var l Line
			p.mu.Lock()
			p.raw = append(p.raw, text)
			if json.Unmarshal([]byte(text), &l) == nil {
				p.lines = append(p.lines, l)
			}
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	go func() {
		<-readDone // Wait closes the pipe; read it all first.
		err := cmd.Wait()
		code := 0
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
		} else if err != nil {
			code = -1
		}
		p.mu.Lock()
		p.exitCode = code
		p.mu.Unlock()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s stderr (last lines):\n%s", p.name, p.tail(40))
		}
	})
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *Process) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	from := max(0, len(p.raw)-n)
	return strings.Join(p.raw[from:], "\n")
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stdout is everything the process wrote to stdout so far.
func (p *Process) Stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

// Stderr is every stderr line so far.
func (p *Process) Stderr() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.raw...)
}

// Lines returns the JSON log lines so far whose message is msg (all lines
// when msg is empty).
func (p *Process) Lines(msg string) []Line {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Line
	for _, l := range p.lines {
		if msg == "" || l.Msg() == msg {
			out = append(out, l)
		}
	}
	return out
}

// WaitLog waits for a JSON log line with message msg and returns it. It
// fails the test if the process exits first or timeout passes.
func (p *Process) WaitLog(msg string, timeout time.Duration) Line {
	p.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		p.mu.Lock()
		for ; seen < len(p.lines); seen++ {
			if p.lines[seen].Msg() == msg {
				l := p.lines[seen]
				p.mu.Unlock()
				return l
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.exited:
			// Lines written just before the exit are already read.
			if ls := p.Lines(msg); len(ls) > 0 {
				return ls[0]
			}
			p.t.Fatalf("%s exited (status %d) before logging %q", p.name, p.ExitCode(), msg)
		case <-deadline.C:
			p.t.Fatalf("%s did not log %q within %s", p.name, msg, timeout)
		}
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s: %v", sig, err)
	}
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitCode is the exit status once Exited is closed.
func (p *Process) ExitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitCode
}

// Wait waits up to timeout for the process to exit and returns its status;
// past the timeout it kills the process and fails the test.
func (p *Process) Wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.ExitCode()
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		p.t.Fatalf("%s did not exit within %s", p.name, timeout)
		return -1
	}
}
