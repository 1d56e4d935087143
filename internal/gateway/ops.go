package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/natsbus"
)

// The ops endpoints serve the console's overview and dead letters. The
// overview's rates come from the streams' sequence numbers: the requests
// stream's last sequence counts every request ever stored (from the
// gateway or straight from a producer), the results stream's every outcome
// published (applied or rejected; conflict notices, rare, count too). The
// gateway samples both whenever the overview is read, at most once per
// opsSnapshotTTL, and the rate between two samples is their difference
// over the time between them. So the history starts when someone first
// looks, costs nothing while nobody does, and needs no index on the
// database's hot tables.
const (
	// opsSnapshotTTL is how long one reading of the pipeline answers every
	// overview: a dozen open consoles cost NATS what one does.
	opsSnapshotTTL = time.Second
	// opsHistory is how far back the overview's rates go.
	opsHistory = 10 * time.Minute
)

// opsState is the last pipeline reading and the samples of the counters.
type opsState struct {
	mu      sync.Mutex
	last    natsbus.Pipeline
	lastAt  time.Time
	samples []opsSample // oldest first, within opsHistory
}

type opsSample struct {
	at                time.Time
	accepted, decided uint64
}

// pipeline returns a reading at most opsSnapshotTTL old, reading and
// sampling anew when needed. Callers wait for one reading at a time.
func (s *opsState) pipeline(ctx context.Context, ops Ops) (natsbus.Pipeline, []opsSample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.lastAt.IsZero() || now.Sub(s.lastAt) >= opsSnapshotTTL {
		p, err := ops.Pipeline(ctx)
		if err != nil {
			return natsbus.Pipeline{}, nil, err
		}
		s.last, s.lastAt = p, now
		s.samples = append(s.samples, opsSample{at: p.At, accepted: p.Accepted, decided: p.Decided})
		cut := 0
		for cut < len(s.samples) && p.At.Sub(s.samples[cut].at) > opsHistory {
			cut++
		}
		s.samples = append(s.samples[:0], s.samples[cut:]...)
	}
	return s.last, append([]opsSample(nil), s.samples...), nil
}

type rateBody struct {
	At       time.Time `json:"at"`
	Seconds  float64   `json:"seconds"`
	Accepted float64   `json:"accepted_per_second"`
	Decided  float64   `json:"decided_per_second"`
	Requests uint64    `json:"accepted"`
	Outcomes uint64    `json:"decided"`
}

// rates turns consecutive samples into per-second rates. An interval over
// which a counter went down (a stream was recreated) is left out.
func rates(samples []opsSample) []rateBody {
	out := []rateBody{}
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		dt := b.at.Sub(a.at).Seconds()
		if dt <= 0 || b.accepted < a.accepted || b.decided < a.decided {
			continue
		}
		out = append(out, rateBody{
			At: b.at, Seconds: dt,
			Accepted: float64(b.accepted-a.accepted) / dt, Decided: float64(b.decided-a.decided) / dt,
			Requests: b.accepted - a.accepted, Outcomes: b.decided - a.decided,
		})
	}
	return out
}

type partitionBody struct {
	Partition       int        `json:"partition"`
	Consumer        string     `json:"consumer"`
	Exists          bool       `json:"exists"`
	Pending         uint64     `json:"pending"`
	Waiting         uint64     `json:"waiting"`
	AckPending      int        `json:"ack_pending"`
	Redelivered     int        `json:"redelivered"`
	AckFloor        uint64     `json:"ack_floor"`
	Owner           *string    `json:"owner"`
	Pinned          bool       `json:"pinned"`
	PinnedAt        *time.Time `json:"pinned_at"`
	OldestPendingAt *time.Time `json:"oldest_pending_at"`
}

type workerBody struct {
	ID         string    `json:"id"`
	LastSeen   time.Time `json:"last_seen"`
	Partitions []int     `json:"partitions"`
}

type deadLetterCountsBody struct {
	Total    uint64            `json:"total"`
	ByReason map[string]uint64 `json:"by_reason"`
	Partial  bool              `json:"partial"`
	LastAt   *time.Time        `json:"last_at"`
}

