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
	// MaxOpenBatches caps the atomic batches open at once on the server
	// (0: the server's default, 1000), each up to 1000 messages.
	MaxOpenBatches int
	// Logs turns on the server's own log lines (to stderr).
	Logs bool
	// ReadyTimeout bounds the wait for the server to accept connections.
	ReadyTimeout time.Duration
	// Users, when not empty, are the only clients the server accepts, each
	// limited to its role's permissions. Empty: no authentication, for
	// tests only.
	Users []User
	// Anonymous, with Users, is the role of a client that connects without
	// credentials ("": such clients are refused). It must be the role of
	// one of Users.
	Anonymous Role
}

// User is one NATS user of the embedded server.
type User struct {
	Name     string
	Password string
	Role     Role
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
	opts.JetStreamLimits.MaxBatchInflightTotal = cfg.MaxOpenBatches
	if err := setUsers(opts, cfg.Users, cfg.Anonymous); err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
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

// setUsers gives opts one user per entry of users, with its role's
// permissions, and maps clients without credentials to anonymous's user.
func setUsers(opts *server.Options, users []User, anonymous Role) error {
	if len(users) == 0 {
		if anonymous != "" {
			return errors.New("an anonymous role needs users")
		}
		return nil
	}
	for _, u := range users {
		perms := u.Role.Permissions()
		if perms == nil {
			return fmt.Errorf("user %q: unknown role %q", u.Name, u.Role)
		}
		if u.Name == "" || u.Password == "" {
			return fmt.Errorf("user of role %s: a name and a password are required", u.Role)
		}
		opts.Users = append(opts.Users, &server.User{Username: u.Name, Password: u.Password, Permissions: perms})
		if anonymous != "" && u.Role == anonymous && opts.NoAuthUser == "" {
			opts.NoAuthUser = u.Name
		}
	}
	if anonymous != "" && opts.NoAuthUser == "" {
		return fmt.Errorf("anonymous role %q has no user", anonymous)
	}
	return nil
}
