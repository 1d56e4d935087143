package config

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wallet/wallet/internal/gateway"
	"github.com/wallet/wallet/internal/natsbus"
)

// samples holds, for every setting, a valid value other than any program's
// default and how that value reads back. A setting missing here fails
// TestEverySettingHasSamples, so new settings get tested.
var samples = map[string]struct{ in, want string }{
	"port":                 {"9000", "9000"},
	"db":                   {"postgres://app@db.internal:5433/ledger?sslmode=require", "postgres://app@db.internal:5433/ledger?sslmode=require"},
	"db-retry-count":       {"3", "3"},
	"db-retry-timeout":     {"150ms", "150ms"},
	"log-level":            {"WARN", "warn"},
	"log-format":           {"console", "console"},
	"shutdown-timeout":     {"25s", "25s"},
	"create-db":            {"false", "false"},
	"schema-wait":          {"90s", "1m30s"},
	"nats-url":             {"nats://n1:4222,nats://n2:4222", "nats://n1:4222,nats://n2:4222"},
	"nats-user":            {"wallet", "wallet"},
	"nats-password":        {"pw-sample-1", "pw-sample-1"},
	"nats-token":           {"tok-sample-1", "tok-sample-1"},
	"nats-creds":           {"@file", "@file"},
	"nats-tls-ca":          {"@file", "@file"},
	"nats-tls-cert":        {"@file", "@file"},
	"nats-tls-key":         {"@file", "@file"},
	"nats-retry-count":     {"4", "4"},
	"nats-retry-timeout":   {"3s", "3s"},
	"stream-replicas":      {"3", "3"},
	"partitions":           {"64", "64"},
	"dedupe-window":        {"5m", "5m0s"},
	"requests-max-msgs":    {"2000", "2000"},
	"requests-max-bytes":   {"2GiB", "2147483648"},
	"batch-size":           {"64", "64"},
	"batch-linger":         {"3ms", "3ms"},
	"worker-concurrency":   {"4", "4"},
	"ack-wait":             {"7s", "7s"},
	"pinned-ttl":           {"20s", "20s"},
	"metrics-port":         {"9191", "9191"},
	"auth-tokens":          {gateway.HashToken("t1", gateway.ScopeRead) + "," + gateway.HashToken("t2", gateway.ScopeWrite), gateway.HashToken("t1", gateway.ScopeRead) + "," + gateway.HashToken("t2", gateway.ScopeWrite)},
	"results-max-age":      {"48h", "48h0m0s"},
	"results-max-bytes":    {"1GiB", "1073741824"},
	"results-sync":         {"true", "true"},
	"deadletter-max-age":   {"72h", "72h0m0s"},
	"deadletter-max-bytes": {"2GiB", "2147483648"},
	"expire-interval":      {"250ms", "250ms"},
	"heartbeat":            {"500ms", "500ms"},
	"member-ttl":           {"6s", "6s"},
	"purge-interval":       {"30s", "30s"},
	"expire-batch":         {"200", "200"},
	"publish-ack-timeout":  {"8s", "8s"},
	"publish-timeout":      {"9s", "9s"},
	"legacy-wait":          {"20s", "20s"},
	"body-limit":           {"128KiB", "131072"},
	"read-timeout":         {"30s", "30s"},
	"idle-timeout":         {"5m", "5m0s"},
	"max-wait":             {"10s", "10s"},
	"max-waiters":          {"50", "50"},
	"publish-batch-min":    {"8", "8"},
	"publish-batch-max":    {"200", "200"},
	"debug-addr":           {"127.0.0.1:6060", "127.0.0.1:6060"},
	"otel-endpoint":        {"http://otel-collector:4318", "http://otel-collector:4318"},
	"host":                 {"127.0.0.2", "127.0.0.2"},
	"insecure-no-auth":     {"true", "true"},
	"nats-listen":          {"127.0.0.1:14222", "127.0.0.1:14222"},
	"nats-store-dir":       {"/var/lib/walletd", "/var/lib/walletd"},
	"nats-sync":            {"periodic", "periodic"},
	"nats-batch-staging":   {"disk", "disk"},
}

// alternatives are the samples for programs whose default is the sample.
var alternatives = map[string]string{
	"create-db":  "true",
	"log-format": "json",
}

