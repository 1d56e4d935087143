// Package natstest gives each test its own in-process JetStream server on a
// random port, with its store in the test's temporary directory. A server
// can be restarted on the same store to test what survives a restart.
package natstest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/natsbus"
)

// Server is a test's JetStream server.
type Server struct {
	t        testing.TB
	storeDir string
	port     int
	opts     Options
	srv      *server.Server
}

// Options tune Start. The zero value syncs every write, as production does.
type Options struct {
	// NoSync skips the per-write sync; faster, for benchmarks that do not
	// measure durability.
	NoSync bool
	// Auth makes the server enforce the wallet's roles: it accepts only
	// the users of natsbus.Roles, each with its role's permissions; connect
	// with ConnectAs.
	Auth bool
}

// password is every test user's password: the tests check permissions,
// not secrecy.
const password = "natstest-secret"

func users() []natsbus.User {
	var out []natsbus.User
	for _, r := range natsbus.Roles {
		out = append(out, natsbus.User{Name: r.UserName(), Password: password, Role: r})
	}
	return out
}

// Start starts a server for t and shuts it down when t ends.
func Start(t testing.TB) *Server {
	return StartWith(t, Options{})
}

// StartWith starts a server with opts.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, storeDir: t.TempDir(), port: natsbus.RandomPort, opts: opts}
	s.start()
	t.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	cfg := natsbus.EmbeddedConfig{
		Port:       s.port,
		StoreDir:   s.storeDir,
		NoSync:     s.opts.NoSync,
		ServerName: "natstest",
	}
	if s.opts.Auth {
		cfg.Users = users()
	}
	srv, err := natsbus.StartEmbedded(cfg)
	if err != nil {
		s.t.Fatalf("natstest: %v", err)
	}
	s.srv = srv
	// Keep the port across restarts so clients reconnect to the same URL.
	s.port = srv.Addr().(*net.TCPAddr).Port
}

// URL is the server's client URL.
func (s *Server) URL() string { return s.srv.ClientURL() }

// StoreDir is where the server keeps its streams.
func (s *Server) StoreDir() string { return s.storeDir }

// Shutdown stops the server; safe to call twice.
func (s *Server) Shutdown() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Restart stops the server and starts it again on the same port, store
// and options (except NoSync: a restarted server syncs every write).
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	s.opts.NoSync = false
	s.start()
}

// Credentials returns the user name and password of role on a server
// started with Auth.
func (s *Server) Credentials(role natsbus.Role) (user, pass string) {
	return role.UserName(), password
}

// ConnectAs opens a connection with role's credentials, closed when the
// test ends; opts come after the test's own options.
func (s *Server) ConnectAs(t testing.TB, role natsbus.Role, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	if !s.opts.Auth {
		t.Fatal("natstest: ConnectAs needs a server started with Auth")
	}
	user, pass := s.Credentials(role)
	base := []nats.Option{
		nats.Name(t.Name() + "-" + string(role)),
		nats.UserInfo(user, pass),
		nats.CustomInboxPrefix(role.InboxPrefix()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50 * time.Millisecond),
	}
	nc, err := nats.Connect(s.URL(), append(base, opts...)...)
	if err != nil {
		t.Fatalf("natstest: connect as %s: %v", role, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}

// Connect opens a client connection that reconnects forever (tests restart
// servers under it) and closes it when the test ends.
func (s *Server) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.URL(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond),
		nats.Name(t.Name()),
	)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}

// Setup connects and creates the streams with cfg.
func (s *Server) Setup(t testing.TB, cfg natsbus.Config) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js := s.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := natsbus.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatalf("natstest: ensure streams: %v", err)
	}
	return nc, js
}
