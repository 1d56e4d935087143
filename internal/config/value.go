package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wallet/wallet/internal/gateway"
)

// The types below implement flag.Value for the settings. Their Set methods
// return errors that never repeat the rejected text for secret settings;
// Load adds the setting's name and, for non-secrets, the value.

type stringValue struct{ p *string }

func (v stringValue) Set(s string) error { *v.p = s; return nil }
func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

type intValue struct {
	p        *int
	min, max int
}

func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return errors.New("not a whole number")
	}
	if n < v.min || n > v.max {
		return fmt.Errorf("must be between %d and %d", v.min, v.max)
	}
	*v.p = n
	return nil
}

func (v intValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

type int64Value struct {
	p        *int64
	min, max int64
}

func (v int64Value) Set(s string) error {
	n, err := parseSize(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	if n < v.min || n > v.max {
		return fmt.Errorf("must be between %d and %d", v.min, v.max)
	}
	*v.p = n
	return nil
}

func (v int64Value) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatInt(*v.p, 10)
}

// parseSize reads a whole number with an optional binary suffix (KiB, MiB,
// GiB, TiB), so a byte limit can be written the way operators think of it.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("not a whole number (suffixes KiB, MiB, GiB, TiB are allowed)")
	}
	if n > 0 && n > (1<<63-1)/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}

type durationValue struct {
	p        *time.Duration
	min, max time.Duration
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return errors.New("not a duration (e.g. 500ms, 2s, 1m)")
	}
	if d < v.min || d > v.max {
		return fmt.Errorf("must be between %s and %s", v.min, v.max)
	}
	*v.p = d
	return nil
}

func (v durationValue) String() string {
	if v.p == nil {
		return "0s"
	}
	return v.p.String()
}

type boolValue struct{ p *bool }

func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return errors.New("must be true or false")
	}
	*v.p = b
	return nil
}

func (v boolValue) String() string {
	if v.p == nil {
		return "false"
	}
	return strconv.FormatBool(*v.p)
}

// IsBoolFlag lets a bare --create-db mean true, as with the flag package's
// own booleans.
func (v boolValue) IsBoolFlag() bool { return true }

type enumValue struct {
	p       *string
	choices []string
}

func (v enumValue) Set(s string) error {
	s = strings.ToLower(strings.TrimSpace(s))
	for _, c := range v.choices {
		if s == c {
			*v.p = s
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(v.choices, "|"))
}

func (v enumValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

// addrValue holds a host:port listen address; an empty value is allowed
// when the setting is optional. With loopback set, an address without a
// host binds 127.0.0.1 instead of every interface.
type addrValue struct {
	p        *string
	optional bool
	loopback bool
}

func (v addrValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "" && v.optional {
		*v.p = ""
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("must be host:port")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return errors.New("port must be between 0 and 65535")
	}
	if host == "" && v.loopback {
		s = net.JoinHostPort("127.0.0.1", port)
	}
	*v.p = s
	return nil
}

func (v addrValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

// urlListValue holds a comma-separated list of NATS server URLs. Empty is
// allowed only where the program can run an embedded server instead.
type urlListValue struct {
	p        *string
	optional bool
}

func (v urlListValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		if !v.optional {
			return errors.New("must not be empty")
		}
		*v.p = ""
		return nil
	}
	for _, u := range strings.Split(s, ",") {
		u = strings.TrimSpace(u)
		scheme, rest, ok := strings.Cut(u, "://")
		if !ok || rest == "" {
			return errors.New("must be a comma-separated list of nats://host:port URLs")
		}
		switch scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("scheme %q is not one of nats, tls, ws, wss", scheme)
		}
	}
	*v.p = s
	return nil
}

func (v urlListValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

// tokensValue holds the gateway's bearer tokens as hashes. Set never puts
// the rejected text into its error: an operator who pasted a plain token by
// mistake must not find it in a log.
type tokensValue struct{ p *[]gateway.Token }

func (v tokensValue) Set(s string) error {
	tokens, err := gateway.ParseTokens(s)
	if err != nil {
		return err
	}
	*v.p = tokens
	return nil
}

func (v tokensValue) String() string {
	if v.p == nil {
		return ""
	}
	parts := make([]string, len(*v.p))
	for i, t := range *v.p {
		parts[i] = t.String()
	}
	return strings.Join(parts, ",")
}

// byteSizeValue is an int64Value for a size held in an int.
type byteSizeValue struct {
	p        *int
	min, max int
}

func (v byteSizeValue) Set(s string) error {
	n, err := parseSize(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	if n < int64(v.min) || n > int64(v.max) {
		return fmt.Errorf("must be between %d and %d", v.min, v.max)
	}
	*v.p = int(n)
	return nil
}

func (v byteSizeValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

// otlpEndpointValue holds the OTLP/HTTP collector URL traces go to; empty
// turns tracing off. The URL never carries credentials: it is logged, and
// a collector's token goes in OTEL_EXPORTER_OTLP_HEADERS, which the
// exporter reads itself.
type otlpEndpointValue struct{ p *string }

func (v otlpEndpointValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		*v.p = ""
		return nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must be an http:// or https:// URL, e.g. http://otel-collector:4318")
	case u.Host == "":
		return errors.New("has no host")
	case u.User != nil:
		return errors.New("must not carry credentials (set OTEL_EXPORTER_OTLP_HEADERS instead)")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("must not have a query or a fragment")
	}
	*v.p = s
	return nil
}

func (v otlpEndpointValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}
