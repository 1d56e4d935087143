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
	srv      *server.Server
}

// Options tune Start. The zero value syncs every write, as production does.
type Options struct {
	// NoSync skips the per-write sync; faster, for benchmarks that do not
	// measure durability.
	NoSync bool
}

// Start starts a server for t and shuts it down when t ends.
func Start(t testing.TB) *Server {
	return StartWith(t, Options{})
}

// StartWith starts a server with opts.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, storeDir: t.TempDir(), port: natsbus.RandomPort}
	s.start(opts)
	t.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start(opts Options) {
	s.t.Helper()
	srv, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{
		Port:       s.port,
		StoreDir:   s.storeDir,
		NoSync:     opts.NoSync,
		ServerName: "natstest",
	})
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

// Restart stops the server and starts it again on the same port and store.
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	s.start(Options{})
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
