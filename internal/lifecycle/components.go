package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/config"
	"github.com/wallet/wallet/internal/gateway"
	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/worker"
)

// NewRegistry returns the Prometheus registry a process serves on /metrics,
// with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Streams maps the stream settings to natsbus's configuration.
func Streams(cfg *config.Config) natsbus.Config {
	return natsbus.Config{
		Partitions:       cfg.Stream.Partitions,
		Replicas:         cfg.Stream.Replicas,
		RequestsMaxMsgs:  cfg.Stream.RequestsMaxMsgs,
		RequestsMaxBytes: cfg.Stream.RequestsMaxBytes,
		Duplicates:       cfg.Stream.DedupeWindow,
	}
}

// WorkerConfig maps the worker settings to the worker's configuration.
func WorkerConfig(cfg *config.Config) worker.Config {
	return worker.Config{
		Streams:     Streams(cfg),
		BatchSize:   cfg.Worker.BatchSize,
		Linger:      cfg.Worker.BatchLinger,
		Concurrency: cfg.Worker.Concurrency,
		AckWait:     cfg.Worker.AckWait,
		PinnedTTL:   cfg.Worker.PinnedTTL,
	}
}

// GatewayConfig maps the gateway settings to the gateway's configuration.
func GatewayConfig(cfg *config.Config) gateway.Config {
	tokens := make([]gateway.Token, len(cfg.Gateway.AuthTokens))
	for i, t := range cfg.Gateway.AuthTokens {
		tokens[i] = gateway.Token{Hash: t.Hash, Scope: gateway.Scope(t.Scope)}
	}
	return gateway.Config{Tokens: tokens, MaxWait: cfg.Gateway.MaxWait, MaxWaiters: cfg.Gateway.MaxWaiters}
}

// BatcherConfig maps the gateway's publish batching settings.
func BatcherConfig(cfg *config.Config) natsbus.BatcherConfig {
	return natsbus.BatcherConfig{
		MinMessages: cfg.Gateway.PublishBatchMin,
		MaxMessages: cfg.Gateway.PublishBatchMax,
	}
}

// StartWorker builds and starts a worker on nc: it ensures the streams and
// consumers, joins the membership and starts pulling its partitions.
func StartWorker(ctx context.Context, log *zap.Logger, cfg *config.Config, store *postgres.Store, nc *nats.Conn, reg prometheus.Registerer) (*worker.Worker, error) {
	w, err := worker.New(nc, store, WorkerConfig(cfg), log, reg)
	if err != nil {
		return nil, err
	}
	if err := w.Start(ctx); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	return w, nil
}

// GatewayServer is the HTTP API bound to its port.
type GatewayServer struct {
	gw   *gateway.Gateway
	bus  *gateway.NATSBus
	ln   net.Listener
	done chan error
}

// StartGateway ensures the streams exist, builds the gateway on store and
// nc and serves it on cfg.Host and cfg.Port. reg must be the registry
// /metrics serves.
func StartGateway(ctx context.Context, log *zap.Logger, cfg *config.Config, store *postgres.Store, nc *nats.Conn, reg *prometheus.Registry) (*GatewayServer, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	if err := natsbus.EnsureStreams(ctx, js, Streams(cfg)); err != nil {
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	bus, err := gateway.NewNATSBus(ctx, nc, BatcherConfig(cfg))
	if err != nil {
		return nil, err
	}
	gw, err := gateway.New(GatewayConfig(cfg), store, bus, log, reg)
	if err != nil {
		bus.Close()
		return nil, err
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		bus.Close()
		return nil, fmt.Errorf("start gateway: listen on %s (--host, --port): %w", addr, err)
	}
	if len(cfg.Gateway.AuthTokens) == 0 {
		// Configuration allows this only on loopback or with
		// --insecure-no-auth; either way it must not go unnoticed.
		log.Warn("AUTHENTICATION IS OFF: every request to the HTTP API is accepted, writes included; set --auth-tokens",
			zap.String("listen", ln.Addr().String()), zap.Bool("insecure_no_auth", cfg.Gateway.InsecureNoAuth))
	}
	s := &GatewayServer{gw: gw, bus: bus, ln: ln, done: make(chan error, 1)}
	go func() {
		err := gw.Listener(ln)
		if err != nil {
			log.Error("gateway server failed", zap.Error(err))
		}
		s.done <- err
	}()
	return s, nil
}

// Port is the port the gateway listens on.
func (s *GatewayServer) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Done delivers the server's error if it stops on its own.
func (s *GatewayServer) Done() <-chan error { return s.done }

// Drain turns /readyz unready and answers clients waiting for outcomes;
// requests are still served until Stop.
func (s *GatewayServer) Drain() { s.gw.Drain() }

// Stop stops accepting connections, waits for in-flight requests within
// ctx, then commits the publishes still queued in the bus's batcher.
func (s *GatewayServer) Stop(ctx context.Context) error {
	err := s.gw.Shutdown(ctx)
	s.bus.Close()
	return err
}

// StartEmbeddedNATS starts walletd's own JetStream server as configured by
// --nats-listen, --nats-store-dir and --nats-sync, and returns it with the
// URL clients use.
func StartEmbeddedNATS(cfg *config.Config) (*server.Server, string, error) {
	host, portText, err := net.SplitHostPort(cfg.Embedded.Listen)
	if err != nil {
		return nil, "", fmt.Errorf("--nats-listen %q: %w", cfg.Embedded.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, "", fmt.Errorf("--nats-listen %q: bad port", cfg.Embedded.Listen)
	}
	if port == 0 {
		port = natsbus.RandomPort
	} else {
		// The server itself would only time out on a taken port; probing
		// first gives the operator the reason at once.
		ln, err := net.Listen("tcp", cfg.Embedded.Listen)
		if err != nil {
			return nil, "", fmt.Errorf("embedded nats: --nats-listen %s: %w (is another NATS server running? choose another --nats-listen, or use it with --nats-url)", cfg.Embedded.Listen, err)
		}
		_ = ln.Close()
	}
	if err := os.MkdirAll(cfg.Embedded.StoreDir, 0o750); err != nil {
		return nil, "", fmt.Errorf("--nats-store-dir: %w", err)
	}
	srv, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{
		Host:       host,
		Port:       port,
		StoreDir:   cfg.Embedded.StoreDir,
		NoSync:     cfg.Embedded.Sync == config.SyncPeriodic,
		ServerName: "walletd",
	})
	if err != nil {
		return nil, "", err
	}
	return srv, srv.ClientURL(), nil
}

// StopEmbeddedNATS shuts the embedded server down and waits for it, so its
// store is closed cleanly before the process exits.
func StopEmbeddedNATS(srv *server.Server) {
	srv.Shutdown()
	srv.WaitForShutdown()
}

// NATSConnected is a readiness check on a NATS connection.
func NATSConnected(nc *nats.Conn) Check {
	return Check{Name: "nats", Probe: func(context.Context) error {
		if !nc.IsConnected() {
			return errors.New("not connected")
		}
		return nil
	}}
}

// PostgresPing is a readiness check on the store.
func PostgresPing(store *postgres.Store) Check {
	return Check{Name: "postgres", Probe: store.Ping}
}
