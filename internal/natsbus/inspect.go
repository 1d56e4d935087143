package natsbus

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// This file reads the pipeline's state for operators: the partitions'
// backlogs, who serves them, and the dead letters. It only reads, with the
// gateway role's permissions (roles.go).

// PartitionOwner is the member that serves partition p when the live
// members are view, sorted: partitions are dealt round-robin over the
// sorted ids. Workers apply it to their own view; readers apply it to
// theirs and may briefly disagree with the workers while members change.
func PartitionOwner(view []string, p int) string {
	if len(view) == 0 {
		return ""
	}
	return view[p%len(view)]
}

// Member is a worker with a live heartbeat in the membership bucket.
type Member struct {
	ID       string
	LastSeen time.Time
}

// PartitionState is one partition consumer's backlog and who serves it.
type PartitionState struct {
	Partition int
	// Exists is false until a worker has created the partition's consumer;
	// the other fields are then zero.
	Exists bool
	// Waiting are stored requests not yet delivered; AckPending are
	// delivered to a worker and not yet acknowledged. Their sum is what
	// the partition still has to apply.
	Waiting    uint64
	AckPending int
	// Redelivered counts messages delivered more than once and unacked.
	Redelivered int
	// AckFloor is the stream sequence up to which everything is acked.
	AckFloor uint64
	// Pinned is true when a worker holds the partition's pin, since PinnedAt.
	Pinned   bool
	PinnedAt time.Time
	// Owner is the member the membership assigns the partition to (empty
	// without members).
	Owner string
	// OldestPendingAt is when the oldest unacknowledged request was
	// stored; zero when none is pending.
	OldestPendingAt time.Time
}

// Pending is what the partition still has to apply.
func (p PartitionState) Pending() uint64 { return p.Waiting + uint64(p.AckPending) }

// DeadLetterCounts summarises the dead-letter stream.
type DeadLetterCounts struct {
	Total uint64
	// ByReason counts the stored dead letters per reason; nil when Partial.
	ByReason map[Reason]uint64
	// Partial is true when the stream holds more than
	// MaxCountedDeadLetters and only Total is given.
	Partial bool
	// Last is when the newest dead letter was stored; zero when none.
	Last time.Time
}

// MaxCountedDeadLetters bounds the dead letters counted by reason: the
// count lists every stored dead letter's subject, which is cheap for the
// few a healthy service has and too costly for a flood.
const MaxCountedDeadLetters = 20_000

// Pipeline is a snapshot of the streams and consumers.
type Pipeline struct {
	At time.Time
	// Accepted is the requests stream's last sequence: every request ever
	// stored. Decided is the results stream's: every outcome and conflict
	// notice ever published. Their changes over time are the rates.
	Accepted uint64
	Decided  uint64
	// Stored is the requests the stream holds now, applied ones included
	// until the workers purge them.
	Stored      uint64
	Partitions  []PartitionState
	Members     []Member
	DeadLetters DeadLetterCounts
}

// ReadPipeline reads the pipeline's state. It needs the streams to exist;
// partitions without a consumer yet are reported with Exists false, and a
// missing membership bucket means no members.
func ReadPipeline(ctx context.Context, js jetstream.JetStream) (Pipeline, error) {
	p := Pipeline{At: time.Now().UTC()}
	requests, err := js.Stream(ctx, RequestsStream)
	if err != nil {
		return p, fmt.Errorf("pipeline: %s: %w", RequestsStream, err)
	}
	info := requests.CachedInfo()
	p.Accepted, p.Stored = info.State.LastSeq, info.State.Msgs
	results, err := js.Stream(ctx, ResultsStream)
	if err != nil {
		return p, fmt.Errorf("pipeline: %s: %w", ResultsStream, err)
	}
	p.Decided = results.CachedInfo().State.LastSeq

	if p.Members, err = readMembers(ctx, js); err != nil {
		return p, err
	}
	view := make([]string, len(p.Members))
	for i, m := range p.Members {
		view[i] = m.ID
	}

	consumers := make(map[string]*jetstream.ConsumerInfo)
	list := requests.ListConsumers(ctx)
	for ci := range list.Info() {
		consumers[ci.Name] = ci
	}
	if err := list.Err(); err != nil {
		return p, fmt.Errorf("pipeline: list consumers: %w", err)
	}
	n := StreamPartitions(info.Config)
	p.Partitions = make([]PartitionState, n)
	for i := range n {
		ps := PartitionState{Partition: i, Owner: PartitionOwner(view, i)}
		if ci, ok := consumers[ConsumerName(i)]; ok {
			ps.Exists = true
			ps.Waiting, ps.AckPending, ps.Redelivered = ci.NumPending, ci.NumAckPending, ci.NumRedelivered
			ps.AckFloor = ci.AckFloor.Stream
			for _, g := range ci.PriorityGroups {
				if g.Group == PriorityGroup && g.PinnedClientID != "" {
					ps.Pinned, ps.PinnedAt = true, g.PinnedTS.UTC()
				}
			}
			if ps.Pending() > 0 {
				if ps.OldestPendingAt, err = oldestAfter(ctx, requests, ps.AckFloor, i); err != nil {
					return p, err
				}
			}
		}
		p.Partitions[i] = ps
	}

	if p.DeadLetters, err = countDeadLetters(ctx, js); err != nil {
		return p, err
	}
	return p, nil
}

