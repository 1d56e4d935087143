package lifecycle

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Readiness is what /readyz reports: not ready until start-up completes,
// not ready from the first moment of shutdown (so a load balancer drains
// the instance before it stops), and not ready while a dependency check
// fails.
type Readiness struct {
	ready  atomic.Bool
	mu     sync.Mutex
	checks []Check
}

// Check is one dependency probe, e.g. a database ping.
type Check struct {
	Name  string
	Probe func(context.Context) error
}

// NewReadiness returns a Readiness, not yet ready, with the given checks.
func NewReadiness(checks ...Check) *Readiness {
	return &Readiness{checks: checks}
}

// Add appends a check.
func (r *Readiness) Add(c Check) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks = append(r.checks, c)
}

// SetReady marks start-up complete (true) or shutdown begun (false).
func (r *Readiness) SetReady(ready bool) { r.ready.Store(ready) }

// errNotReady is reported before start-up completes and during shutdown.
var errNotReady = errors.New("starting or stopping")

// Ready reports nil when the process should receive traffic, or why not.
func (r *Readiness) Ready(ctx context.Context) error {
	if !r.ready.Load() {
		return errNotReady
	}
	r.mu.Lock()
	checks := append([]Check(nil), r.checks...)
	r.mu.Unlock()
	for _, c := range checks {
		if err := c.Probe(ctx); err != nil {
			return errors.New(c.Name + ": " + err.Error())
		}
	}
	return nil
}

// probeTimeout bounds a readiness probe, below Kubernetes' default 1s
// timeout so the probe answers rather than times out.
const probeTimeout = 800 * time.Millisecond

// OpsHandler serves /healthz (the process answers), /readyz (r.Ready) and
// /metrics (g's metrics), for processes without an HTTP API of their own.
func OpsHandler(r *Readiness, g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), probeTimeout)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := r.Ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	return mux
}

// DebugHandler serves net/http/pprof under /debug/pprof/, except its
// cmdline page, which would show every flag given, secrets included.
func DebugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", http.NotFound)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Server is a small net/http server with a listener bound up front, so the
// caller can log the real address (port 0 picks a free one) and a port
// clash fails start-up rather than a background goroutine.
type Server struct {
	name string
	ln   net.Listener
	srv  *http.Server
	done chan error
}

// Listen binds addr for h.
func Listen(name, addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errors.New(name + ": listen on " + addr + ": " + err.Error())
	}
	return &Server{
		name: name,
		ln:   ln,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			// pprof's profile and trace endpoints stream for up to 30s by
			// default, hence no write timeout here.
			IdleTimeout: time.Minute,
		},
		done: make(chan error, 1),
	}, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Start serves in the background; Done reports a failure.
func (s *Server) Start(log *zap.Logger) {
	go func() {
		err := s.srv.Serve(s.ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		if err != nil {
			log.Error("server failed", zap.String("server", s.name), zap.Error(err))
		}
		s.done <- err
	}()
}

// Done delivers the server's error when it stops on its own.
func (s *Server) Done() <-chan error { return s.done }

// Stop finishes in-flight requests within ctx, then closes.
func (s *Server) Stop(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	return err
}
