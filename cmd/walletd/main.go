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
	// run in reverse, so the server outlives every connection to it.
	natsURL := cfg.NATS.URL
	if cfg.EmbeddedNATS() {
		srv, url, err := lifecycle.StartEmbeddedNATS(cfg)
		if err != nil {
			return err
		}
		defer lifecycle.StopEmbeddedNATS(srv)
		natsURL = url
		log.Info("embedded nats started", zap.String("url", url),
			zap.String("store_dir", cfg.Embedded.StoreDir), zap.String("sync", cfg.Embedded.Sync))
	}
	// The worker and the gateway get a connection each, so a burst of
	// outcomes cannot delay the gateway's publishes.
	workerNC, err := lifecycle.ConnectNATS(ctx, log, cfg, natsURL, "walletd-worker")
	if err != nil {
		return err
	}
	defer workerNC.Close()
	gatewayNC, err := lifecycle.ConnectNATS(ctx, log, cfg, natsURL, "walletd-gateway")
	if err != nil {
		return err
	}
	defer gatewayNC.Close()

	reg := lifecycle.NewRegistry()
	w, err := lifecycle.StartWorker(ctx, log, cfg, store, workerNC, reg)
	if err != nil {
		return err
	}
	gw, err := lifecycle.StartGateway(ctx, log, cfg, store, gatewayNC, reg)
	if err != nil {
		return errors.Join(err, w.Stop(context.WithoutCancel(ctx)))
	}

	// The banner goes to stdout for people; the log line after it carries
	// the same addresses for tools.
	httpURL := fmt.Sprintf("http://localhost:%d", gw.Port())
	fmt.Fprintf(stdout, "walletd is running\n"+
		"  HTTP API    %s  (try: curl %s/v1/currencies)\n"+
		"  metrics     %s/metrics\n"+
		"  NATS        %s%s\n"+
		"  PostgreSQL  %s\n"+
		"Stop with Ctrl-C (or SIGTERM/SIGHUP).\n",
		httpURL, httpURL, httpURL, config.RedactURLs(natsURL), storeNote(cfg), config.RedactURL(cfg.DB))
	log.Info("walletd ready", zap.String("http", httpURL), zap.String("nats", config.RedactURLs(natsURL)),
		zap.Bool("embedded_nats", cfg.EmbeddedNATS()), zap.String("nats_store_dir", storeDir(cfg)),
		zap.String("db", config.RedactURL(cfg.DB)), zap.String("worker", w.ID()))

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
	if serr := w.Stop(sctx); serr != nil {
		err = errors.Join(err, fmt.Errorf("stop worker: %w", serr))
	}
	if err == nil {
		log.Info("stopped")
	}
	return err
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
