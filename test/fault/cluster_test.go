package fault

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/natsbus"
)

// clusterConfig sizes a test deployment.
type clusterConfig struct {
	Gateways   int
	Workers    int
	Partitions int
	BatchSize  int
	AckWait    time.Duration
	PinnedTTL  time.Duration
}

func (c clusterConfig) withDefaults() clusterConfig {
	if c.Gateways == 0 {
		c.Gateways = 1
	}
	if c.Workers == 0 {
		c.Workers = 3
	}
	if c.Partitions == 0 {
		c.Partitions = 8
	}
	if c.BatchSize == 0 {
		c.BatchSize = 50
	}
	if c.AckWait == 0 {
		c.AckWait = 2 * time.Second
	}
	if c.PinnedTTL == 0 {
		c.PinnedTTL = 3 * time.Second
	}
	return c
}

// cluster is one deployment of the service for a test: a nats-server
// process, gateways and workers as subprocesses, and a fresh database.
type cluster struct {
	t        testing.TB
	cfg      clusterConfig
	bin      binaries
	dir      string
	dbURL    string
	dbName   string
	nats     *natsServer
	gateways []*service
	workers  []*service
	// forgers names the connections that try what their role forbids on
	// purpose: the server's refusals of anything else are failures.
	forgers []string
}

// service is a gateway or worker process and the port of its HTTP server.
type service struct {
	*proc
	port int
}

