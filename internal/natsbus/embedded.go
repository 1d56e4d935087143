package natsbus

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// RandomPort asks StartEmbedded for any free port.
const RandomPort = server.RANDOM_PORT

// EmbeddedConfig configures an in-process JetStream server.
type EmbeddedConfig struct {
	// Host defaults to 127.0.0.1: the single-process mode serves local
	// producers and the nats CLI, not the network.
	Host string
	// Port defaults to 4222; RandomPort picks a free one.
	Port int
	// StoreDir holds the streams; required.
	StoreDir string
	// NoSync turns off syncing every write before its PubAck. With it a
	// power loss (not a process crash) can lose acknowledged requests;
	// only for throwaway environments.
	NoSync bool
	// ServerName names the server in logs and advisories.
	ServerName string
	// MaxStore caps JetStream's disk use (0: the server's default, most of
	// the free space).
	MaxStore int64
	// Logs turns on the server's own log lines (to stderr).
	Logs bool
	// ReadyTimeout bounds the wait for the server to accept connections.
	ReadyTimeout time.Duration
}

// StartEmbedded starts a JetStream server in this process and waits until it
// accepts connections. Shut it down with Shutdown and WaitForShutdown.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("start embedded nats: store dir is required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = 4222
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "walletd"
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 30 * time.Second
	}
	opts := &server.Options{
		ServerName:        cfg.ServerName,
		Host:              cfg.Host,
		Port:              cfg.Port,
		JetStream:         true,
		StoreDir:          cfg.StoreDir,
		JetStreamMaxStore: cfg.MaxStore,
		// A PubAck must survive a power loss: sync before acknowledging.
		SyncAlways:             !cfg.NoSync,
		NoSigs:                 true,
		NoLog:                  !cfg.Logs,
		DisableJetStreamBanner: true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	if cfg.Logs {
		srv.ConfigureLogger()
	}
	go srv.Start()
	if !srv.ReadyForConnections(cfg.ReadyTimeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("start embedded nats: not ready after %s (port %d in use?)", cfg.ReadyTimeout, cfg.Port)
	}
	return srv, nil
}
