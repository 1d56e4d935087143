package config

import (
	"flag"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/wallet/wallet/internal/natsbus"
)

// Setting describes one configuration setting.
type Setting struct {
	// Name is the canonical kebab-case flag name, e.g. "db-retry-count".
	Name string
	// Aliases are other accepted flag names: the 2020 service's camelCase
	// spellings, with the same meaning.
	Aliases []string
	// Env is the environment variable, WALLET_ plus Name in upper snake case.
	Env string
	// Usage is the one-line description --help shows.
	Usage string
	// Default is the default as --help shows it; always empty for secrets.
	Default string
	// Secret settings are never printed: not in --help, not in String().
	Secret bool
	// Programs lists the programs that accept the setting.
	Programs []Program
}

// EnvName returns the environment variable for a canonical flag name.
func EnvName(name string) string {
	return "WALLET_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Settings returns the settings program p accepts, in --help order, with
// p's defaults.
func Settings(p Program) []Setting {
	c := Defaults(p)
	entries := bind(&c, p)
	out := make([]Setting, len(entries))
	for i, e := range entries {
		out[i] = e.Setting
	}
	return out
}

// AllSettings returns every setting of every program, each once, with the
// defaults of the first program in Programs that accepts it.
func AllSettings() []Setting {
	var out []Setting
	seen := map[string]bool{}
	for _, p := range Programs {
		for _, s := range Settings(p) {
			if !seen[s.Name] {
				seen[s.Name] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// entry binds a Setting to the field of one Config that holds it.
type entry struct {
	Setting
	value flag.Value
}

// display renders the entry's current value for logs.
func (e entry) display() string {
	v := e.value.String()
	switch {
	case e.Secret && v == "":
		return "<unset>"
	case e.Secret:
		return "<redacted>"
	case e.Name == "db":
		return RedactURL(v)
	case e.Name == "nats-url" && v != "":
		return RedactURLs(v)
	default:
		return v
	}
}

var (
	allPrograms = []Program{Walletd, Gateway, Worker, Migrate}
	services    = []Program{Walletd, Gateway, Worker}
	producers   = []Program{Walletd, Gateway}
	consumers   = []Program{Walletd, Worker}
)

// bind returns the settings program p accepts, bound to c's fields. The
// table is the single source of truth for names, ranges and programs.
func bind(c *Config, p Program) []entry {
	all := []struct {
		name     string
		alias    string
		usage    string
		secret   bool
		programs []Program
		value    flag.Value
	}{
		// The 2020 service's settings, with their meanings.
		{"port", "", "HTTP port of the API (0 picks a free port)", false, producers,
			intValue{&c.Port, 0, 65535}},
		{"host", "", "interface the HTTP API listens on (empty: every interface)", false, producers,
			stringValue{&c.Host}},
		{"db", "", "PostgreSQL URL (postgres://user:password@host:5432/database?sslmode=...)", false, allPrograms,
			dbValue{&c.DB}},
		{"db-retry-count", "dbRetryCount", "connection attempts to PostgreSQL at start-up before giving up", false, allPrograms,
			intValue{&c.DBRetryCount, 1, 1000}},
		{"db-retry-timeout", "dbRetryTimeout", "first wait between PostgreSQL connection attempts; doubles each time, up to 30s", false, allPrograms,
			durationValue{&c.DBRetryTimeout, time.Millisecond, 10 * time.Minute}},
		{"log-level", "logLevel", "debug|info|warn|error", false, allPrograms,
			enumValue{&c.LogLevel, []string{"debug", "info", "warn", "error"}}},
		{"log-format", "", "json|console", false, allPrograms,
			enumValue{&c.LogFormat, []string{"json", "console"}}},
		{"shutdown-timeout", "shutdownTimeout", "graceful shutdown timeout after SIGTERM, SIGINT or SIGHUP", false, allPrograms,
			durationValue{&c.ShutdownTimeout, 100 * time.Millisecond, 10 * time.Minute}},
		{"create-db", "", "create the database named in --db when it does not exist", false, []Program{Walletd, Migrate},
			boolValue{&c.CreateDB}},
		{"schema-wait", "", "how long start-up waits for the database schema this build needs (the migrate job's work); 0 checks once", false, []Program{Gateway, Worker},
			durationValue{&c.SchemaWait, 0, time.Hour}},

		// NATS connection.
		{"nats-url", "", natsURLUsage(p), false, services,
			urlListValue{&c.NATS.URL, p == Walletd}},
		{"nats-user", "", "NATS user name", false, services,
			stringValue{&c.NATS.User}},
		{"nats-password", "", "NATS password", true, services,
			stringValue{&c.NATS.Password}},
		{"nats-token", "", "NATS authentication token", true, services,
			stringValue{&c.NATS.Token}},
		{"nats-creds", "", "path to a NATS .creds file (JWT and nkey seed)", false, services,
			stringValue{&c.NATS.Creds}},
		{"nats-tls-ca", "", "path to the PEM CA bundle that signs the NATS servers' certificates", false, services,
			stringValue{&c.NATS.TLSCA}},
		{"nats-tls-cert", "", "path to a PEM client certificate for NATS (with --nats-tls-key)", false, services,
			stringValue{&c.NATS.TLSCert}},
		{"nats-tls-key", "", "path to the PEM key of --nats-tls-cert", false, services,
			stringValue{&c.NATS.TLSKey}},
		{"nats-retry-count", "", "connection attempts to NATS at start-up before giving up", false, services,
			intValue{&c.NATS.RetryCount, 1, 1000}},
		{"nats-retry-timeout", "", "first wait between NATS connection attempts; doubles each time, up to 30s", false, services,
			durationValue{&c.NATS.RetryTimeout, time.Millisecond, 10 * time.Minute}},

		// Streams, applied by whichever process starts first.
		{"stream-replicas", "", "JetStream replicas of the streams (3 on a 3-node cluster)", false, services,
			intValue{&c.Stream.Replicas, 1, 5}},
		{"partitions", "", "request partitions; more than the number of workers you will ever run", false, services,
			intValue{&c.Stream.Partitions, 1, 1000}},
		{"dedupe-window", "", "JetStream duplicate window for request ids", false, services,
			durationValue{&c.Stream.Duplicates, time.Second, 7 * 24 * time.Hour}},
		{"requests-max-msgs", "", "most requests the requests stream holds; when full, new requests are refused (503)", false, services,
			int64Value{&c.Stream.RequestsMaxMsgs, 1, math.MaxInt64}},
		{"requests-max-bytes", "", "most bytes the requests stream holds (KiB, MiB, GiB suffixes allowed)", false, services,
			int64Value{&c.Stream.RequestsMaxBytes, 1 << 20, math.MaxInt64}},
		{"results-max-age", "", "how long the results stream keeps an outcome (outcomes can be read from PostgreSQL after it)", false, services,
			durationValue{&c.Stream.ResultsMaxAge, time.Minute, 10 * 365 * 24 * time.Hour}},
		{"results-max-bytes", "", "most bytes the results stream holds; the oldest outcomes go first (KiB, MiB, GiB suffixes allowed)", false, services,
			int64Value{&c.Stream.ResultsMaxBytes, 1 << 20, math.MaxInt64}},
		{"results-sync", "", "make the results stream fsync every outcome like the requests stream (outcomes are derived data; syncing them costs worker throughput)", false, services,
			boolValue{&c.Stream.ResultsSync}},
		{"deadletter-max-age", "", "how long the dead-letter stream keeps a poison message", false, services,
			durationValue{&c.Stream.DeadLetterMaxAge, time.Minute, 10 * 365 * 24 * time.Hour}},
		{"deadletter-max-bytes", "", "most bytes the dead-letter stream holds; the oldest dead letters go first (KiB, MiB, GiB suffixes allowed)", false, services,
			int64Value{&c.Stream.DeadLetterMaxBytes, 1 << 20, math.MaxInt64}},

		// Workers.
		{"batch-size", "", "most requests a worker pulls from one partition at a time (the consumers' max ack pending); a worker merges several partitions' batches into one transaction of up to 1000", false, consumers,
			intValue{&c.Consumer.BatchSize, 1, 10000}},
		{"batch-linger", "", "how long a partition with more than one request waiting lingers to fill its batch (a lone request is applied at once)", false, consumers,
			durationValue{&c.Consumer.Linger, 0, time.Second}},
		{"worker-concurrency", "", "batches a worker process applies at once", false, consumers,
			intValue{&c.Worker.Concurrency, 1, 64}},
		{"ack-wait", "", "JetStream ack wait before a message is redelivered (at most --pinned-ttl)", false, consumers,
			durationValue{&c.Consumer.AckWait, time.Second, time.Hour}},
		{"pinned-ttl", "", "how long a silent worker keeps its partitions pinned before another takes them", false, consumers,
			durationValue{&c.Consumer.PinnedTTL, 2 * time.Second, time.Hour}},
		{"heartbeat", "", "how often a worker renews its membership and re-reads who else is there", false, consumers,
			durationValue{&c.Consumer.Heartbeat, 50 * time.Millisecond, time.Minute}},
		{"member-ttl", "", "how long a silent worker stays a member before its partitions are handed to the others (at least two --heartbeat)", false, consumers,
			durationValue{&c.Consumer.MemberTTL, 100 * time.Millisecond, 10 * time.Minute}},
		{"purge-interval", "", "how often the owner of partition 0 purges the requests stream below every partition's ack floor", false, consumers,
			durationValue{&c.Consumer.PurgeInterval, 100 * time.Millisecond, time.Hour}},
		{"expire-interval", "", "how often a worker looks for holds past their timeout and releases them", false, consumers,
			durationValue{&c.Worker.ExpireInterval, 10 * time.Millisecond, time.Hour}},
		{"expire-batch", "", "most expired holds one release transaction takes", false, consumers,
			intValue{&c.Worker.ExpireBatch, 1, 10000}},
		{"metrics-port", "", "port of the operations listener: /metrics, /healthz and /readyz apart from the API (worker default 9090; gateway default none, 0 picks a free port for the worker)", false, []Program{Worker, Gateway},
			intValue{&c.MetricsPort, 0, 65535}},

		// Gateway.
		{"auth-tokens", "", "bearer tokens as comma-separated sha256:<hex>:read|write (hashes, never tokens); empty disables auth", true, producers,
			tokensValue{&c.Gateway.Tokens}},
		{"insecure-no-auth", "", "serve the HTTP API without authentication although --auth-tokens is empty and --host reaches beyond loopback", false, producers,
			boolValue{&c.InsecureNoAuth}},
		{"max-wait", "", "longest wait a client may ask for with Prefer: wait=N", false, producers,
			durationValue{&c.Gateway.MaxWait, 0, 5 * time.Minute}},
		{"max-waiters", "", "most requests waiting for their outcome at once (Prefer: wait, original API); past it a request is stored and answered as pending at once", false, producers,
			intValue{&c.Gateway.MaxWaiters, 1, 1_000_000}},
		{"publish-batch-min", "", "fewest waiting requests the gateway publishes as one JetStream atomic batch (one disk sync for all); fewer go as single publishes, one sync each. Unless set, walletd uses 8 while its atomic batches are staged in memory (--nats-batch-staging)", false, producers,
			intValue{&c.Publish.MinMessages, 1, natsbus.MaxBatchMessages}},
		{"publish-batch-max", "", "most requests in one atomic batch (at least --publish-batch-min, at most 1000)", false, producers,
			intValue{&c.Publish.MaxMessages, 1, natsbus.MaxBatchMessages}},
		{"publish-ack-timeout", "", "how long the gateway waits for JetStream to acknowledge a batch or a single publish; past it the outcome is unknown and the gateway looks the request up before it answers", false, producers,
			durationValue{&c.Publish.Timeout, 100 * time.Millisecond, time.Minute}},
		{"publish-timeout", "", "longest one request's publish may take, queueing and acknowledgement included; a request not stored in time is answered 503 and may be retried under the same id", false, producers,
			durationValue{&c.Gateway.PublishTimeout, 100 * time.Millisecond, time.Minute}},
		{"legacy-wait", "", "how long the original API's POST /transfers/ waits for the outcome before answering that the request is pending (0: --max-wait)", false, producers,
			durationValue{&c.Gateway.LegacyWait, 0, 5 * time.Minute}},
		{"body-limit", "", "largest request body the API accepts, in bytes (KiB, MiB suffixes allowed); a larger one is answered 413", false, producers,
			byteSizeValue{&c.Gateway.BodyLimit, 1 << 10, 64 << 20}},
		{"read-timeout", "", "longest the API waits to read one request, headers and body, so slow clients cannot hold connections", false, producers,
			durationValue{&c.Gateway.ReadTimeout, 100 * time.Millisecond, 10 * time.Minute}},
		{"idle-timeout", "", "how long an idle keep-alive connection to the API stays open", false, producers,
			durationValue{&c.Gateway.IdleTimeout, time.Second, time.Hour}},

		// Tracing.
		{"otel-endpoint", "", "OTLP/HTTP collector traces are sent to, e.g. http://otel-collector:4318 (/v1/traces is added when the URL has no path); empty: tracing off", false, services,
			otlpEndpointValue{&c.OTelEndpoint}},

		// Debugging.
		{"debug-addr", "", "host:port serving net/http/pprof (empty: off; without a host, 127.0.0.1; name another interface only behind a firewall)", false, services,
			addrValue{&c.DebugAddr, true, true}},

		// walletd's embedded NATS server.
		{"nats-listen", "", "where the embedded NATS server listens (when --nats-url is empty)", false, []Program{Walletd},
			addrValue{&c.Embedded.Listen, false, false}},
		{"nats-store-dir", "", "directory of the embedded NATS server's file store", false, []Program{Walletd},
			nonEmptyValue{&c.Embedded.StoreDir}},
		{"nats-sync", "", "always: the embedded server fsyncs each request before accepting it (survives power loss); periodic: flush every 2 minutes (faster; a power loss may lose accepted requests)", false, []Program{Walletd},
			enumValue{&c.Embedded.Sync, []string{SyncAlways, SyncPeriodic}}},
		{"nats-batch-staging", "", "memory: the embedded server stages the requests stream's atomic batches on /dev/shm (each still synced to the stream before its PubAck; a power loss during a commit may store part of an unacknowledged batch); disk: in the store, whole after a power loss too", false, []Program{Walletd},
			enumValue{&c.Embedded.BatchStaging, []string{StagingMemory, StagingDisk}}},
	}
	var out []entry
	for _, s := range all {
		if !slices.Contains(s.programs, p) {
			continue
		}
		e := entry{
			Setting: Setting{
				Name:     s.name,
				Env:      EnvName(s.name),
				Usage:    s.usage,
				Secret:   s.secret,
				Programs: s.programs,
			},
			value: s.value,
		}
		if s.alias != "" {
			e.Aliases = []string{s.alias}
		}
		if !s.secret {
			e.Default = s.value.String()
		}
		out = append(out, e)
	}
	return out
}

func natsURLUsage(p Program) string {
	if p == Walletd {
		return "NATS server URLs, comma-separated; empty runs an embedded JetStream server"
	}
	return "NATS server URLs, comma-separated"
}

// dbValue holds the database URL. Its error messages never repeat the URL,
// which may carry a password.
type dbValue struct{ p *string }

func (v dbValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if err := validateDB(s); err != nil {
		return err
	}
	*v.p = s
	return nil
}

func (v dbValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

// nonEmptyValue is a string setting that must not be empty.
type nonEmptyValue struct{ p *string }

func (v nonEmptyValue) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return errEmpty
	}
	*v.p = s
	return nil
}

func (v nonEmptyValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}