// bad holds, for every setting that can be wrong, a value that is.
var bad = map[string]string{
	"port":                 "http",
	"db":                   "mysql://x/y",
	"db-retry-count":       "0",
	"db-retry-timeout":     "2",
	"log-level":            "verbose",
	"log-format":           "xml",
	"shutdown-timeout":     "-1s",
	"create-db":            "maybe",
	"schema-wait":          "2h",
	"nats-url":             "localhost:4222",
	"nats-retry-count":     "-3",
	"nats-retry-timeout":   "soon",
	"stream-replicas":      "7",
	"partitions":           "0",
	"dedupe-window":        "0s",
	"requests-max-msgs":    "1e6",
	"requests-max-bytes":   "12",
	"batch-size":           "100000",
	"batch-linger":         "1h",
	"worker-concurrency":   "0",
	"ack-wait":             "1ms",
	"pinned-ttl":           "never",
	"metrics-port":         "70000",
	"auth-tokens":          "sha256:abcd:write",
	"max-wait":             "1d",
	"max-waiters":          "0",
	"publish-batch-min":    "0",
	"publish-batch-max":    "1001",
	"debug-addr":           "6060",
	"otel-endpoint":        "otel-collector:4318",
	"nats-listen":          "everywhere",
	"nats-store-dir":       " ",
	"nats-sync":            "sometimes",
	"nats-batch-staging":   "ramdisk",
	"results-max-age":      "1s",
	"results-max-bytes":    "0",
	"results-sync":         "often",
	"deadletter-max-age":   "forever",
	"deadletter-max-bytes": "1KiB",
	"expire-interval":      "1ms",
	"heartbeat":            "1ms",
	"member-ttl":           "1h",
	"purge-interval":       "0s",
	"expire-batch":         "0",
	"publish-ack-timeout":  "0s",
	"publish-timeout":      "2m",
	"legacy-wait":          "-1s",
	"body-limit":           "1GiB",
	"read-timeout":         "1ns",
	"idle-timeout":         "0s",
}

// sampleValue resolves "@file" to a file that exists, for path settings.
func sampleValue(t *testing.T, name string) (in, want string) {
	t.Helper()
	s, ok := samples[name]
	if !ok {
		t.Fatalf("no sample for setting %q", name)
	}
	if s.in == "@file" {
		path := filepath.Join(t.TempDir(), name+".pem")
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path, path
	}
	return s.in, s.want
}

// companions returns the other settings a sample needs to be valid on its
// own (a password needs a user, a certificate its key...).
func companions(t *testing.T, name string) map[string]string {
	switch name {
	case "nats-password":
		return map[string]string{"nats-user": "wallet"}
	case "nats-user":
		return map[string]string{"nats-password": "pw"}
	case "nats-tls-cert":
		k, _ := sampleValue(t, "nats-tls-key")
		return map[string]string{"nats-tls-key": k}
	case "nats-tls-key":
		c, _ := sampleValue(t, "nats-tls-cert")
		return map[string]string{"nats-tls-cert": c}
	case "ack-wait":
		return nil
	case "pinned-ttl":
		return nil
	case "stream-replicas":
		return map[string]string{"nats-url": "nats://n1:4222"}
	}
	return nil
}

// env looks variables up in m. Unless m sets WALLET_HOST, the API listens
// on loopback, where a configuration without tokens is allowed
// (TestNoAuthBeyondLoopbackIsRefused covers the rule).
func env(m map[string]string) LookupEnv {
	return func(k string) (string, bool) {
		v, ok := m[k]
		if !ok && k == "WALLET_HOST" {
			return "127.0.0.1", true
		}
		return v, ok
	}
}

// current reads back a setting's value from a loaded config.
func current(t *testing.T, c *Config, name string) string {
	t.Helper()
	for _, e := range bind(c, c.Program) {
		if e.Name == name {
			return e.value.String()
		}
	}
	t.Fatalf("%s has no setting %q", c.Program, name)
	return ""
}

func TestEverySettingHasSamples(t *testing.T) {
	t.Parallel()
	for _, s := range AllSettings() {
		if _, ok := samples[s.Name]; !ok {
			t.Errorf("setting %q has no sample value in this test", s.Name)
		}
		if s.Env != EnvName(s.Name) || !strings.HasPrefix(s.Env, "WALLET_") {
			t.Errorf("setting %q has env %q", s.Name, s.Env)
		}
		if s.Secret && s.Default != "" {
			t.Errorf("secret setting %q shows a default", s.Name)
		}
	}
}

