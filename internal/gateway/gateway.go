package gateway

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Config holds the gateway's settings. Zero values take the defaults below.
type Config struct {
	// Tokens are the accepted bearer tokens. When empty, no authentication
	// is required.
	Tokens []Token
	// MaxWait caps a client's Prefer: wait=N. Default 30s.
	MaxWait time.Duration
	// LegacyWait is how long the original API's POST /transfers/ waits for
	// the outcome before answering that it is still pending. Default MaxWait.
	LegacyWait time.Duration
	// PublishTimeout bounds one publish, PubAck included. Default 5s.
	PublishTimeout time.Duration
	// BodyLimit is the largest accepted request body in bytes. Default 64 KiB.
	BodyLimit int
	// ReadTimeout bounds reading one request, headers and body, so slow
	// clients cannot hold connections open. Default 10s.
	ReadTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Default 2m.
	IdleTimeout time.Duration
	// MaxWaiters caps the requests waiting for their outcome at once
	// (Prefer: wait and the original API's POST), each holding a handler
	// and two subscriptions for up to MaxWait. Past it a request is still
	// stored and answered at once as pending. Default 1000.
	MaxWaiters int
	// TracerProvider, when set, traces every request: a server span per
	// request, the publish and the database reads under it. Nil: no spans,
	// and no cost.
	TracerProvider trace.TracerProvider
}

// DefaultMaxWaiters is the default cap on requests waiting for their
// outcome: 1000 waiters hold 2000 subscriptions and little memory, far
// from what hurts a gateway, while an unbounded number lets clients that
// ask to wait pile up handlers for MaxWait each.
const DefaultMaxWaiters = 1000

const (
	defaultMaxWait        = 30 * time.Second
	defaultPublishTimeout = 5 * time.Second
	defaultBodyLimit      = 64 << 10
	defaultReadTimeout    = 10 * time.Second
	defaultIdleTimeout    = 2 * time.Minute
	// dependencyTimeout bounds every database read and pending lookup a request
	// makes, so a dependency that hangs becomes a 503, not a stuck client.
	dependencyTimeout = 5 * time.Second
)

func (c Config) withDefaults() Config {
	if c.MaxWait <= 0 {
		c.MaxWait = defaultMaxWait
	}
	if c.LegacyWait <= 0 {
		c.LegacyWait = c.MaxWait
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = defaultPublishTimeout
	}
	if c.BodyLimit <= 0 {
		c.BodyLimit = defaultBodyLimit
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = defaultReadTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.MaxWaiters <= 0 {
		c.MaxWaiters = DefaultMaxWaiters
	}
	return c
}

// Gateway is the HTTP API. Build it with New, serve App (or call Listener),
// and call Drain at the start of shutdown.
type Gateway struct {
	cfg        Config
	store      Store
	queue      Queue
	ops        Ops       // nil when the queue cannot read the pipeline
	opsState   *opsState // the overview's last reading and rate samples
	log        *zap.Logger
	metrics    *metrics
	currencies currencyView
	known      *decidedIDs // ids seen decided, so new ids skip the database
	app        *fiber.App
	paths      map[string]bool // registered route patterns, for metric labels
	waiters    chan struct{}   // one token per request waiting for its outcome

	draining  atomic.Bool
	drained   chan struct{}
	drainOnce sync.Once
}

// New builds the gateway and registers its metrics with reg (the
// Prometheus registry /metrics serves; it must also be a
// prometheus.Gatherer to be served, as *prometheus.Registry is; otherwise
// the default gatherer is served).
func New(cfg Config, store Store, queue Queue, logger *zap.Logger, reg prometheus.Registerer) (*Gateway, error) {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = zap.NewNop()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg:        cfg,
		store:      store,
		queue:      queue,
		opsState:   &opsState{},
		log:        logger,
		metrics:    m,
		currencies: currencyView{store: store},
		known:      newDecidedIDs(defaultDecidedIDs),
		paths:      make(map[string]bool),
		waiters:    make(chan struct{}, cfg.MaxWaiters),
		drained:    make(chan struct{}),
	}
	g.ops, _ = queue.(Ops)
	g.app = fiber.New(fiber.Config{
		AppName:               "wallet-gateway",
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           cfg.ReadTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		CaseSensitive:         true,
		DisableStartupMessage: true,
		ErrorHandler:          g.errorHandler,
	})
	if cfg.TracerProvider != nil {
		g.app.Use(g.traceRequests(cfg.TracerProvider))
	}
	g.app.Use(g.observe)
	g.routes(gathererOf(reg))
	return g, nil
}

// App returns the Fiber application, for app.Test and for custom serving.
func (g *Gateway) App() *fiber.App { return g.app }

// Listener serves the API on ln until Shutdown.
func (g *Gateway) Listener(ln net.Listener) error { return g.app.Listener(ln) }

// Drain marks the gateway as shutting down: /readyz answers 503 so load
// balancers stop sending traffic, and requests waiting for an outcome
// answer at once with what they have (202 pending: the request is safely
// stored). Requests keep being served until Shutdown.
func (g *Gateway) Drain() {
	g.drainOnce.Do(func() {
		g.draining.Store(true)
		close(g.drained)
	})
}

// Shutdown drains, then stops accepting connections and waits for
// in-flight requests to finish or ctx to end.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.Drain()
	return g.app.ShutdownWithContext(ctx)
}
