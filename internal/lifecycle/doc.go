// Package lifecycle is the start-up and shutdown code the wallet's binaries
// share: the logger, connecting to PostgreSQL and NATS with retries, creating
// the database, the signal handling that turns SIGTERM, SIGINT and SIGHUP
// into a bounded graceful stop, and the small HTTP server that exposes
// health, readiness, metrics and pprof.
//
// It holds no business logic and speaks to PostgreSQL only through the
// postgres package's functions, which own every statement and error code;
// each cmd/* main wires the service's packages together with it.
package lifecycle