func TestEveryFlagAndEnvParses(t *testing.T) {
	t.Parallel()
	for _, p := range Programs {
		for _, s := range Settings(p) {
			t.Run(string(p)+"/"+s.Name, func(t *testing.T) {
				t.Parallel()
				in, want := sampleValue(t, s.Name)
				extra := companions(t, s.Name)
				def := Defaults(p)
				// Where programs differ in their defaults, use the other value.
				if alt, ok := alternatives[s.Name]; ok && current(t, &def, s.Name) == want {
					in, want = alt, alt
				}
				if got := current(t, &def, s.Name); got == want {
					t.Fatalf("sample %q equals the default; pick another", in)
				}

				// As a flag, both --name=value and -name value.
				args := []string{"--" + s.Name + "=" + in}
				for k, v := range extra {
					args = append(args, "--"+k+"="+v)
				}
				c, err := Load(p, args, env(nil))
				if err != nil {
					t.Fatalf("flag: %v", err)
				}
				if got := current(t, c, s.Name); got != want {
					t.Errorf("flag: got %q, want %q", got, want)
				}
				single := []string{"-" + s.Name, in}
				if s.Name == "create-db" || s.Name == "insecure-no-auth" || s.Name == "results-sync" {
					// Booleans take -name=value only, as in the flag package.
					single = []string{"-" + s.Name + "=" + in}
				}
				c, err = Load(p, append(single, args[1:]...), env(nil))
				if err != nil {
					t.Fatalf("single-dash flag: %v", err)
				}
				if got := current(t, c, s.Name); got != want {
					t.Errorf("single-dash flag: got %q, want %q", got, want)
				}

				// As an environment variable.
				vars := map[string]string{s.Env: in}
				for k, v := range extra {
					vars[EnvName(k)] = v
				}
				c, err = Load(p, nil, env(vars))
				if err != nil {
					t.Fatalf("env: %v", err)
				}
				if got := current(t, c, s.Name); got != want {
					t.Errorf("env: got %q, want %q", got, want)
				}

				// Aliases mean the same.
				for _, a := range s.Aliases {
					c, err = Load(p, []string{"-" + a, in}, env(nil))
					if err != nil {
						t.Fatalf("alias -%s: %v", a, err)
					}
					if got := current(t, c, s.Name); got != want {
						t.Errorf("alias -%s: got %q, want %q", a, got, want)
					}
				}
			})
		}
	}
}

