package lifecycle

import (
	"context"

	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/config"
)

// Process is what every binary sets up before its own work: its validated
// configuration, its logger, a context that ends at the first shutdown
// signal, and the optional pprof server.
type Process struct {
	Ctx context.Context
	Cfg *config.Config
	Log *zap.Logger

	closers []func()
}

// Begin loads p's configuration from args and the environment, builds the
// logger, logs the (redacted) configuration, starts watching for shutdown
// signals, sets up tracing when --otel-endpoint is set and, when
// --debug-addr is set, serves pprof. Close undoes it.
func Begin(ctx context.Context, p config.Program, version string, args []string) (*Process, error) {
	cfg, err := LoadConfig(p, args)
	if err != nil {
		return nil, err
	}
	log, err := NewLogger(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return nil, err
	}
	proc := &Process{Cfg: cfg, Log: log}
	proc.closers = append(proc.closers, func() { _ = log.Sync() })
	log.Info("starting", zap.String("program", string(p)), zap.String("version", version), zap.Stringer("config", cfg))

	ctx, stop := OnSignals(ctx, log, cfg.ShutdownTimeout)
	proc.Ctx = ctx
	proc.closers = append(proc.closers, stop)
	if err := proc.startTracing(p, version); err != nil {
		proc.Close()
		return nil, err
	}
	if cfg.DebugAddr != "" {
		dbg, err := Listen("debug", cfg.DebugAddr, DebugHandler())
		if err != nil {
			proc.Close()
			return nil, err
		}
		dbg.Start(log)
		proc.closers = append(proc.closers, func() { _ = dbg.Stop(context.Background()) })
	}
	return proc, nil
}

// Close stops what Begin started, newest first.
func (p *Process) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}
