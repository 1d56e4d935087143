package fault

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/natsbus"
)

// natsServer is a nats-server process with JetStream and its store on
// disk, syncing every write before acknowledging it, as production runs.
// Restarts keep the port and the store. Like a deployment
// (deployments/nats/nats.conf) it accepts only the role users of
// internal/natsbus, each with its role's permissions, and one operator
// user without limits that only the suite's own checks use.
type natsServer struct {
	*proc
	port    int
	monitor int
	store   string
	users   map[natsbus.Role]natsCredential
	admin   natsCredential

	mu     sync.Mutex
	starts []time.Time // when each incarnation started
}

// natsCredential is a user name and password on the suite's server.
type natsCredential struct {
	User, Password string
}

// adminUser is the operator's account: it reads every stream for the
// checks, and plays a client that got round the permissions. No service
// connects with it.
const adminUser = "fault-admin"

// newPassword draws a password, so no test depends on a known one.
func newPassword(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// natsAuthorization renders the users block of the server's config: each
// role's publish and subscribe allow lists from natsbus, as
// deployments/nats/nats.conf writes them by hand.
func natsAuthorization(users map[natsbus.Role]natsCredential, admin natsCredential) string {
	list := func(subjects []string) string {
		q := make([]string, len(subjects))
		for i, s := range subjects {
			q[i] = fmt.Sprintf("%q", s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	var b strings.Builder
	b.WriteString("authorization {\n  users = [\n")
	for _, r := range natsbus.Roles {
		perm := r.Permissions()
		fmt.Fprintf(&b, "    {user: %q, password: %q, permissions: {publish: {allow: %s}, subscribe: {allow: %s}}}\n",
			users[r].User, users[r].Password, list(perm.Publish.Allow), list(perm.Subscribe.Allow))
	}
	fmt.Fprintf(&b, "    {user: %q, password: %q}\n  ]\n}\n", admin.User, admin.Password)
	return b.String()
}

// startNATS writes the server's config and starts it.
func startNATS(t testing.TB, bin binaries, dir string) *natsServer {
	t.Helper()
	s := &natsServer{port: freePort(t), monitor: freePort(t), store: filepath.Join(dir, "jetstream"),
		users: map[natsbus.Role]natsCredential{}, admin: natsCredential{adminUser, newPassword(t)}}
	for _, r := range natsbus.Roles {
		s.users[r] = natsCredential{r.UserName(), newPassword(t)}
	}
	conf := fmt.Sprintf(`server_name: fault
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
max_payload: 1MB
jetstream {
  store_dir: %q
  sync_interval: always
}
`, s.port, s.monitor, s.store) + natsAuthorization(s.users, s.admin)
	confPath := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s.proc = newProc(t, dir, "nats-server", bin.NATS, []string{"-c", confPath}, nil)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nats store listing kept in %s", s.keepListing(t))
		}
	})
	if err := s.restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// URL is the client URL.
func (s *natsServer) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// restart starts the server if it is down and waits until JetStream
// answers.
func (s *natsServer) restart(ctx context.Context) error {
	if !s.running() {
		s.mu.Lock()
		s.starts = append(s.starts, time.Now())
		s.mu.Unlock()
		if err := s.start(); err != nil {
			return err
		}
	}
	return s.waitReady(ctx)
}

// restartedBetween reports whether an incarnation of the server started
// in (from, to]: the server then rebuilt its dedupe state from the
// messages it still held.
func (s *natsServer) restartedBetween(from, to time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, at := range s.starts {
		if at.After(from) && !at.After(to) {
			return true
		}
	}
	return false
}

// credential is role's user on the server.
func (s *natsServer) credential(role natsbus.Role) natsCredential { return s.users[role] }

// violations returns the server's log lines about a permission it
// refused, from connections not named in except.
func (s *natsServer) violations(except ...string) []string {
	f, err := os.Open(s.logPath)
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "Violation") || strings.Contains(line, "Maximum Payload") {
			continue
		}
		for _, name := range except {
			if strings.Contains(line, name) {
				continue lines
			}
		}
		out = append(out, truncateLine(line))
	}
	return out
}

// waitReady polls until a client can connect and JetStream answers.
func (s *natsServer) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	for {
		if last = s.ping(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nats-server not ready: %w", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *natsServer) ping(ctx context.Context) error {
	nc, err := nats.Connect(s.URL(), nats.Timeout(time.Second), nats.NoReconnect(), nats.UserInfo(s.admin.User, s.admin.Password))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(pctx)
	return err
}

// connect opens a client connection as cred that reconnects forever,
// closed when the test ends; opts come after the suite's own.
func (s *natsServer) connect(t testing.TB, name string, cred natsCredential, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.URL(), append([]nats.Option{
		nats.Name(name),
		nats.UserInfo(cred.User, cred.Password),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		// Publishes made while disconnected must fail, not queue: a
		// producer only counts a request as accepted on its PubAck.
		nats.ReconnectBufSize(-1),
	}, opts...)...)
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// keepListing writes the store directory's file listing next to the kept
// logs: which streams and consumers the server had on disk.
func (s *natsServer) keepListing(t testing.TB) string {
	var b strings.Builder
	_ = filepath.WalkDir(s.store, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(s.store, path)
		if info, err := d.Info(); err == nil {
			fmt.Fprintf(&b, "%10d %s %s\n", info.Size(), info.ModTime().UTC().Format("15:04:05.000"), rel)
		}
		return nil
	})
	path := filepath.Join(keptDir(t), "nats-store.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return err.Error()
	}
	return path
}
