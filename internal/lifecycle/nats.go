package lifecycle

import (
	"context"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/config"
	"github.com/wallet/wallet/internal/natsbus"
)

// NATSOptions turns cfg's NATS settings into client options: credentials,
// TLS, and reconnecting forever once connected (readiness reports the
// outage; the process need not die for it).
func NATSOptions(cfg *config.Config, name string, role natsbus.Role, log *zap.Logger) []nats.Option {
	n := cfg.NATS
	opts := []nats.Option{
		nats.Name(name),
		// The role's own reply inbox, the only one its user may read.
		nats.CustomInboxPrefix(role.InboxPrefix()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		// No reconnect buffer: a publish made while disconnected fails at
		// once instead of being sent after the caller gave up, so the
		// gateway's 503 means "not stored" (the fault suite saw 503'd
		// deposits applied once NATS came back). Every publisher retries.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			// A nil error is our own Close at shutdown, not news.
			if err != nil {
				log.Warn("nats disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			// url.URL.Redacted, behind ConnectedUrlRedacted, would leave a
			// token given as the user name in clear.
			log.Info("nats reconnected", zap.String("url", config.RedactURL(c.ConnectedUrl())))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			fields := []zap.Field{zap.Error(err)}
			if sub != nil {
				fields = append(fields, zap.String("subject", sub.Subject))
			}
			log.Warn("nats error", fields...)
		}),
	}
	switch {
	case n.Creds != "":
		opts = append(opts, nats.UserCredentials(n.Creds))
	case n.User != "":
		opts = append(opts, nats.UserInfo(n.User, n.Password))
	case n.Token != "":
		opts = append(opts, nats.Token(n.Token))
	}
	if n.TLSCA != "" {
		opts = append(opts, nats.RootCAs(n.TLSCA))
	}
	if n.TLSCert != "" {
		opts = append(opts, nats.ClientCert(n.TLSCert, n.TLSKey))
	}
	return opts
}

// ConnectNATS connects to url with cfg's credentials and retries.
func ConnectNATS(ctx context.Context, log *zap.Logger, cfg *config.Config, url, name string, role natsbus.Role) (*nats.Conn, error) {
	log.Info("connecting to nats", zap.String("url", config.RedactURLs(url)), zap.Int("attempts", cfg.NATS.RetryCount))
	opts := NATSOptions(cfg, name, role, log)
	return Retry(ctx, log, "nats", cfg.NATS.RetryCount, cfg.NATS.RetryTimeout, func(ctx context.Context) (*nats.Conn, error) {
		o := slices.Concat(opts, []nats.Option{nats.Timeout(attemptTimeout(cfg.NATS.RetryTimeout))})
		nc, err := nats.Connect(url, o...)
		if err != nil {
			return nil, err
		}
		if ctx.Err() != nil {
			nc.Close()
			return nil, ctx.Err()
		}
		return nc, nil
	})
}
