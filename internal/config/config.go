package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wallet/wallet/internal/gateway"
	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/worker"
)

// Program names a binary. Each program accepts the settings it uses and no
// others, so a typo in a flag fails at start-up instead of being ignored.
type Program string

// The wallet's programs.
const (
	Gateway Program = "gateway"
	Worker  Program = "worker"
	Walletd Program = "walletd"
	Migrate Program = "migrate"
)

// Programs lists every program, in the order documentation shows them.
var Programs = []Program{Walletd, Gateway, Worker, Migrate}

// DefaultDB is the database URL used when none is configured: a local
// PostgreSQL with trust authentication, as on a developer's machine.
const DefaultDB = "postgres://postgres@127.0.0.1:5432/wallet?sslmode=disable"

// DefaultNATSURL is where the gateway and the workers look for NATS when no
// URL is configured.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// Config is the validated configuration of one program. Fields a program
// does not use keep their defaults.
type Config struct {
	// MetricsPort is the operations listener (/metrics, /healthz,
	// /readyz), apart from the API: the worker's only HTTP server, and
	// the gateway's when not 0 (it serves them on its API port as well).
	MetricsPort int
	Program     Program

	// Port is the HTTP port of the gateway (and of walletd's gateway).
	// Zero picks a free port, which the program logs.
	Port int
	// Host is the interface the HTTP API listens on; empty means every
	// interface. walletd, the developer's command, listens on loopback.
	Host string
	// DB is the PostgreSQL URL. It may carry a password; String redacts it.
	DB string
	// DBRetryCount is how many times start-up tries to reach PostgreSQL
	// before giving up.
	DBRetryCount int
	// DBRetryTimeout is the first wait between attempts; it doubles after
	// each failure (see RetryWait).
	DBRetryTimeout time.Duration
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is json or console.
	LogFormat string
	// ShutdownTimeout bounds the graceful stop after a signal.
	ShutdownTimeout time.Duration
	// DebugAddr, when set, serves net/http/pprof there.
	DebugAddr string
	// OTelEndpoint, when set, is the OTLP/HTTP collector the process sends
	// its traces to; empty turns tracing off.
	OTelEndpoint string
	// CreateDB makes start-up create the database named in DB when it does
	// not exist.
	CreateDB bool
	// SchemaWait bounds how long the gateway and the workers wait at
	// start-up for the migrations they need to be applied.
	SchemaWait time.Duration

	// InsecureNoAuth allows serving the API without tokens beyond
	// loopback (--host). Without it such a configuration is refused.
	InsecureNoAuth bool

	NATS NATS
	// Stream holds the JetStream settings that whichever process starts
	// first applies to the streams.
	Stream natsbus.Config
	// Consumer holds the workers' pull and membership settings. Load sets
	// its Streams to Stream and its StopTimeout to ShutdownTimeout.
	Consumer natsbus.ConsumerSettings
	// Worker holds the workers' writer settings.
	Worker worker.Config
	// Gateway holds the HTTP API's settings.
	Gateway gateway.Config
	// Publish holds how the gateway groups its publishes into atomic
	// batches.
	Publish  natsbus.BatcherConfig
	Embedded Embedded

	// given holds the settings a flag or the environment set, by name.
	given map[string]bool
}

// NATS holds how to reach and authenticate to NATS.
type NATS struct {
	// URL is a comma-separated list of server URLs. For walletd, empty means
	// "run an embedded server".
	URL          string
	User         string
	Password     string
	Token        string
	Creds        string // path to a .creds file (JWT + nkey seed)
	TLSCA        string // path to a PEM CA bundle
	TLSCert      string // path to a PEM client certificate
	TLSKey       string // path to its PEM key
	RetryCount   int
	RetryTimeout time.Duration
}

// Embedded holds walletd's embedded JetStream server settings.
type Embedded struct {
	Listen   string
	StoreDir string
	// Sync is SyncAlways (the default) or SyncPeriodic.
	Sync string
	// BatchStaging is StagingMemory (the default) or StagingDisk.
	BatchStaging string
}

// Values of --nats-batch-staging.
const (
	// StagingMemory stages the requests stream's atomic batches on the
	// memory file system (Linux: /dev/shm) where there is one, so a batch
	// costs the stream's own sync and little else.
	StagingMemory = "memory"
	// StagingDisk leaves them where nats-server puts them, in the store.
	StagingDisk = "disk"
)

// Values of --nats-sync.
const (
	// SyncAlways makes the embedded server write every request to disk
	// (fsync) before acknowledging it, so an accepted request survives a
	// power loss.
	SyncAlways = "always"
	// SyncPeriodic is the opt-out: NATS's own default, flushing every two
	// minutes. Faster; a power loss (not a process crash) can lose requests
	// that were already answered 202.
	SyncPeriodic = "periodic"
)

