package natsbus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// Bounds on what a dead letter copies from the producer's message, so that
// it can always be stored whatever the producer sent.
const (
	maxCopiedSubject = 512
	maxCopiedMsgID   = 256
	maxDetail        = 512
)

// Why a request was isolated: set aside because of an error that no retry
// can cure, so that the rest of its partition goes on.
const (
	// isolatedStoreRefused: the database refuses the request itself; it is
	// dead-lettered, undecided.
	isolatedStoreRefused = "store_refused"
	// isolatedOutcomeRefused: the request is decided in the database, but
	// its outcome message cannot be stored; readers use the database.
	isolatedOutcomeRefused = "outcome_refused"
	// isolatedDeadLetterRefused: not even a bodiless dead letter could be
	// stored; the poison message is dropped, logged with its size and
	// SHA-256.
	isolatedDeadLetterRefused = "dead_letter_refused"
)

// deadLetterMsg builds the dead letter of m: a bounded prefix of its body,
// the whole body's size and SHA-256, and bounded copies of its subject and
// ids. withBody false leaves the body out.
func deadLetterMsg(d *Delivery, reason Reason, detail string, withBody bool) *nats.Msg {
	m, meta := d.msg, d.meta
	body := m.Data()
	sum := sha256.Sum256(body)
	dl := nats.NewMsg(fmt.Sprintf("%s%s.%d", DeadLetterPrefix, reason, meta.Sequence.Stream))
	if withBody {
		dl.Data = body[:min(len(body), DeadLetterBodyLimit)]
	}
	dl.Header.Set(HeaderMsgID, fmt.Sprintf("dl-%s-%d", meta.Consumer, meta.Sequence.Stream))
	dl.Header.Set(HeaderDLReason, string(reason))
	dl.Header.Set(HeaderDLDetail, bounded(detail, maxDetail))
	dl.Header.Set(HeaderDLOriginalSubject, bounded(m.Subject(), maxCopiedSubject))
	dl.Header.Set(HeaderDLOriginalSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
	dl.Header.Set(HeaderDLAcceptedAt, meta.Timestamp.UTC().Format(time.RFC3339Nano))
	dl.Header.Set(HeaderDLOriginalSize, strconv.Itoa(len(body)))
	dl.Header.Set(HeaderDLOriginalSHA256, hex.EncodeToString(sum[:]))
	if id := m.Headers().Get(HeaderMsgID); id != "" && len(id) <= maxCopiedMsgID && printable(id) {
		dl.Header.Set(HeaderDLOriginalMsgID, id)
	}
	if tid := traceID(m); tid != "" {
		dl.Header.Set(HeaderTraceID, tid)
	}
	return dl
}

// deadLetter copies m's summary to the dead-letter stream, then terminates
// m. The copy is stored before the message is dropped; a redelivery in
// between re-publishes under the same message id. Transient failures are
// retried until the hard stop; a copy the stream refuses is retried once
// without the body, and if that is refused too m is dropped with a log
// line and the isolated metric, rather than stop the partition.
func (c *Consumer) deadLetter(ctx context.Context, log *zap.Logger, d *Delivery, reason Reason, detail string) error {
	m, meta := d.msg, d.meta
	withBody := true
	backoff := newBackoff(50*time.Millisecond, 2*time.Second)
	for {
		dl := deadLetterMsg(d, reason, detail, withBody)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.js.PublishMsg(pctx, dl)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return errAborted
		}
		c.m.publishErrors.Inc()
		if permanentPublish(err) {
			if withBody {
				log.Warn("dead letter refused, storing it without the body", zap.Error(err))
				withBody = false
				continue
			}
			c.isolated(log, isolatedDeadLetterRefused, d, err,
				zap.String("dead_letter_reason", string(reason)), zap.Int("size", len(m.Data())),
				zap.String("sha256", dl.Header.Get(HeaderDLOriginalSHA256)))
			break
		}
		log.Warn("dead-letter publish failed, retrying", zap.Error(err))
		_ = m.InProgress()
		if !backoff.wait(ctx) {
			return errAborted
		}
	}
	c.m.deadLetters.WithLabelValues(string(reason)).Inc()
	log.Warn("dead-lettered poison message",
		zap.String("reason", string(reason)), zap.String("detail", bounded(detail, maxDetail)),
		zap.String("subject", bounded(m.Subject(), maxCopiedSubject)), zap.Uint64("seq", meta.Sequence.Stream),
		zap.Int("size", len(m.Data())), zap.String("trace_id", traceID(m)))
	if err := m.TermWithReason(string(reason)); err != nil {
		// The copy is stored; a redelivery dead-letters it again under
		// the same message id, which the stream drops as a duplicate.
		log.Warn("terminate poison message", zap.Error(err))
	}
	d.settled = true
	return nil
}

// isolated records a request set aside for an error no retry can cure:
// one metric and one log line naming it.
func (c *Consumer) isolated(log *zap.Logger, why string, d *Delivery, err error, fields ...zap.Field) {
	c.m.isolated.WithLabelValues(why).Inc()
	fields = append(fields, zap.String("isolated", why), zap.Error(err),
		zap.String("subject", bounded(d.Subject, maxCopiedSubject)), zap.String("trace_id", d.TraceID),
		zap.Uint64("seq", d.Seq))
	log.Error("request isolated: it cannot succeed on retry, its partition goes on without it", fields...)
}

// bounded cuts s to at most n bytes of valid UTF-8, marking the cut.
func bounded(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// ReasonStoreRefused is the dead-letter reason of a request the database
// refused (see isolatedStoreRefused and Consumer.Refuse).
const ReasonStoreRefused Reason = "store_refused"