// oldestAfter is the storage time of partition p's first request after
// the ack floor: the oldest one not yet acknowledged.
func oldestAfter(ctx context.Context, requests jetstream.Stream, floor uint64, p int) (time.Time, error) {
	m, err := requests.GetMsg(ctx, floor+1, jetstream.WithGetMsgSubject(PartitionFilter(p)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return time.Time{}, nil // acked or purged since the consumer was read
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("pipeline: oldest pending of partition %d: %w", p, err)
	}
	return m.Time.UTC(), nil
}

// readMembers lists the live heartbeats, sorted by id, with the time of
// each one's last heartbeat.
func readMembers(ctx context.Context, js jetstream.JetStream) ([]Member, error) {
	stream, err := js.Stream(ctx, "KV_"+MembersBucket)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil // no worker has started yet
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline: members: %w", err)
	}
	prefix := "$KV." + MembersBucket + "."
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return nil, fmt.Errorf("pipeline: members: %w", err)
	}
	members := make([]Member, 0, len(info.State.Subjects))
	for subject := range info.State.Subjects {
		id, ok := strings.CutPrefix(subject, prefix)
		if !ok {
			continue
		}
		m := Member{ID: id}
		last, err := stream.GetLastMsgForSubject(ctx, subject)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			continue // expired or left since the listing
		case err != nil:
			return nil, fmt.Errorf("pipeline: member %s: %w", id, err)
		}
		m.LastSeen = last.Time.UTC()
		members = append(members, m)
	}
	sort.Slice(members, func(i, j int) bool { return members[i].ID < members[j].ID })
	return members, nil
}

// countDeadLetters counts the stored dead letters by the reason token of
// their subjects (DeadLetterPrefix + "<reason>.<seq>").
func countDeadLetters(ctx context.Context, js jetstream.JetStream) (DeadLetterCounts, error) {
	var c DeadLetterCounts
	stream, err := js.Stream(ctx, DeadLetterStream)
	if err != nil {
		return c, fmt.Errorf("pipeline: %s: %w", DeadLetterStream, err)
	}
	state := stream.CachedInfo().State
	c.Total = state.Msgs
	if state.Msgs > 0 {
		c.Last = state.LastTime.UTC()
	}
	if state.Msgs > MaxCountedDeadLetters {
		c.Partial = true
		return c, nil
	}
	c.ByReason = make(map[Reason]uint64)
	if state.Msgs == 0 {
		return c, nil
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(DeadLetterPrefix+">"))
	if err != nil {
		return c, fmt.Errorf("pipeline: count dead letters: %w", err)
	}
	for subject, n := range info.State.Subjects {
		reason, _ := splitDeadLetterSubject(subject)
		c.ByReason[reason] += n
	}
	return c, nil
}

// splitDeadLetterSubject reads the reason and original sequence tokens of
// a dead letter's subject; a subject of another shape is reason "unknown".
func splitDeadLetterSubject(subject string) (Reason, uint64) {
	rest, ok := strings.CutPrefix(subject, DeadLetterPrefix)
	if !ok {
		return "unknown", 0
	}
	reason, seq, ok := strings.Cut(rest, ".")
	if !ok || reason == "" {
		return "unknown", 0
	}
	n, _ := strconv.ParseUint(seq, 10, 64)
	return Reason(reason), n
}

