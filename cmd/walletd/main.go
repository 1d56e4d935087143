// Command walletd runs the whole wallet service in one process, for
// development and small installations: it creates and migrates the
// database, starts an embedded NATS JetStream server (or uses --nats-url),
// the workers and the HTTP gateway, and prints where everything listens.
//
//	go run ./cmd/walletd
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/config"
	"github.com/wallet/wallet/internal/lifecycle"
	"github.com/wallet/wallet/internal/natsbus"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	lifecycle.Exit(config.Walletd, run(context.Background(), os.Args[1:], os.Stdout))
}

func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	proc, err := lifecycle.Begin(ctx, config.Walletd, version, args)
	if err != nil {
		return err
	}
	defer proc.Close()
	ctx, cfg, log := proc.Ctx, proc.Cfg, proc.Log

	// The database: created when missing (--create-db), then migrated.
	store, err := lifecycle.OpenStore(ctx, log, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := lifecycle.Migrate(ctx, log, cfg); err != nil {
		return err
	}

	// NATS: the embedded server unless --nats-url names one. Deferred calls
	// run in reverse, so the server outlives every connection to it. On it
	// the worker and the gateway connect with their own roles; on an
	// external server both use --nats-user (or the other credentials).
	natsURL := cfg.NATS.URL
	workerCfg, gatewayCfg := cfg, cfg
	var embedded *lifecycle.EmbeddedNATS
	if cfg.EmbeddedNATS() {
		embedded, err = lifecycle.StartEmbeddedNATS(cfg)
		if err != nil {
			return err
		}
		defer embedded.Stop()
		natsURL = embedded.URL
		workerCfg, gatewayCfg = embedded.As(cfg, natsbus.RoleWorker), embedded.As(cfg, natsbus.RoleGateway)
		log.Info("embedded nats started", zap.String("url", natsURL),
			zap.String("store_dir", cfg.Embedded.StoreDir), zap.String("sync", cfg.Embedded.Sync),
			zap.Bool("credentials_required", embedded.Public),
			zap.String("producer_user", embedded.Users[natsbus.RoleProducer].Name),
			zap.String("credentials_file", embedded.CredentialsFile))
	}
	// The worker and the gateway get a connection each, so a burst of
	// outcomes cannot delay the gateway's publishes.
	workerNC, err := lifecycle.ConnectNATS(ctx, log, workerCfg, natsURL, "walletd-worker", natsbus.RoleWorker)
	if err != nil {
		return err
	}
	defer workerNC.Close()
	gatewayNC, err := lifecycle.ConnectNATS(ctx, log, gatewayCfg, natsURL, "walletd-gateway", natsbus.RoleGateway)
	if err != nil {
		return err
	}
	defer gatewayNC.Close()

	reg := lifecycle.NewRegistry()
	w, err := lifecycle.StartWorker(ctx, log, cfg, store, workerNC, reg)
	if err != nil {
		return err
	}
	if embedded != nil {
		// The worker has created the streams; the gateway publishes next.
		if embedded.StageBatches(log) && !cfg.Given("publish-batch-min") {
			// Small groups are cheaper as one batch staged in memory than
			// as single publishes; on disk the default stays.
			cfg.Publish.MinMessages = min(natsbus.MemoryStagedBatchMin, cfg.Publish.MaxMessages)
		}
	}
	gw, err := lifecycle.StartGateway(ctx, log, cfg, store, gatewayNC, reg)
	if err != nil {
		return errors.Join(err, w.Stop())
	}

	// The banner goes to stdout for people; the log line after it carries
	// the same addresses for tools.
	httpURL := fmt.Sprintf("http://localhost:%d", gw.Port())
	fmt.Fprintf(stdout, "walletd is running\n"+
		"  HTTP API    %s  (try: curl %s/v1/currencies)\n"+
		"  metrics     %s/metrics\n"+
		"  NATS        %s%s\n"+
		"%s"+
		"  PostgreSQL  %s\n"+
		"Stop with Ctrl-C (or SIGTERM/SIGHUP).\n",
		httpURL, httpURL, httpURL, config.RedactURLs(natsURL), storeNote(cfg), producerNote(embedded), config.RedactURL(cfg.DB))
	log.Info("walletd ready", zap.String("http", httpURL), zap.String("nats", config.RedactURLs(natsURL)),
		zap.Bool("embedded_nats", cfg.EmbeddedNATS()), zap.String("nats_store_dir", storeDir(cfg)),
		zap.String("db", config.RedactURL(cfg.DB)), zap.String("worker", w.ID()),
		zap.Int("publish_batch_min", cfg.Publish.MinMessages))

	select {
	case <-ctx.Done():
	case err = <-gw.Done():
	}

	// Stop taking requests (readyz unready, in-flight requests finish),
	// then let the workers commit and ack what they hold, all within the
	// shutdown timeout.
	gw.Drain()
	sctx, cancel := lifecycle.ShutdownContext(ctx, cfg.ShutdownTimeout)
	defer cancel()
	if serr := gw.Stop(sctx); serr != nil {
		err = errors.Join(err, fmt.Errorf("stop gateway: %w", serr))
	}
	if serr := w.Stop(); serr != nil {
		err = errors.Join(err, fmt.Errorf("stop worker: %w", serr))
	}
	if err == nil {
		log.Info("stopped")
	}
	return err
}

// producerNote tells how a producer connects to the embedded server. It
// shows the producer's password only, and only when one is needed: the
// other roles' are for walletd itself and stay in the credentials file.
func producerNote(e *lifecycle.EmbeddedNATS) string {
	if e == nil {
		return ""
	}
	p := e.Users[natsbus.RoleProducer]
	if !e.Public {
		return fmt.Sprintf("  producers   connect from this machine without credentials (role %s); other hosts\n"+
			"              cannot reach this listener (see --nats-listen)\n", natsbus.RoleProducer)
	}
	return fmt.Sprintf("  producers   user %s, password %s\n"+
		"              (nats --server %s --user %s --password <password> ...; every role in %s)\n",
		p.Name, p.Password, e.URL, p.Name, e.CredentialsFile)
}

func storeDir(cfg *config.Config) string {
	if cfg.EmbeddedNATS() {
		return cfg.Embedded.StoreDir
	}
	return ""
}

func storeNote(cfg *config.Config) string {
	if cfg.EmbeddedNATS() {
		return "  (embedded JetStream, data in " + cfg.Embedded.StoreDir + ")"
	}
	return "  (external)"
}
