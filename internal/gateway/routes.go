package gateway

import (
	"context"
	_ "embed"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// openAPI is the API's OpenAPI 3.1 description, served at /openapi.json.
// A test checks that it lists every registered route.
//
//go:embed openapi.json
var openAPI []byte

// readyTimeout bounds /readyz's pings: a probe must answer in time.
const readyTimeout = 2 * time.Second

// routes registers every endpoint. Probes need no token, so that the
// platform can call them; metrics, served on the API's own port, need a
// token like any read (Prometheus sends one with its scrape's
// authorization setting).
func (g *Gateway) routes(gatherer prometheus.Gatherer) {
	read, write := g.authorize(ScopeRead), g.authorize(ScopeWrite)

	g.handle(fiber.MethodGet, "/healthz", g.healthz)
	g.handle(fiber.MethodGet, "/readyz", g.readyz)
	g.handle(fiber.MethodGet, "/metrics", read, adaptor.HTTPHandler(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})))
	g.handle(fiber.MethodGet, "/openapi.json", read, func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(openAPI)
	})

	g.handle(fiber.MethodPost, "/v1/accounts", write, g.postAccount)
	g.handle(fiber.MethodGet, "/v1/accounts", read, g.listAccounts)
	g.handle(fiber.MethodGet, "/v1/accounts/:id", read, g.getAccount)
	g.handle(fiber.MethodGet, "/v1/accounts/:id/entries", read, g.listEntries)
	g.handle(fiber.MethodPost, "/v1/transfers", write, g.postTransfer)
	g.handle(fiber.MethodPost, "/v1/deposits", write, g.postDeposit)
	g.handle(fiber.MethodPost, "/v1/withdrawals", write, g.postWithdrawal)
	g.handle(fiber.MethodGet, "/v1/transfers/:id", read, g.getTransfer)
	g.handle(fiber.MethodGet, "/v1/currencies", read, g.listCurrencies)
	g.holdRoutes(read, write)
	g.searchRoutes(read, write)

	g.handle(fiber.MethodGet, "/v1/ops/overview", read, g.getOverview)
	g.handle(fiber.MethodGet, "/v1/ops/dead-letters", read, g.listDeadLetters)
	g.handle(fiber.MethodGet, "/v1/ops/dead-letters/:seq", read, g.getDeadLetter)
	// The console's files carry no data: no token (console.go).
	g.handle(fiber.MethodGet, "/console/", g.console)
	g.handle(fiber.MethodGet, "/console/:asset", g.console)

	g.handle(fiber.MethodPost, "/transfers/", write, g.legacyPostTransfer)
	g.handle(fiber.MethodGet, "/accounts/", read, g.legacyListAccounts)
	g.handle(fiber.MethodGet, "/accounts/:account_id/transfers/", read, g.legacyListTransfers)
}

func (g *Gateway) handle(method, path string, handlers ...fiber.Handler) {
	g.paths[path] = true
	g.app.Add(method, path, handlers...)
}

func (g *Gateway) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

// readyz reports whether the gateway should get traffic: not while
// draining, and only when Postgres and NATS both answer.
func (g *Gateway) readyz(c *fiber.Ctx) error {
	if g.draining.Load() {
		return unavailable("The gateway is shutting down.")
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), readyTimeout)
	defer cancel()
	dbErr := make(chan error, 1)
	go func() { dbErr <- g.store.Ping(ctx) }()
	busErr := g.queue.Ping(ctx)
	if err := <-dbErr; err != nil {
		g.log.Warn("readiness: postgres", zap.Error(err))
		return unavailable("PostgreSQL is not reachable.")
	}
	if busErr != nil {
		g.log.Warn("readiness: nats", zap.Error(busErr))
		return unavailable("NATS is not reachable.")
	}
	return c.JSON(fiber.Map{"status": "ready"})
}