// startCluster starts NATS, the gateways and the workers on a new database
// and waits until all are ready.
func startCluster(t testing.TB, cfg clusterConfig) *cluster {
	t.Helper()
	cfg = cfg.withDefaults()
	c := &cluster{t: t, cfg: cfg, bin: serviceBinaries(t), dir: t.TempDir()}
	c.dbURL = dbtest.URL(t)
	cc, err := pgx.ParseConfig(c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	c.dbName = cc.Database
	// However the test ends, leave the database connectable so that
	// dbtest can drop it.
	t.Cleanup(func() { _ = c.setConnectable(context.Background(), true) })

	c.nats = startNATS(t, c.bin, c.dir)
	for i := 0; i < cfg.Gateways; i++ {
		port := freePort(t)
		args := append(c.commonArgs(natsbus.RoleGateway), "--port="+strconv.Itoa(port), "--host=127.0.0.1")
		c.gateways = append(c.gateways, &service{proc: newProc(t, c.dir, fmt.Sprintf("gateway-%d", i), c.bin.Gateway, args, nil), port: port})
	}
	for i := 0; i < cfg.Workers; i++ {
		port := freePort(t)
		args := append(c.commonArgs(natsbus.RoleWorker),
			"--metrics-port="+strconv.Itoa(port),
			"--batch-size="+strconv.Itoa(cfg.BatchSize),
			"--ack-wait="+cfg.AckWait.String(),
			"--pinned-ttl="+cfg.PinnedTTL.String(),
		)
		c.workers = append(c.workers, &service{proc: newProc(t, c.dir, fmt.Sprintf("worker-%d", i), c.bin.Worker, args, nil), port: port})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	// The first process creates the streams; the others must cope with
	// starting at the same time, so they all start at once.
	for _, s := range append(append([]*service(nil), c.workers...), c.gateways...) {
		if err := s.start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range append(append([]*service(nil), c.workers...), c.gateways...) {
		if err := s.waitReady(ctx); err != nil {
			t.Fatalf("%s: %v\n%s", s.name, err, s.logTail(30))
		}
	}
	return c
}

// commonArgs are the settings every service process gets; it connects to
// NATS as role.
func (c *cluster) commonArgs(role natsbus.Role) []string {
	cred := c.nats.credential(role)
	return []string{
		"--db=" + c.dbURL,
		"--nats-url=" + c.nats.URL(),
		"--nats-user=" + cred.User,
		"--nats-password=" + cred.Password,
		"--partitions=" + strconv.Itoa(c.cfg.Partitions),
		"--shutdown-timeout=5s",
		"--log-level=info",
		// Restarts during outages must wait for the dependency, not exit.
		"--db-retry-count=1000",
		"--db-retry-timeout=100ms",
		"--nats-retry-count=1000",
		"--nats-retry-timeout=100ms",
	}
}

// baseURL is the service's HTTP address.
func (s *service) baseURL() string { return "http://127.0.0.1:" + strconv.Itoa(s.port) }

// waitReady polls /readyz until it answers 200.
func (s *service) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	var last string
	for {
		if !s.running() {
			return fmt.Errorf("%s is not running (crashes: %v)", s.name, s.crashes())
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.baseURL()+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %s", s.name, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// restart starts a stopped service and waits until it is ready.
func (s *service) restart(ctx context.Context) error {
	if err := s.start(); err != nil {
		return err
	}
	return s.waitReady(ctx)
}

// gatewayURLs lists the base URLs of the gateways.
func (c *cluster) gatewayURLs() []string {
	out := make([]string, len(c.gateways))
	for i, g := range c.gateways {
		out[i] = g.baseURL()
	}
	return out
}

// procs lists every process of the cluster.
func (c *cluster) procs() []*proc {
	out := []*proc{c.nats.proc}
	for _, s := range append(append([]*service(nil), c.gateways...), c.workers...) {
		out = append(out, s.proc)
	}
	return out
}

// crashes lists exits the suite did not cause, crash lines in the logs, and
// permissions the NATS server refused to a service or a well-behaved
// client (a role that lacks what its binary needs, or a client doing what
// it should not).
func (c *cluster) crashes() []string {
	var out []string
	for _, p := range c.procs() {
		out = append(out, p.crashes()...)
		out = append(out, p.logAlarms()...)
	}
	for _, v := range c.nats.violations(c.forgers...) {
		out = append(out, "nats-server refused: "+v)
	}
	return out
}

// admin opens a connection to the server's maintenance database, for
// faults aimed at the test database.
func (c *cluster) admin(ctx context.Context) (*pgx.Conn, error) {
	cc, err := pgx.ParseConfig(c.dbURL)
	if err != nil {
		return nil, err
	}
	cc.Database = "postgres"
	return pgx.ConnectConfig(ctx, cc)
}

// setConnectable allows or refuses new connections to the test database.
func (c *cluster) setConnectable(ctx context.Context, allow bool) error {
	conn, err := c.admin(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s ALLOW_CONNECTIONS %t", pgx.Identifier{c.dbName}.Sanitize(), allow))
	return err
}

// terminateBackends ends every session on the test database but the
// caller's, and returns how many it ended.
func (c *cluster) terminateBackends(ctx context.Context) (int, error) {
	conn, err := c.admin(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid()`, c.dbName).Scan(&n)
	return n, err
}

// db opens a connection to the test database for the checks.
func (c *cluster) db(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, c.dbURL)
}

// logActivity logs the sessions on the test database and what they wait
// for, to explain a stall.
func (c *cluster) logActivity(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := c.admin(ctx)
	if err != nil {
		t.Logf("activity: %v", err)
		return
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT pid, coalesce(application_name, ''), coalesce(state, ''),
		coalesce(wait_event_type || ':' || wait_event, ''), coalesce(now() - xact_start, '0'::interval)::text,
		coalesce(pg_blocking_pids(pid)::text, ''), left(coalesce(query, ''), 120)
		FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() ORDER BY xact_start NULLS LAST`, c.dbName)
	if err != nil {
		t.Logf("activity: %v", err)
		return
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var pid int
		var app, state, wait, age, blockers, query string
		if err := rows.Scan(&pid, &app, &state, &wait, &age, &blockers, &query); err != nil {
			t.Logf("activity: %v", err)
			return
		}
		fmt.Fprintf(&b, "\n  pid %d %s state=%s wait=%s xact=%s blocked_by=%s %s", pid, app, state, wait, age, blockers, strings.Join(strings.Fields(query), " "))
	}
	t.Logf("sessions on the test database:%s", b.String())
}

// blockedByOldTransactions counts sessions on the test database waiting for
// a lock held by a transaction open for longer than age.
func (c *cluster) blockedByOldTransactions(ctx context.Context, age time.Duration) (int, error) {
	conn, err := c.admin(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity w
		WHERE w.datname = $1 AND EXISTS (SELECT 1 FROM pg_stat_activity h
			WHERE h.pid = ANY(pg_blocking_pids(w.pid)) AND h.xact_start < now() - $2::interval)`,
		c.dbName, age.String()).Scan(&n)
	return n, err
}