func TestTypedFields(t *testing.T) {
	t.Parallel()
	c, err := Load(Worker, []string{
		"-dbRetryCount", "7", "-dbRetryTimeout", "250ms", "-logLevel", "debug", "-shutdownTimeout", "3s",
		"--batch-size", "128", "--batch-linger", "4ms", "--ack-wait", "9s", "--pinned-ttl", "12s",
		"--requests-max-bytes", "512MiB",
	}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.DBRetryCount != 7 || c.DBRetryTimeout != 250*time.Millisecond || c.LogLevel != "debug" || c.ShutdownTimeout != 3*time.Second {
		t.Errorf("2020 aliases: %+v", c)
	}
	if c.Consumer.BatchSize != 128 || c.Consumer.Linger != 4*time.Millisecond || c.Consumer.AckWait != 9*time.Second || c.Consumer.PinnedTTL != 12*time.Second {
		t.Errorf("consumer settings: %+v", c.Consumer)
	}
	if c.Consumer.Streams != c.Stream || c.Consumer.StopTimeout != c.ShutdownTimeout {
		t.Errorf("the consumer's streams %+v and stop timeout %s are not --partitions... and --shutdown-timeout", c.Consumer.Streams, c.Consumer.StopTimeout)
	}
	if c.Stream.RequestsMaxBytes != 512<<20 {
		t.Errorf("requests-max-bytes = %d", c.Stream.RequestsMaxBytes)
	}
	if c.LogFormat != "json" || c.NATS.URL != DefaultNATSURL {
		t.Errorf("worker defaults: log-format %q, nats-url %q", c.LogFormat, c.NATS.URL)
	}

	d, err := Load(Walletd, []string{"--auth-tokens", gateway.HashToken("s3cr3t", gateway.ScopeWrite)}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if d.Embedded.Sync != SyncAlways || !d.EmbeddedNATS() || d.LogFormat != "console" || !d.CreateDB {
		t.Errorf("walletd defaults: %+v", d)
	}
	if tk := d.Gateway.Tokens; len(tk) != 1 || tk[0].Hash != sha256.Sum256([]byte("s3cr3t")) || tk[0].Scope != gateway.ScopeWrite {
		t.Errorf("auth tokens: %+v", tk)
	}
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	vars := env(map[string]string{"WALLET_PORT": "7000", "WALLET_DB_RETRY_COUNT": "5", "WALLET_LOG_LEVEL": "error"})

	c, err := Load(Gateway, nil, vars)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 7000 || c.DBRetryCount != 5 || c.LogLevel != "error" {
		t.Errorf("env over default: port %d, retries %d, level %s", c.Port, c.DBRetryCount, c.LogLevel)
	}

	c, err = Load(Gateway, []string{"--port", "7001", "-dbRetryCount", "6"}, vars)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 7001 || c.DBRetryCount != 6 || c.LogLevel != "error" {
		t.Errorf("flag over env: port %d, retries %d, level %s", c.Port, c.DBRetryCount, c.LogLevel)
	}

	// A bad environment value is not an error when a flag overrides it.
	if _, err := Load(Gateway, []string{"--port", "7002"}, env(map[string]string{"WALLET_PORT": "nope"})); err != nil {
		t.Errorf("overridden bad env: %v", err)
	}

	// An empty variable counts as unset.
	c, err = Load(Gateway, nil, env(map[string]string{"WALLET_PORT": ""}))
	if err != nil || c.Port != 8080 {
		t.Errorf("empty env: %v, port %d", err, c.Port)
	}
}

// TestGiven: a setting counts as given when a flag (under any of its
// names) or a non-empty environment variable sets it, even to its default.
func TestGiven(t *testing.T) {
	t.Parallel()
	c, err := Load(Walletd, []string{"-dbRetryCount", "10"}, env(map[string]string{"WALLET_PUBLISH_BATCH_MIN": "32", "WALLET_LOG_LEVEL": ""}))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"db-retry-count": true, "publish-batch-min": true, "log-level": false, "port": false} {
		if got := c.Given(name); got != want {
			t.Errorf("Given(%q) = %v, want %v", name, got, want)
		}
	}
	if d := Defaults(Walletd); d.Given("port") {
		t.Error("a default counts as given")
	}
}

func TestBadValuesNameTheSetting(t *testing.T) {
	t.Parallel()
	for _, p := range Programs {
		for _, s := range Settings(p) {
			v, ok := bad[s.Name]
			if !ok {
				continue
			}
			t.Run(string(p)+"/"+s.Name, func(t *testing.T) {
				t.Parallel()
				for _, src := range []struct {
					args []string
					vars map[string]string
					name string
				}{
					{[]string{"--" + s.Name + "=" + v}, nil, "--" + s.Name},
					{nil, map[string]string{s.Env: v}, s.Env},
				} {
					_, err := Load(p, src.args, env(src.vars))
					var ce *Error
					if !errors.As(err, &ce) {
						t.Fatalf("%s=%q: want *Error, got %v", src.name, v, err)
					}
					if ce.Setting != s.Name {
						t.Errorf("%s=%q: error names %q", src.name, v, ce.Setting)
					}
					msg := err.Error()
					if !strings.Contains(msg, src.name) || strings.Contains(msg, "\n") {
						t.Errorf("%s=%q: message %q should be one line naming %s", src.name, v, msg, src.name)
					}
					if s.Secret && strings.Contains(msg, v) {
						t.Errorf("secret %s: message %q repeats the value", s.Name, msg)
					}
				}
			})
		}
	}
}

// TestDefaultsAreThePackages: a component's settings start from its own
// package's defaults, which that package accepts.
func TestDefaultsAreThePackages(t *testing.T) {
	t.Parallel()
	for _, p := range []Program{Walletd, Gateway, Worker} {
		c := Defaults(p)
		for name, err := range map[string]error{
			"stream": c.Stream.Validate(), "consumer": c.Consumer.Validate(), "worker": c.Worker.Validate(),
			"gateway": c.Gateway.Validate(), "publish": c.Publish.Validate(),
		} {
			if err != nil {
				t.Errorf("%s: %s defaults: %v", p, name, err)
			}
		}
		if !strings.Contains(Usage(p), "env WALLET_PARTITIONS, default "+strconv.Itoa(natsbus.DefaultPartitions)+"\n") {
			t.Errorf("%s: --help does not show natsbus's partitions", p)
		}
	}
}

func TestBadCombinations(t *testing.T) {
	t.Parallel()
	cert, _ := sampleValue(t, "nats-tls-cert")
	cases := []struct {
		p       Program
		args    []string
		setting string
	}{
		{Worker, []string{"--ack-wait", "30s", "--pinned-ttl", "10s"}, "ack-wait"},
		{Gateway, []string{"--nats-password", "pw"}, "nats-password"},
		{Gateway, []string{"--nats-user", "u"}, "nats-user"},
		{Gateway, []string{"--nats-user", "u", "--nats-password", "p", "--nats-token", "t"}, "nats-token"},
		{Worker, []string{"--nats-creds", cert, "--nats-token", "t"}, "nats-creds"},
		{Worker, []string{"--nats-tls-cert", cert}, "nats-tls-cert"},
		{Gateway, []string{"--nats-tls-ca", "/nonexistent/ca.pem"}, "nats-tls-ca"},
		{Walletd, []string{"--stream-replicas", "3"}, "stream-replicas"},
		{Gateway, []string{"--publish-batch-min", "200", "--publish-batch-max", "100"}, "publish-batch-min"},
		{Worker, []string{"--heartbeat", "5s", "--member-ttl", "8s"}, "member-ttl"},
	}
	for _, tc := range cases {
		_, err := Load(tc.p, tc.args, env(nil))
		var ce *Error
		if !errors.As(err, &ce) || ce.Setting != tc.setting {
			t.Errorf("%s %v: want an error naming %s, got %v", tc.p, tc.args, tc.setting, err)
			continue
		}
		if !strings.Contains(err.Error(), "--"+tc.setting) {
			t.Errorf("%s %v: message %q does not name --%s", tc.p, tc.args, err, tc.setting)
		}
	}
}

func TestUnknownFlagsAndArguments(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--no-such-setting=1"},
		{"--batch-size=10"}, // a worker's setting
		{"serve"},
	} {
		if _, err := Load(Gateway, args, env(nil)); err == nil || !strings.HasPrefix(err.Error(), "invalid configuration: ") {
			t.Errorf("%v: got %v", args, err)
		}
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-help"}} {
		if _, err := Load(Worker, args, env(nil)); !errors.Is(err, ErrHelp) {
			t.Errorf("%v: got %v, want ErrHelp", args, err)
		}
	}
}

