package lifecycle

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
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

// RunningWorker is a worker running in the background of a process.
type RunningWorker struct {
	*worker.Worker
	stop context.CancelFunc
	done chan error
}

// StartWorker builds a worker on nc and runs it: it ensures the streams and
// consumers, joins the membership and starts pulling its partitions. It
// returns once the worker pulls, or with the start-up's error; ctx bounds
// only the start-up.
func StartWorker(ctx context.Context, log *zap.Logger, cfg *config.Config, store *postgres.Store, nc *nats.Conn, reg prometheus.Registerer) (*RunningWorker, error) {
	c, err := natsbus.NewConsumer(nc, cfg.Consumer, log, reg)
	if err != nil {
		return nil, err
	}
	wcfg := cfg.Worker
	wcfg.TracerProvider = Tracing(cfg)
	w, err := worker.New(c, store, wcfg, log, reg)
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r := &RunningWorker{Worker: w, stop: stop, done: make(chan error, 1)}
	go func() { r.done <- w.Run(runCtx) }()
	select {
	case <-w.Started():
		return r, nil
	case err := <-r.done:
		stop()
		return nil, fmt.Errorf("start worker: %w", err)
	case <-ctx.Done():
		stop()
		// Start-up was abandoned: Run's own error says only that it stopped.
		if err := <-r.done; err != nil {
			log.Debug("worker stopped during start-up", zap.Error(err))
		}
		return nil, fmt.Errorf("start worker: %w", ctx.Err())
	}
}

// Stop is the worker's soft stop: it finishes the batches in hand within
// the shutdown timeout and returns Run's error.
func (r *RunningWorker) Stop() error {
	r.stop()
	return <-r.done
}

// GatewayServer is the HTTP API bound to its port, with the producer that
// publishes its requests.
type GatewayServer struct {
	gw        *gateway.Gateway
	ln        net.Listener
	done      chan error
	stopQueue context.CancelFunc
	queued    chan error // the producer's Run result
}