// DeadLetter is a stored dead letter as the worker wrote it: the headers
// describe the original message, Body is its first DeadLetterBodyLimit
// bytes (empty when the stream refused even that).
type DeadLetter struct {
	Seq             uint64
	StoredAt        time.Time
	Reason          Reason
	Detail          string
	OriginalSubject string
	OriginalSeq     uint64
	OriginalMsgID   string
	TraceID         string
	AcceptedAt      time.Time
	// OriginalSize and OriginalSHA256 describe the whole original body;
	// Truncated says the body kept is shorter.
	OriginalSize   int
	OriginalSHA256 string
	Truncated      bool
	Body           []byte
}

// ErrDeadLetterNotFound is returned for a sequence the dead-letter stream
// does not hold (never stored, or aged out).
var ErrDeadLetterNotFound = errors.New("natsbus: dead letter not found")

// MaxDeadLetterPage bounds one ListDeadLetters call.
const MaxDeadLetterPage = 200

// ListDeadLetters returns up to limit dead letters stored before sequence
// before (0: from the newest), newest first, and the sequence to pass as
// before for the next page (0 when there is none). Bodies are left out;
// GetDeadLetter reads one whole.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, before uint64, limit int) ([]DeadLetter, uint64, error) {
	limit = max(1, min(limit, MaxDeadLetterPage))
	stream, err := js.Stream(ctx, DeadLetterStream)
	if err != nil {
		return nil, 0, fmt.Errorf("dead letters: %w", err)
	}
	state := stream.CachedInfo().State
	if state.Msgs == 0 {
		return nil, 0, nil
	}
	seq := state.LastSeq
	if before != 0 && before-1 < seq {
		seq = before - 1
	}
	var out []DeadLetter
	// Dead letters leave the stream oldest first (age, size), so gaps are
	// rare; the bound keeps a page's cost fixed whatever happens.
	for tries := 0; seq >= state.FirstSeq && seq > 0 && len(out) < limit && tries < 4*limit; tries++ {
		dl, err := getDeadLetter(ctx, stream, seq)
		if err == nil {
			dl.Body = nil
			out = append(out, dl)
		} else if !errors.Is(err, ErrDeadLetterNotFound) {
			return nil, 0, err
		}
		seq--
	}
	var next uint64
	if seq >= state.FirstSeq && seq > 0 {
		next = seq + 1
	}
	return out, next, nil
}

// GetDeadLetter reads the dead letter stored at seq, body included.
func GetDeadLetter(ctx context.Context, js jetstream.JetStream, seq uint64) (DeadLetter, error) {
	stream, err := js.Stream(ctx, DeadLetterStream)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter: %w", err)
	}
	return getDeadLetter(ctx, stream, seq)
}

func getDeadLetter(ctx context.Context, stream jetstream.Stream, seq uint64) (DeadLetter, error) {
	if seq == 0 {
		return DeadLetter{}, ErrDeadLetterNotFound
	}
	m, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, ErrDeadLetterNotFound
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	subjectReason, subjectSeq := splitDeadLetterSubject(m.Subject)
	h := m.Header
	dl := DeadLetter{
		Seq:             m.Sequence,
		StoredAt:        m.Time.UTC(),
		Reason:          Reason(h.Get(HeaderDLReason)),
		Detail:          h.Get(HeaderDLDetail),
		OriginalSubject: h.Get(HeaderDLOriginalSubject),
		OriginalMsgID:   h.Get(HeaderDLOriginalMsgID),
		TraceID:         h.Get(HeaderTraceID),
		OriginalSHA256:  h.Get(HeaderDLOriginalSHA256),
		Body:            m.Data,
	}
	if dl.Reason == "" {
		dl.Reason = subjectReason
	}
	if dl.OriginalSeq, err = strconv.ParseUint(h.Get(HeaderDLOriginalSeq), 10, 64); err != nil {
		dl.OriginalSeq = subjectSeq
	}
	if t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderDLAcceptedAt)); err == nil {
		dl.AcceptedAt = t.UTC()
	}
	if n, err := strconv.Atoi(h.Get(HeaderDLOriginalSize)); err == nil && n >= 0 {
		dl.OriginalSize = n
	} else {
		dl.OriginalSize = len(m.Data)
	}
	dl.Truncated = dl.OriginalSize > len(m.Data)
	return dl, nil
}
