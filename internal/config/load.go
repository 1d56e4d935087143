package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ErrHelp is returned by Load when the arguments ask for --help; the caller
// prints Usage and exits successfully.
var ErrHelp = errors.New("help requested")

var errEmpty = errors.New("must not be empty")

// Error is an invalid setting. Its message is one line naming the flag and
// environment variable, and the rejected value unless the setting is secret.
type Error struct {
	// Setting is the canonical name of the setting at fault.
	Setting string
	// Source is where the value came from: "flag --x", "env WALLET_X", or
	// empty for a check that involves the final values of several settings.
	Source string
	// Value is the rejected text; empty for secrets.
	Value string
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration: ")
	if e.Source != "" {
		b.WriteString(e.Source)
	} else {
		fmt.Fprintf(&b, "--%s (%s)", e.Setting, EnvName(e.Setting))
	}
	if e.Value != "" {
		fmt.Fprintf(&b, " %q", e.Value)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// LookupEnv is os.LookupEnv's shape, so tests can pass a map.
type LookupEnv func(key string) (string, bool)

// Load builds program p's configuration from its defaults, the environment
// (lookup, usually os.LookupEnv) and args (os.Args[1:]), in increasing order
// of precedence. An empty environment variable counts as unset. It returns
// ErrHelp for -h/--help and an *Error for any invalid setting.
func Load(p Program, args []string, lookup LookupEnv) (*Config, error) {
	c := Defaults(p)
	entries := bind(&c, p)

	fs := flag.NewFlagSet(string(p), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	canonical := map[string]string{}
	var failed *Error
	for _, e := range entries {
		names := append([]string{e.Name}, e.Aliases...)
		for _, n := range names {
			canonical[n] = e.Name
			fs.Var(&recorder{entry: e, flagName: n, failed: &failed}, n, e.Usage)
		}
	}
	if err := fs.Parse(args); err != nil {
		switch {
		case errors.Is(err, flag.ErrHelp):
			return nil, ErrHelp
		case failed != nil:
			return nil, failed
		default:
			// The flag package's own messages ("flag provided but not
			// defined: -x") are one line and name the flag.
			return nil, fmt.Errorf("invalid configuration: %w", err)
		}
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("invalid configuration: unexpected argument %q (settings are flags: --name=value)", fs.Arg(0))
	}

	// given holds the settings a flag set; a flag takes precedence over
	// the environment, which adds the settings it sets below.
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[canonical[f.Name]] = true })
	if lookup == nil {
		lookup = os.LookupEnv
	}
	for _, e := range entries {
		if given[e.Name] {
			continue
		}
		v, ok := lookup(e.Env)
		if !ok || v == "" {
			continue
		}
		if err := e.value.Set(v); err != nil {
			return nil, newError(e, "env "+e.Env, v, err)
		}
		given[e.Name] = true
	}
	c.given = given
	if err := c.validate(); err != nil {
		return nil, err
	}
	c.link()
	return &c, nil
}

func newError(e entry, source, value string, err error) *Error {
	if e.Secret {
		value = ""
	}
	switch e.Name {
	case "db":
		value = RedactURL(value)
	case "nats-url":
		value = RedactURLs(value)
	}
	return &Error{Setting: e.Name, Source: source, Value: value, Err: err}
}

// recorder wraps a setting's value so a parse failure is reported with the
// setting's name and without a secret's text (the flag package's own error
// would quote the value).
type recorder struct {
	entry    entry
	flagName string
	failed   **Error
}

func (r *recorder) Set(s string) error {
	if err := r.entry.value.Set(s); err != nil {
		*r.failed = newError(r.entry, "flag --"+r.flagName, s, err)
		return err
	}
	return nil
}

func (r *recorder) String() string {
	if r == nil || r.entry.value == nil {
		return ""
	}
	if r.entry.Secret {
		return ""
	}
	return r.entry.value.String()
}

func (r *recorder) IsBoolFlag() bool {
	b, ok := r.entry.value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// validate checks what involves more than one setting, or the file system.
func (c *Config) validate() error {
	bad := func(name, format string, args ...any) error {
		return &Error{Setting: name, Err: fmt.Errorf(format, args...)}
	}
	p := c.Program
	if p == Walletd || p == Gateway || p == Worker {
		n := c.NATS
		switch {
		case n.Password != "" && n.User == "":
			return bad("nats-password", "is set but --nats-user is not")
		case n.User != "" && n.Password == "":
			return bad("nats-user", "is set but --nats-password is not")
		case n.Token != "" && n.User != "":
			return bad("nats-token", "cannot be combined with --nats-user")
		case n.Creds != "" && (n.User != "" || n.Token != ""):
			return bad("nats-creds", "cannot be combined with --nats-user or --nats-token")
		case (n.TLSCert == "") != (n.TLSKey == ""):
			return bad("nats-tls-cert", "must be set together with --nats-tls-key")
		}
		for _, f := range []struct{ name, path string }{
			{"nats-creds", n.Creds}, {"nats-tls-ca", n.TLSCA}, {"nats-tls-cert", n.TLSCert}, {"nats-tls-key", n.TLSKey},
		} {
			if f.path == "" {
				continue
			}
			if _, err := os.Stat(f.path); err != nil {
				return bad(f.name, "cannot read %s: %v", f.path, errors.Unwrap(err))
			}
		}
	}
	if p == Walletd || p == Worker {
		if c.Consumer.AckWait > c.Consumer.PinnedTTL {
			return bad("ack-wait", "%s must not exceed --pinned-ttl (%s): a redelivery must not reach another worker while the pin holds", c.Consumer.AckWait, c.Consumer.PinnedTTL)
		}
	}
	if (p == Walletd || p == Worker) && c.Consumer.MemberTTL < 2*c.Consumer.Heartbeat {
		return bad("member-ttl", "%s must be at least two --heartbeat (%s): one late heartbeat must not end a membership", c.Consumer.MemberTTL, 2*c.Consumer.Heartbeat)
	}
	if (p == Walletd || p == Gateway) && c.Publish.MinMessages > c.Publish.MaxMessages {
		return bad("publish-batch-min", "%d must not exceed --publish-batch-max (%d)", c.Publish.MinMessages, c.Publish.MaxMessages)
	}
	if (p == Walletd || p == Gateway) && len(c.Gateway.Tokens) == 0 && !c.InsecureNoAuth && !IsLoopbackHost(c.Host) {
		// Without tokens every request passes: anyone who reaches the port
		// can move money. Beyond loopback that must be a decision.
		where := "every interface"
		if c.Host != "" {
			where = strconv.Quote(c.Host)
		}
		return bad("auth-tokens", "is empty and the API would listen on %s (--host): anyone who reaches it could move money; set --auth-tokens, listen on loopback (--host 127.0.0.1), or pass --insecure-no-auth to serve without authentication on purpose", where)
	}
	if p == Walletd && c.EmbeddedNATS() && c.Stream.Replicas != 1 {
		return bad("stream-replicas", "must be 1 with the embedded single-node NATS server (got %d)", c.Stream.Replicas)
	}
	return nil
}

// Usage returns program p's --help text: every setting with its
// environment variable and default. Secrets show no default, and values from
// the environment are never shown.
func Usage(p Program) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s [flags]\n\n", p)
	b.WriteString("Every flag can also be set with its environment variable; a flag wins over the\n")
	b.WriteString("environment, the environment over the default. Flags take -name or --name.\n\n")
	for _, s := range Settings(p) {
		b.WriteString("  --")
		b.WriteString(s.Name)
		for _, a := range s.Aliases {
			fmt.Fprintf(&b, ", -%s", a)
		}
		b.WriteString("\n        ")
		b.WriteString(s.Usage)
		fmt.Fprintf(&b, "\n        env %s", s.Env)
		switch {
		case s.Secret:
			b.WriteString(" (secret)")
		case s.Default != "":
			fmt.Fprintf(&b, ", default %s", s.Default)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
