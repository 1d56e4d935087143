package lifecycle

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/wallet/wallet/internal/config"
)

// HealthcheckCommand is the first argument that turns a binary into its own
// health check, for container runtimes whose image has no shell or curl
// (the distroless image): `gateway healthcheck`, `worker healthcheck`.
const HealthcheckCommand = "healthcheck"

// healthcheckTimeout bounds the whole check; a container runtime kills a
// check that outlives its own timeout anyway.
const healthcheckTimeout = 3 * time.Second

// Healthcheck asks the running program p on this host whether it is ready:
// it loads p's configuration from args and the environment, exactly as the
// program does, so it finds the port the program listens on, and GETs
// /readyz there. It returns the exit status: 0 when the answer is 200, 1
// otherwise (with the reason on stderr), 2 when the configuration is invalid.
func Healthcheck(p config.Program, args []string, stderr io.Writer) int {
	if p == config.Gateway {
		// The check itself only talks to loopback; without this, a
		// gateway configured without tokens (and so refused beyond
		// loopback) could not be checked from an environment that lacks
		// the tokens.
		args = append(args[:len(args):len(args)], "--host=127.0.0.1")
	}
	cfg, err := LoadConfig(p, args)
	if err != nil {
		return report(p, err, stderr, stderr)
	}
	port := cfg.Port
	if p == config.Worker {
		port = cfg.MetricsPort
	}
	if port == 0 {
		fmt.Fprintf(stderr, "%s %s: the port is 0 (a free port picked at start-up); set the program's port to check it\n", p, HealthcheckCommand)
		return exitConfig
	}
	url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/readyz"
	ctx, cancel := context.WithTimeout(context.Background(), healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "%s %s: %v\n", p, HealthcheckCommand, err)
		return exitFailed
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "%s %s: %v\n", p, HealthcheckCommand, err)
		return exitFailed
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "%s %s: GET %s: %s\n", p, HealthcheckCommand, url, resp.Status)
		return exitFailed
	}
	return exitOK
}