type overviewBody struct {
	At                    time.Time            `json:"at"`
	Accepted              uint64               `json:"accepted"`
	Decided               uint64               `json:"decided"`
	Stored                uint64               `json:"stored"`
	Pending               uint64               `json:"pending"`
	OldestPendingAt       *time.Time           `json:"oldest_pending_at"`
	OldestPendingAgeSecs  *float64             `json:"oldest_pending_age_seconds"`
	Rates                 []rateBody           `json:"rates"`
	Partitions            []partitionBody      `json:"partitions"`
	Workers               []workerBody         `json:"workers"`
	DeadLetters           deadLetterCountsBody `json:"dead_letters"`
	SampleIntervalSeconds float64              `json:"sample_interval_seconds"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// getOverview serves GET /v1/ops/overview.
func (g *Gateway) getOverview(c *fiber.Ctx) error {
	if g.ops == nil {
		return unavailable("This gateway cannot read the pipeline's state.")
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), dependencyTimeout)
	defer cancel()
	p, samples, err := g.opsState.pipeline(ctx, g.ops)
	if err != nil {
		g.log.Warn("read pipeline failed", zap.String("trace_id", traceID(c)), zap.Error(err))
		return unavailable("The pipeline's state cannot be read right now.")
	}
	b := overviewBody{
		At: p.At, Accepted: p.Accepted, Decided: p.Decided, Stored: p.Stored,
		Rates:                 rates(samples),
		Partitions:            make([]partitionBody, len(p.Partitions)),
		Workers:               make([]workerBody, len(p.Members)),
		SampleIntervalSeconds: opsSnapshotTTL.Seconds(),
		DeadLetters: deadLetterCountsBody{
			Total: p.DeadLetters.Total, Partial: p.DeadLetters.Partial, LastAt: optTime(p.DeadLetters.Last),
		},
	}
	workerOf := make(map[string]int, len(p.Members))
	for i, m := range p.Members {
		b.Workers[i] = workerBody{ID: m.ID, LastSeen: m.LastSeen.UTC(), Partitions: []int{}}
		workerOf[m.ID] = i
	}
	var oldest time.Time
	for i, ps := range p.Partitions {
		pb := partitionBody{
			Partition: ps.Partition, Consumer: natsbus.ConsumerName(ps.Partition), Exists: ps.Exists,
			Pending: ps.Pending(), Waiting: ps.Waiting, AckPending: ps.AckPending, Redelivered: ps.Redelivered,
			AckFloor: ps.AckFloor, Pinned: ps.Pinned, PinnedAt: optTime(ps.PinnedAt),
			OldestPendingAt: optTime(ps.OldestPendingAt),
		}
		if ps.Owner != "" {
			owner := ps.Owner
			pb.Owner = &owner
			if w, ok := workerOf[owner]; ok {
				b.Workers[w].Partitions = append(b.Workers[w].Partitions, ps.Partition)
			}
		}
		b.Pending += pb.Pending
		if !ps.OldestPendingAt.IsZero() && (oldest.IsZero() || ps.OldestPendingAt.Before(oldest)) {
			oldest = ps.OldestPendingAt
		}
		b.Partitions[i] = pb
	}
	if !oldest.IsZero() {
		b.OldestPendingAt = optTime(oldest)
		age := max(0, p.At.Sub(oldest).Seconds())
		b.OldestPendingAgeSecs = &age
	}
	if p.DeadLetters.ByReason != nil {
		b.DeadLetters.ByReason = make(map[string]uint64, len(p.DeadLetters.ByReason))
		for r, n := range p.DeadLetters.ByReason {
			b.DeadLetters.ByReason[string(r)] = n
		}
	}
	return c.JSON(b)
}

type deadLetterBody struct {
	Seq             uint64     `json:"seq"`
	StoredAt        time.Time  `json:"stored_at"`
	Reason          string     `json:"reason"`
	Detail          string     `json:"detail"`
	OriginalSubject string     `json:"original_subject"`
	OriginalSeq     uint64     `json:"original_seq"`
	OriginalMsgID   *string    `json:"original_msg_id"`
	TraceID         *string    `json:"trace_id"`
	AcceptedAt      *time.Time `json:"accepted_at"`
	OriginalSize    int        `json:"original_size"`
	OriginalSHA256  string     `json:"original_sha256"`
	Truncated       bool       `json:"truncated"`
	// Body and BodyBase64 appear only on a single dead letter.
	Body       *string `json:"body,omitempty"`
	BodyBase64 *string `json:"body_base64,omitempty"`
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func newDeadLetterBody(d natsbus.DeadLetter, withBody bool) deadLetterBody {
	b := deadLetterBody{
		Seq: d.Seq, StoredAt: d.StoredAt.UTC(), Reason: string(d.Reason), Detail: d.Detail,
		OriginalSubject: d.OriginalSubject, OriginalSeq: d.OriginalSeq,
		OriginalMsgID: optString(d.OriginalMsgID), TraceID: optString(d.TraceID),
		AcceptedAt: optTime(d.AcceptedAt), OriginalSize: d.OriginalSize, OriginalSHA256: d.OriginalSHA256,
		Truncated: d.Truncated,
	}
	if withBody {
		// The body is whatever a producer sent: the text form replaces
		// invalid UTF-8, the base64 form keeps every byte.
		text := string(d.Body)
		if !utf8.ValidString(text) {
			text = strings.ToValidUTF8(text, "\uFFFD")
		}
		enc := base64.StdEncoding.EncodeToString(d.Body)
		b.Body, b.BodyBase64 = &text, &enc
	}
	return b
}

// listDeadLetters serves GET /v1/ops/dead-letters: newest first, paged
// with the usual limit and cursor (at most natsbus.MaxDeadLetterPage a
// page).
func (g *Gateway) listDeadLetters(c *fiber.Ctx) error {
	if g.ops == nil {
		return unavailable("This gateway cannot read the dead letters.")
	}
	limit, cursor, p := pageParams(c)
	if p != nil {
		return p
	}
	var before uint64
	if cursor != "" {
		n, err := strconv.ParseUint(cursor, 10, 64)
		if err != nil || n == 0 {
			return fieldProblem(CodeBadCursor, "cursor", "The cursor is not one this service issued.")
		}
		before = n
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), dependencyTimeout)
	defer cancel()
	dls, next, err := g.ops.DeadLetters(ctx, before, min(limit, natsbus.MaxDeadLetterPage))
	if err != nil {
		g.log.Warn("list dead letters failed", zap.String("trace_id", traceID(c)), zap.Error(err))
		return unavailable("The dead letters cannot be read right now.")
	}
	data := make([]deadLetterBody, len(dls))
	for i, d := range dls {
		data[i] = newDeadLetterBody(d, false)
	}
	nextCursor := ""
	if next != 0 {
		nextCursor = strconv.FormatUint(next, 10)
	}
	return c.JSON(newPage(data, nextCursor))
}

// getDeadLetter serves GET /v1/ops/dead-letters/{seq}, body included.
func (g *Gateway) getDeadLetter(c *fiber.Ctx) error {
	if g.ops == nil {
		return unavailable("This gateway cannot read the dead letters.")
	}
	seq, err := strconv.ParseUint(c.Params("seq"), 10, 64)
	if err != nil || seq == 0 {
		return fieldProblem(CodeInvalidField, "seq", "The seq in the path must be a positive integer.")
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), dependencyTimeout)
	defer cancel()
	d, err := g.ops.DeadLetter(ctx, seq)
	if errors.Is(err, natsbus.ErrDeadLetterNotFound) {
		return problem(CodeNotFound, "The dead-letter stream holds no message with this sequence.")
	}
	if err != nil {
		g.log.Warn("read dead letter failed", zap.String("trace_id", traceID(c)), zap.Error(err))
		return unavailable("The dead letter cannot be read right now.")
	}
	return c.JSON(newDeadLetterBody(d, true))
}