// StartGateway creates the streams that are missing, builds the gateway on
// store and a natsbus.Producer on nc, runs the producer and serves the
// gateway on cfg.Host and cfg.Port. reg must be the registry /metrics
// serves.
func StartGateway(ctx context.Context, log *zap.Logger, cfg *config.Config, store *postgres.Store, nc *nats.Conn, reg *prometheus.Registry) (*GatewayServer, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	if err := natsbus.CreateStreams(ctx, js, cfg.Stream); err != nil {
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	queue, err := natsbus.NewProducer(ctx, nc, cfg.Publish, natsbus.WithTracing(Tracing(cfg)))
	if err != nil {
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	gcfg := cfg.Gateway
	gcfg.TracerProvider = Tracing(cfg)
	gw, err := gateway.New(gcfg, store, queue, log, reg)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("start gateway: listen on %s (--host, --port): %w", addr, err)
	}
	if len(cfg.Gateway.Tokens) == 0 {
		// Configuration allows this only on loopback or with
		// --insecure-no-auth; either way it must not go unnoticed.
		log.Warn("AUTHENTICATION IS OFF: every request to the HTTP API is accepted, writes included; set --auth-tokens",
			zap.String("listen", ln.Addr().String()), zap.Bool("insecure_no_auth", cfg.InsecureNoAuth))
	}
	// The producer outlives ctx, which ends at the first signal: it stops
	// only after the HTTP server, in Stop, so no accepted request is cut off.
	qctx, stopQueue := context.WithCancel(context.WithoutCancel(ctx))
	s := &GatewayServer{gw: gw, ln: ln, done: make(chan error, 2), stopQueue: stopQueue, queued: make(chan error, 1)}
	go func() {
		err := queue.Run(qctx)
		if err != nil {
			log.Error("gateway producer failed", zap.Error(err))
			s.done <- err
		}
		s.queued <- err
	}()
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

// Done delivers the server's (or its producer's) error if it stops on its
// own.
func (s *GatewayServer) Done() <-chan error { return s.done }

// Drain turns /readyz unready and answers clients waiting for outcomes;
// requests are still served until Stop.
func (s *GatewayServer) Drain() { s.gw.Drain() }

// Stop stops accepting connections, waits for in-flight requests within
// ctx, then stops the producer, which commits the publishes still queued.
func (s *GatewayServer) Stop(ctx context.Context) error {
	err := s.gw.Shutdown(ctx)
	s.stopQueue()
	select {
	case qerr := <-s.queued:
		s.queued <- qerr
		return errors.Join(err, qerr)
	case <-ctx.Done():
		return errors.Join(err, fmt.Errorf("stop gateway producer: %w", ctx.Err()))
	}
}

// EmbeddedNATS is walletd's own JetStream server and the users it accepts.
type EmbeddedNATS struct {
	Server *server.Server
	// URL is where clients connect.
	URL string
	// Public is true when the server listens beyond the loopback interface:
	// then every client needs a credential. On loopback a client without
	// one gets the producer role, so local tools work as they are.
	Public bool
	// Users holds the user of each role; CredentialsFile keeps them, so a
	// producer's credential survives a restart.
	Users           map[natsbus.Role]natsbus.User
	CredentialsFile string

	storeDir     string
	batchStaging string
}

// memoryFS is where --nats-batch-staging memory puts the staging stores.
const memoryFS = "/dev/shm"

// maxOpenBatchesInMemory caps the atomic batches staged in memory at once:
// the gateway keeps one open, and a producer that opens many (each up to
// 1000 messages of 256 KiB) cannot fill the machine's memory with them.
const maxOpenBatchesInMemory = 8

// StageBatches applies --nats-batch-staging once the requests stream
// exists (natsbus.StageBatchesInMemory) and reports whether the batches
// are staged in memory. Where they cannot be it logs why, and they stay on
// disk: slower, as safe.
func (e *EmbeddedNATS) StageBatches(log *zap.Logger) (inMemory bool) {
	if e.batchStaging != config.StagingMemory {
		return false
	}
	s, err := natsbus.StageBatchesInMemory(e.storeDir, natsbus.RequestsStream, memoryFS)
	if err != nil {
		log.Info("atomic batches staged on disk", zap.Error(err))
		return false
	}
	log.Info("atomic batches staged in memory", zap.String("dir", s.Dir))
	return true
}

// CredentialsFileName is the file in --nats-store-dir that holds the
// embedded server's users and passwords (mode 0600).
const CredentialsFileName = "nats-users.json" //nolint:gosec // a file name, not a credential

// StartEmbeddedNATS starts walletd's own JetStream server as configured by
// --nats-listen, --nats-store-dir and --nats-sync, with one user per role
// (natsbus.Roles), whose passwords it generates on first use and keeps in
// the store directory.
func StartEmbeddedNATS(cfg *config.Config) (*EmbeddedNATS, error) {
	host, portText, err := net.SplitHostPort(cfg.Embedded.Listen)
	if err != nil {
		return nil, fmt.Errorf("--nats-listen %q: %w", cfg.Embedded.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("--nats-listen %q: bad port", cfg.Embedded.Listen)
	}
	if port == 0 {
		port = natsbus.RandomPort
	} else {
		// The server itself would only time out on a taken port; probing
		// first gives the operator the reason at once.
		ln, err := net.Listen("tcp", cfg.Embedded.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: --nats-listen %s: %w (is another NATS server running? choose another --nats-listen, or use it with --nats-url)", cfg.Embedded.Listen, err)
		}
		_ = ln.Close()
	}
	if err := os.MkdirAll(cfg.Embedded.StoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("--nats-store-dir: %w", err)
	}
	credsFile := filepath.Join(cfg.Embedded.StoreDir, CredentialsFileName)
	users, err := loadOrCreateUsers(credsFile)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	e := &EmbeddedNATS{Public: !isLoopback(host), Users: users, CredentialsFile: credsFile,
		storeDir: cfg.Embedded.StoreDir, batchStaging: cfg.Embedded.BatchStaging}
	ecfg := natsbus.EmbeddedConfig{
		Host:       host,
		Port:       port,
		StoreDir:   cfg.Embedded.StoreDir,
		NoSync:     cfg.Embedded.Sync == config.SyncPeriodic,
		ServerName: "walletd",
	}
	if cfg.Embedded.BatchStaging == config.StagingMemory {
		ecfg.MaxOpenBatches = maxOpenBatchesInMemory
	}
	for _, r := range natsbus.Roles {
		ecfg.Users = append(ecfg.Users, users[r])
	}
	if !e.Public {
		ecfg.Anonymous = natsbus.RoleProducer
	}
	if e.Server, err = natsbus.StartEmbedded(ecfg); err != nil {
		return nil, err
	}
	e.URL = e.Server.ClientURL()
	return e, nil
}

// Stop shuts the embedded server down and waits for it, so its store is
// closed cleanly before the process exits.
func (e *EmbeddedNATS) Stop() {
	e.Server.Shutdown()
	e.Server.WaitForShutdown()
}

// As returns a copy of cfg that connects to the embedded server as role.
func (e *EmbeddedNATS) As(cfg *config.Config, role natsbus.Role) *config.Config {
	c := *cfg
	u := e.Users[role]
	c.NATS.User, c.NATS.Password, c.NATS.Token, c.NATS.Creds = u.Name, u.Password, "", ""
	return &c
}

// isLoopback reports whether host (from --nats-listen) reaches only this
// machine. An empty host, 0.0.0.0 and :: listen on every interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// storedUser is one entry of the credentials file.
type storedUser struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// loadOrCreateUsers reads the role users from path, or generates them
// (random 192-bit passwords) and writes path readable by its owner only.
func loadOrCreateUsers(path string) (map[natsbus.Role]natsbus.User, error) {
	stored := map[natsbus.Role]storedUser{}
	raw, err := os.ReadFile(path) //nolint:gosec // the operator's own --nats-store-dir
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &stored); err != nil {
			return nil, fmt.Errorf("%s: %w (delete it to generate new credentials)", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	changed := false
	users := make(map[natsbus.Role]natsbus.User, len(natsbus.Roles))
	for _, r := range natsbus.Roles {
		su := stored[r]
		if su.User == "" || su.Password == "" {
			secret := make([]byte, 24)
			if _, err := rand.Read(secret); err != nil {
				return nil, err
			}
			su = storedUser{User: r.UserName(), Password: base64.RawURLEncoding.EncodeToString(secret)}
			stored[r] = su
			changed = true
		}
		users[r] = natsbus.User{Name: su.User, Password: su.Password, Role: r}
	}
	if changed {
		out, err := json.MarshalIndent(stored, "", "  ") //nolint:gosec // the file exists to keep these passwords (mode 0600)
		if err != nil {
			return nil, err
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, append(out, '\n'), 0o600); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, err
		}
	}
	return users, nil
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
