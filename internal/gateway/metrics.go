package gateway

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// metrics are the gateway's Prometheus series.
type metrics struct {
	// requests counts requests (its _count) and their latency by route
	// pattern, method and status.
	requests *prometheus.HistogramVec
	// publish is the time from publishing a request to its PubAck, by
	// result: ok, duplicate or error.
	publish *prometheus.HistogramVec
	// waits counts how Prefer: wait (and the original API's implicit wait)
	// ended: applied, rejected, conflict, timeout or drained.
	waits *prometheus.CounterVec
	// waiters is how many requests are waiting for their outcome now;
	// overCap counts those that asked to wait when MaxWaiters already were.
	waiters prometheus.Gauge
	overCap prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "wallet", Subsystem: "gateway", Name: "http_request_duration_seconds",
			Help:    "HTTP requests by route pattern, method and status, with their latency.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method", "status"}),
		publish: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "wallet", Subsystem: "gateway", Name: "publish_duration_seconds",
			Help:    "Time from publishing a request to JetStream's acknowledgement, by result.",
			Buckets: []float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, []string{"result"}),
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "wallet", Subsystem: "gateway", Name: "wait_outcomes_total",
			Help: "How waits for an outcome ended: applied, rejected, conflict, timeout or drained.",
		}, []string{"outcome"}),
		waiters: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "wallet", Subsystem: "gateway", Name: "waiters",
			Help: "Requests waiting for their outcome now (Prefer: wait and the original API's POST).",
		}),
		overCap: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "wallet", Subsystem: "gateway", Name: "waits_over_cap_total",
			Help: "Requests answered at once as pending because the most waiting requests were already waiting.",
		}),
	}
	var err error
	m.requests, err = register(reg, m.requests)
	if err != nil {
		return nil, err
	}
	if m.publish, err = register(reg, m.publish); err != nil {
		return nil, err
	}
	if m.waits, err = register(reg, m.waits); err != nil {
		return nil, err
	}
	if m.waiters, err = register(reg, m.waiters); err != nil {
		return nil, err
	}
	if m.overCap, err = register(reg, m.overCap); err != nil {
		return nil, err
	}
	return m, nil
}

// register adds c to reg, or returns the collector already registered
// under the same name, so a second gateway in one process (tests, walletd
// restarts of the HTTP side) shares the series instead of failing.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

func gathererOf(reg prometheus.Registerer) prometheus.Gatherer {
	if g, ok := reg.(prometheus.Gatherer); ok {
		return g
	}
	return prometheus.DefaultGatherer
}

// localTraceID is the Locals key of the request's trace id.
const localTraceID = "wallet.trace_id"

// The trace id's HTTP header. Clients written before the rename send
// X-Request-Id; it is still read, and echoed to those who sent it.
const (
	headerTraceID       = "X-Trace-Id"
	headerLegacyTraceID = fiber.HeaderXRequestID
)

func traceID(c *fiber.Ctx) string {
	id, _ := c.Locals(localTraceID).(string)
	return id
}

// newTraceID makes a trace id for a request that brought none: 22 base-62
// digits from the runtime's per-thread random source, which is seeded from
// the system's and needs no lock.
func newTraceID() string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var b [22]byte
	hi, lo := rand.Uint64(), rand.Uint64() //nolint:gosec // an id for logs and headers, not a secret
	for i := range b {
		n := &lo
		if i >= 11 {
			n = &hi
		}
		b[i] = digits[*n%62]
		*n /= 62
	}
	return string(b[:])
}

// validTraceID accepts a client's trace id only when it is short and
// plain, so it can go into logs and message headers as it is.
func validTraceID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// methodLabel keeps the method label's values bounded, and returns a
// constant: Fiber's c.Method() points into a buffer reused by the next
// request, which a metric label must not keep.
func methodLabel(m string) string {
	for _, known := range [...]string{fiber.MethodGet, fiber.MethodPost, fiber.MethodHead, fiber.MethodPut,
		fiber.MethodPatch, fiber.MethodDelete, fiber.MethodOptions} {
		if m == known {
			return known
		}
	}
	return "OTHER"
}

// observe wraps every request: it assigns the trace id, turns a panic into
// a problem, writes errors through the error handler (so the status is final
// before it is counted), records the metrics and logs one line. Successful
// requests log at debug level, client errors at info and server errors at
// error, so a busy gateway's logs carry what needs attention.
func (g *Gateway) observe(c *fiber.Ctx) error {
	start := time.Now()
	// Fiber's header strings point into reused buffers; the id outlives
	// the request in message headers, so it is copied.
	tid := c.Get(headerTraceID)
	legacy := false
	if tid == "" {
		tid = c.Get(headerLegacyTraceID)
		legacy = tid != ""
	}
	tid = strings.Clone(tid)
	if !validTraceID(tid) {
		tid = newTraceID()
	}
	c.Locals(localTraceID, tid)
	c.Set(headerTraceID, tid)
	if legacy {
		c.Set(headerLegacyTraceID, tid)
	}

	if err := g.next(c); err != nil {
		if err := g.errorHandler(c, err); err != nil {
			return err
		}
	}

	elapsed := time.Since(start)
	status := c.Response().StatusCode()
	route := c.Route().Path
	if !g.paths[route] {
		route = "unmatched"
	}
	method := methodLabel(c.Method())
	g.metrics.requests.WithLabelValues(route, method, strconv.Itoa(status)).Observe(elapsed.Seconds())

	level := zapcore.DebugLevel
	switch {
	case status >= 500:
		level = zapcore.ErrorLevel
	case status >= 400:
		level = zapcore.InfoLevel
	}
	if ce := g.log.Check(level, "http request"); ce != nil {
		ce.Write(zap.String("trace_id", tid), zap.String("method", method), zap.String("route", route),
			zap.String("path", clip(c.Path())), zap.Int("status", status), zap.Duration("latency", elapsed))
	}
	return nil
}

// next runs the rest of the chain, turning a panic into an internal error.
func (g *Gateway) next(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			g.log.Error("panic in handler", zap.String("trace_id", traceID(c)),
				zap.Any("panic", r), zap.Stack("stack"))
			err = problem(CodeInternal, "The server could not process the request.")
		}
	}()
	return c.Next()
}
