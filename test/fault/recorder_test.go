package fault

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
)

// record is what the clients saw of one request id.
type record struct {
	Op *op
	// FirstSentAt is when the first submission began: JetStream cannot
	// have stored the id before.
	FirstSentAt time.Time
	// Accepted: the service said it stored the request (202, 200/201 or a
	// 422 outcome for a resubmission, or a PubAck).
	Accepted   bool
	AcceptedAt time.Time
	AcceptedBy string
	// Seq is the requests stream's sequence from a PubAck (0 if the
	// request was only ever accepted over HTTP).
	Seq uint64
	// Refused: the gateway answered a 4xx that means "not stored".
	Refused     bool
	RefusedWith string
	// Answers counts the answers by kind ("http 202", "nats puback", ...).
	Answers map[string]int
	// Unsettled: the client gave up before any definite answer.
	Unsettled bool
	// TargetUnknown: the gateway answered a post, void or reversal with
	// 422 hold_not_found, transfer_not_found or transfer_not_reversible,
	// which says nothing was stored unless an earlier attempt was.
	TargetUnknown bool
	// Twin is the conflicting request sent under the id, if any.
	Twin *twinRecord
}

// twinRecord is what the clients saw of the conflicting request they sent
// under an accepted id: the same id with another amount, over HTTP and
// then over NATS.
type twinRecord struct {
	Op *op
	// HTTPStatus and HTTPCode are the gateway's final answer (0 if the
	// client gave up); HTTPDoneAt is when it came.
	HTTPStatus int
	HTTPCode   string
	HTTPDoneAt time.Time
	// NATSAcked: the NATS twin got a PubAck, at NATSAckAt, saying
	// NATSDuplicate; NATSFailed counts the attempts before it that failed
	// (each may have been stored all the same).
	NATSAcked     bool
	NATSDuplicate bool
	NATSAckAt     time.Time
	NATSFailed    int
}

// recorder keeps every id the load sent and what became of it as far as
// the clients know. The book checker uses it only to know which ids were
// accepted and what each request was; outcomes are read from the service.
type recorder struct {
	mu       sync.Mutex
	records  map[uuid.UUID]*record
	order    []uuid.UUID
	problems []string // answers that break the API's contract
	// fiveXX counts 5xx answers other than 503.
	fiveXX int
	// unavailable counts 503 answers (expected during outages).
	unavailable int
}

func newRecorder() *recorder {
	return &recorder{records: map[uuid.UUID]*record{}}
}

// sent registers an op before its first submission.
func (r *recorder) sent(o *op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.records[o.ID]; ok {
		return
	}
	r.records[o.ID] = &record{Op: o, Answers: map[string]int{}, FirstSentAt: time.Now()}
	r.order = append(r.order, o.ID)
}

// twin updates what the clients saw of the conflicting request under id.
func (r *recorder) twin(id uuid.UUID, twin *op, update func(*twinRecord)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.records[id]
	if rec == nil {
		return
	}
	if rec.Twin == nil {
		rec.Twin = &twinRecord{Op: twin}
	}
	update(rec.Twin)
}

// answer notes one answer for id.
func (r *recorder) answer(id uuid.UUID, what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec := r.records[id]; rec != nil {
		rec.Answers[what]++
	}
}

// accepted marks id as stored by the service. seq is the PubAck's stream
// sequence, or 0 for an HTTP answer.
func (r *recorder) accepted(id uuid.UUID, by string, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.records[id]
	if rec == nil {
		return
	}
	rec.Answers[by]++
	if !rec.Accepted {
		rec.Accepted, rec.AcceptedAt, rec.AcceptedBy = true, time.Now(), by
	}
	if seq != 0 && rec.Seq == 0 {
		rec.Seq = seq
	}
}

// refused marks id as refused by the gateway without being stored.
func (r *recorder) refused(id uuid.UUID, status int, code string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.records[id]
	if rec == nil {
		return
	}
	what := fmt.Sprintf("http %d %s", status, code)
	rec.Answers[what]++
	if !rec.Refused {
		rec.Refused, rec.RefusedWith = true, what
	}
}

// targetUnknown marks id as answered with a 422 that may or may not mean
// it was stored.
func (r *recorder) targetUnknown(id uuid.UUID, what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec := r.records[id]; rec != nil {
		rec.Answers[what]++
		rec.TargetUnknown = true
	}
}

// acceptedAt reports whether the service accepted id, and when.
func (r *recorder) acceptedAt(id uuid.UUID) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec := r.records[id]; rec != nil && rec.Accepted {
		return rec.AcceptedAt, true
	}
	return time.Time{}, false
}

// unsettled marks id as given up on without a definite answer.
func (r *recorder) unsettled(id uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec := r.records[id]; rec != nil && !rec.Accepted && !rec.Refused && !rec.TargetUnknown {
		rec.Unsettled = true
	}
}

// problem notes an answer that breaks the API's contract.
func (r *recorder) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) < 1000 {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	}
}

func (r *recorder) count5xx(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if status == 503 {
		r.unavailable++
	} else {
		r.fiveXX++
	}
}

// snapshot copies the records in the order they were first sent.
func (r *recorder) snapshot() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]record, 0, len(r.order))
	for _, id := range r.order {
		rec := *r.records[id]
		if rec.Twin != nil {
			twin := *rec.Twin
			rec.Twin = &twin
		}
		rec.Answers = make(map[string]int, len(r.records[id].Answers))
		for k, v := range r.records[id].Answers {
			rec.Answers[k] = v
		}
		out = append(out, rec)
	}
	return out
}

// acceptedIDs lists the ids the service said it stored.
func (r *recorder) acceptedIDs() []uuid.UUID {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uuid.UUID
	for _, id := range r.order {
		if r.records[id].Accepted {
			out = append(out, id)
		}
	}
	return out
}

// summary counts records by state, for the log.
func (r *recorder) summary() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{"sent": len(r.order), "5xx (not 503)": r.fiveXX, "503": r.unavailable}
	for _, rec := range r.records {
		switch {
		case rec.Accepted:
			out["accepted"]++
		case rec.Refused:
			out["refused by gateway"]++
		case rec.TargetUnknown:
			out["target unknown"]++
		case rec.Unsettled:
			out["unsettled"]++
		default:
			out["no definite answer"]++
		}
	}
	return out
}

func (r *recorder) contractProblems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]string(nil), r.problems...)
	sort.Strings(out)
	return out
}