// TestSecretsAreNeverPrinted is not parallel: it sets an environment
// variable to prove --help does not read it.
func TestSecretsAreNeverPrinted(t *testing.T) {
	const (
		password = "hunter2-password"
		token    = "nats-token-value"
		dbPass   = "db-pass-value"
	)
	authHash := gateway.HashToken("api-token-value", gateway.ScopeWrite)
	for _, p := range []Program{Walletd, Gateway, Worker} {
		vars := env(map[string]string{
			"WALLET_NATS_USER":     "wallet",
			"WALLET_NATS_PASSWORD": password,
			"WALLET_DB":            "postgres://app:" + dbPass + "@db:5432/wallet",
		})
		c, err := Load(p, nil, vars)
		if err != nil {
			t.Fatal(err)
		}
		if c.NATS.Password != password {
			t.Fatalf("password not loaded")
		}
		s := c.String()
		for _, secret := range []string{password, dbPass} {
			if strings.Contains(s, secret) {
				t.Errorf("%s: String() shows a secret: %s", p, s)
			}
		}
		if !strings.Contains(s, "nats-password=<redacted>") || !strings.Contains(s, "nats-token=<unset>") {
			t.Errorf("%s: String() should mark secrets: %s", p, s)
		}

		c, err = Load(p, []string{"--nats-token", token}, env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(c.String(), token) {
			t.Errorf("%s: String() shows the NATS token", p)
		}
		if p != Worker {
			c, err = Load(p, []string{"--auth-tokens", authHash}, env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(c.String(), authHash[7:20]) {
				t.Errorf("%s: String() shows the auth token hashes", p)
			}
		}

		// --help is built from defaults only: the environment never leaks in.
		t.Setenv("WALLET_NATS_PASSWORD", password)
		u := Usage(p)
		if strings.Contains(u, password) {
			t.Errorf("%s: --help shows the password", p)
		}
		for _, s := range Settings(p) {
			if !strings.Contains(u, "--"+s.Name+"\n") && !strings.Contains(u, "--"+s.Name+",") {
				t.Errorf("%s: --help does not list --%s", p, s.Name)
			}
			if !strings.Contains(u, s.Env) {
				t.Errorf("%s: --help does not list %s", p, s.Env)
			}
			if s.Default != "" && !strings.Contains(u, "default "+s.Default) {
				t.Errorf("%s: --help does not show %s's default", p, s.Name)
			}
		}
	}
	// A plain token pasted into --auth-tokens by mistake is not echoed.
	_, err := Load(Gateway, []string{"--auth-tokens", "plain-secret-token"}, env(nil))
	if err == nil || strings.Contains(err.Error(), "plain-secret-token") {
		t.Errorf("bad auth token error: %v", err)
	}
	// Nor is a database password in a rejected URL.
	_, err = Load(Gateway, []string{"--db", "postgres://u:" + dbPass + "@h:5432/"}, env(nil))
	if err == nil || strings.Contains(err.Error(), dbPass) {
		t.Errorf("bad db error: %v", err)
	}
}

func TestSettingsPerProgram(t *testing.T) {
	t.Parallel()
	names := func(p Program) []string {
		var out []string
		for _, s := range Settings(p) {
			out = append(out, s.Name)
		}
		return out
	}
	for _, tc := range []struct {
		p         Program
		has, lack []string
	}{
		{Walletd, []string{"port", "nats-listen", "nats-store-dir", "nats-sync", "create-db", "batch-size", "auth-tokens"}, []string{"metrics-port"}},
		{Gateway, []string{"port", "auth-tokens", "max-wait", "partitions", "nats-url", "metrics-port"}, []string{"batch-size", "nats-listen"}},
		{Worker, []string{"metrics-port", "batch-size", "pinned-ttl", "nats-url"}, []string{"port", "auth-tokens"}},
		{Migrate, []string{"db", "db-retry-count", "log-level", "create-db"}, []string{"nats-url", "port"}},
	} {
		got := names(tc.p)
		for _, n := range tc.has {
			if !slices.Contains(got, n) {
				t.Errorf("%s lacks %s", tc.p, n)
			}
		}
		for _, n := range tc.lack {
			if slices.Contains(got, n) {
				t.Errorf("%s has %s", tc.p, n)
			}
		}
	}
}

func TestRetryWait(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		base time.Duration
		n    int
		want time.Duration
	}{
		{2 * time.Second, 1, 2 * time.Second},
		{2 * time.Second, 2, 4 * time.Second},
		{2 * time.Second, 4, 16 * time.Second},
		{2 * time.Second, 5, 30 * time.Second},
		{2 * time.Second, 50, 30 * time.Second},
		{time.Minute, 3, time.Minute},
		{10 * time.Millisecond, 3, 40 * time.Millisecond},
	} {
		if got := RetryWait(tc.base, tc.n); got != tc.want {
			t.Errorf("RetryWait(%s, %d) = %s, want %s", tc.base, tc.n, got, tc.want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	if got := RedactURL("postgres://u:pw@h:5432/db?sslmode=disable"); got != "postgres://u:xxxxx@h:5432/db?sslmode=disable" {
		t.Errorf("got %s", got)
	}
	if got := RedactURL(DefaultDB); got != DefaultDB {
		t.Errorf("got %s", got)
	}
}

// TestOperationsDocListsEverySetting keeps docs/operations.md's table in
// step with the code.
func TestOperationsDocListsEverySetting(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range AllSettings() {
		row := "| `--" + s.Name + "`"
		if !strings.Contains(string(doc), row) || !strings.Contains(string(doc), "`"+s.Env+"`") {
			t.Errorf("docs/operations.md has no row for --%s / %s", s.Name, s.Env)
		}
	}
}

// TestCredentialsInURLsAreRedacted: a password or token anywhere in a URL
// - its user info, or a query parameter such as ?password= - never reaches
// the logged configuration or an error message, for --db and --nats-url
// alike.
func TestCredentialsInURLsAreRedacted(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"postgres://u@h/db?sslmode=disable&password=hunter2":        "postgres://u@h/db?password=xxxxx&sslmode=disable",
		"postgres://u@h/db?sslpassword=hunter2":                     "postgres://u@h/db?sslpassword=xxxxx",
		"postgres://u:hunter2@h/db?sslmode=disable":                 "postgres://u:xxxxx@h/db?sslmode=disable",
		"nats://u:hunter2@h:4222":                                   "nats://u:xxxxx@h:4222",
		"nats://hunter2@h:4222":                                     "nats://xxxxx@h:4222",
		"wss://h:443/?token=hunter2":                                "wss://h:443/?token=xxxxx",
		"nats://h:4222, nats://u:hunter2@g:4222":                    "nats://h:4222,nats://u:xxxxx@g:4222",
		"postgres://postgres@127.0.0.1:5432/wallet?sslmode=disable": "postgres://postgres@127.0.0.1:5432/wallet?sslmode=disable",
	} {
		if got := RedactURLs(raw); got != want {
			t.Errorf("RedactURLs(%q) = %q, want %q", raw, got, want)
		}
	}
	env := map[string]string{
		"WALLET_DB":       "postgres://u@h/db?password=hunter2",
		"WALLET_NATS_URL": "nats://u:hunter2@h:4222,nats://hunter2@g:4222",
		"WALLET_HOST":     "127.0.0.1",
	}
	for _, p := range []Program{Walletd, Gateway, Worker} {
		c, err := Load(p, nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			t.Fatal(err)
		}
		if s := c.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "nats-url=nats://u:xxxxx@h:4222,nats://xxxxx@g:4222") {
			t.Errorf("%s: String() = %s", p, s)
		}
	}
	_, err := Load(Gateway, []string{"--nats-url", "nats://u:hunter2@h:4222,http://hunter2@x"}, func(string) (string, bool) { return "", false })
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error for a bad --nats-url: %v", err)
	}
}

// TestDebugAddrDefaultsToLoopback: pprof shows a process's internals, so a
// --debug-addr without a host binds loopback; another interface must be
// named.
func TestDebugAddrDefaultsToLoopback(t *testing.T) {
	t.Parallel()
	none := env(nil)
	for in, want := range map[string]string{":6060": "127.0.0.1:6060", "127.0.0.1:6060": "127.0.0.1:6060", "0.0.0.0:6060": "0.0.0.0:6060", "[::1]:6060": "[::1]:6060"} {
		c, err := Load(Gateway, []string{"--debug-addr", in}, none)
		if err != nil {
			t.Fatal(err)
		}
		if c.DebugAddr != want {
			t.Errorf("--debug-addr %s: %s, want %s", in, c.DebugAddr, want)
		}
	}
}

// TestNoAuthBeyondLoopbackIsRefused: without --auth-tokens every request
// passes, so a gateway listening beyond loopback refuses to start unless
// --insecure-no-auth says so; on loopback (walletd's default) it starts.
func TestNoAuthBeyondLoopbackIsRefused(t *testing.T) {
	t.Parallel()
	none := func(string) (string, bool) { return "", false }
	token := "--auth-tokens=" + gateway.HashToken("t", gateway.ScopeWrite)
	for _, tc := range []struct {
		p    Program
		args []string
		ok   bool
	}{
		{Gateway, nil, false},
		{Gateway, []string{"--host", "0.0.0.0"}, false},
		{Gateway, []string{"--host", "10.1.2.3"}, false},
		{Gateway, []string{"--insecure-no-auth"}, true},
		{Gateway, []string{token}, true},
		{Gateway, []string{"--host", "127.0.0.1"}, true},
		{Gateway, []string{"--host", "localhost"}, true},
		{Gateway, []string{"--host", "::1"}, true},
		{Walletd, nil, true},
		{Walletd, []string{"--host", ""}, false},
		{Walletd, []string{"--host", "0.0.0.0", "--insecure-no-auth"}, true},
		{Worker, nil, true},
	} {
		_, err := Load(tc.p, tc.args, none)
		if tc.ok && err != nil {
			t.Errorf("%s %v: %v", tc.p, tc.args, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "auth-tokens") || !strings.Contains(err.Error(), "--insecure-no-auth")) {
			t.Errorf("%s %v: %v, want a refusal naming --auth-tokens and --insecure-no-auth", tc.p, tc.args, err)
		}
	}
}