// Defaults returns program p's configuration before flags and environment.
func Defaults(p Program) Config {
	c := Config{
		Program:         p,
		Port:            8080,
		DB:              DefaultDB,
		DBRetryCount:    10,
		DBRetryTimeout:  2 * time.Second,
		LogLevel:        "info",
		LogFormat:       "json",
		ShutdownTimeout: 10 * time.Second,
		SchemaWait:      2 * time.Minute,
		NATS: NATS{
			URL:          DefaultNATSURL,
			RetryCount:   10,
			RetryTimeout: 2 * time.Second,
		},
		// The components' settings start from their packages' defaults:
		// what --help shows is what the package would use on its own.
		Stream:   natsbus.DefaultConfig(),
		Consumer: natsbus.DefaultConsumerSettings(),
		Worker:   worker.DefaultConfig(),
		Gateway:  gateway.DefaultConfig(),
		Publish:  natsbus.DefaultBatcherConfig(),
		Embedded: Embedded{
			Listen:       "127.0.0.1:4223",
			StoreDir:     defaultStoreDir(),
			Sync:         SyncAlways,
			BatchStaging: StagingMemory,
		},
	}
	if p == Worker {
		c.MetricsPort = 9090
	}
	if p == Walletd {
		// walletd is the developer's command: readable logs, its own NATS,
		// and a database it creates when missing.
		c.LogFormat = "console"
		c.NATS.URL = ""
		c.CreateDB = true
		c.Host = "127.0.0.1"
	}
	c.link()
	return c
}

// link copies the settings that one component takes from another's: the
// consumer ensures the streams as configured, and its soft stop has the
// process's shutdown timeout.
func (c *Config) link() {
	c.Consumer.Streams = c.Stream
	c.Consumer.StopTimeout = c.ShutdownTimeout
}

// defaultStoreDir follows the XDG base directory rules for state that must
// survive restarts; a temporary directory would lose accepted requests.
func defaultStoreDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "walletd", "jetstream")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".local", "state", "walletd", "jetstream")
	}
	return filepath.Join(".walletd", "jetstream")
}

// Given reports whether setting name (a flag's name, such as
// "publish-batch-min") was set by a flag or the environment rather than
// left at its default.
func (c *Config) Given(name string) bool { return c.given[name] }

// EmbeddedNATS reports whether walletd should run its own NATS server.
func (c *Config) EmbeddedNATS() bool { return c.Program == Walletd && c.NATS.URL == "" }

// String lists the settings of c's program as name=value pairs, with
// secrets replaced by "<redacted>" (or "<unset>") and any password in the
// database URL masked. It is the form to log.
func (c *Config) String() string {
	var b strings.Builder
	for i, e := range bind(c, c.Program) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(e.Name)
		b.WriteByte('=')
		b.WriteString(e.display())
	}
	return b.String()
}

// redacted replaces a credential in a logged URL.
const redacted = "xxxxx"

// RedactURL masks every credential in a URL so it can be logged: the
// password of its user info, a user name alone where it is a token (NATS
// URLs: nats://<token>@host), and query parameters that carry a secret
// (PostgreSQL's ?password= and ?sslpassword=, a ?token=, ...).
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable url>"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), redacted)
	} else if u.User != nil && u.Scheme != "postgres" && u.Scheme != "postgresql" {
		u.User = url.User(redacted)
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = redacted
		} else {
			found := false
			for k := range q {
				if secretParam(k) {
					q.Set(k, redacted)
					found = true
				}
			}
			if found {
				u.RawQuery = q.Encode()
			}
		}
	}
	return u.String()
}

// secretParam reports whether a URL query parameter may hold a secret.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"pass", "pwd", "token", "secret", "auth", "credential", "jwt", "nkey", "seed"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// RedactURLs is RedactURL for a comma-separated list of URLs (--nats-url).
func RedactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		parts[i] = RedactURL(strings.TrimSpace(u))
	}
	return strings.Join(parts, ",")
}

// IsLoopbackHost reports whether host (a name or an IP address, as in
// --host) is reachable only from this machine.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// RetryWait returns how long to wait after failed attempt n (1-based) when
// the first wait is base: the wait doubles each time, capped at 30 seconds
// or base, whichever is larger, so a long outage is not hammered.
func RetryWait(base time.Duration, n int) time.Duration {
	limit := max(30*time.Second, base)
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// dbName returns the database name in a PostgreSQL URL.
func dbName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(u.Path, "/")
}

// validateDB checks that s is a postgres:// URL naming a host and database.
func validateDB(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("must be a postgres:// URL")
	}
	if dbName(s) == "" {
		return fmt.Errorf("must name a database (postgres://host:5432/<database>)")
	}
	return nil
}
