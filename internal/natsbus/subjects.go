package natsbus

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/transfer"
)

// Stream names and subject prefixes of the message contract (docs/messaging.md).
const (
	RequestsStream   = "WALLET_REQUESTS"
	ResultsStream    = "WALLET_RESULTS"
	DeadLetterStream = "WALLET_DEADLETTER"

	// RequestsPrefix is where producers publish: RequestsPrefix +
	// "<account_id>.<id>".
	RequestsPrefix = "wallet.requests."
	// ResultsPrefix carries outcomes: ResultsPrefix + "<id>".
	ResultsPrefix = "wallet.results."
	// DeadLetterPrefix carries poison messages: DeadLetterPrefix + "<reason>.<stream_seq>".
	DeadLetterPrefix = "wallet.deadletter."

	// ConflictSuffix is appended to a result subject for the notice sent when
	// an id is reused with other fields; the outcome subject itself keeps the
	// real outcome as its last message.
	ConflictSuffix = ".conflict"

	// PriorityGroup is the single priority group of every partition consumer.
	PriorityGroup = "wallet"
)

// Header names used on requests, results and dead letters.
const (
	// HeaderMsgID is JetStream's deduplication header; requests carry their id in it.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderTraceID is an optional trace id (the gateway's X-Trace-Id)
	// carried into the worker's log lines, the outcome and dead letters.
	HeaderTraceID = "Wallet-Trace-Id"
	// HeaderLegacyTraceID is the trace id's name before the rename; a
	// request carrying only it is traced as if it were HeaderTraceID.
	HeaderLegacyTraceID = "Wallet-Request-Id"

	HeaderDLReason          = "Wallet-Dead-Letter-Reason"
	HeaderDLDetail          = "Wallet-Dead-Letter-Detail"
	HeaderDLOriginalSubject = "Wallet-Original-Subject"
	HeaderDLOriginalSeq     = "Wallet-Original-Sequence"
	HeaderDLOriginalMsgID   = "Wallet-Original-Msg-Id"
	HeaderDLAcceptedAt      = "Wallet-Accepted-At"
	// HeaderDLOriginalSize and HeaderDLOriginalSHA256 describe the whole
	// original body; a dead letter carries only its first
	// DeadLetterBodyLimit bytes.
	HeaderDLOriginalSize   = "Wallet-Original-Size"
	HeaderDLOriginalSHA256 = "Wallet-Original-Sha256"
)

// DeadLetterBodyLimit is how much of a poison message's body its dead
// letter keeps. A real request is ~250 bytes, so it is kept whole; a larger
// body is cut, and its size and SHA-256 identify it.
const DeadLetterBodyLimit = 4 << 10

// MaxTraceIDLen bounds the trace id a producer may send.
const MaxTraceIDLen = 128

// ValidTraceID reports whether a trace id header value may be
// copied into logs, outcomes and dead letters: 1 to MaxTraceIDLen printable
// ASCII characters, no spaces. Any other value is dropped, never copied.
func ValidTraceID(id string) bool {
	if id == "" || len(id) > MaxTraceIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// RequestSubject is the subject a producer publishes a request to: the
// account the request debits (for a deposit, the credited account) and the
// request id, both lower-case.
func RequestSubject(account, id uuid.UUID) string {
	return RequestsPrefix + account.String() + "." + id.String()
}

// ResultSubject is where the outcome of request id is published.
func ResultSubject(id uuid.UUID) string {
	return ResultsPrefix + id.String()
}

// ConflictSubject is where a conflicting reuse of id is reported.
func ConflictSubject(id uuid.UUID) string {
	return ResultSubject(id) + ConflictSuffix
}

// PartitionFilter is the consumer filter of partition p.
func PartitionFilter(p int) string {
	return RequestsPrefix + strconv.Itoa(p) + ".>"
}

// ConsumerName is the durable name of partition p's consumer. Two digits
// (three above 99 partitions) keep the names sorted in listings.
func ConsumerName(p int) string {
	return fmt.Sprintf("wallet-p%02d", p)
}

// pendingFilter matches request id's stored subject in any partition.
func pendingFilter(id uuid.UUID) string {
	return RequestsPrefix + "*." + id.String() + ".*"
}

// StoredSubject is a request subject as the stream stores it, after the
// partition transform: wallet.requests.<p>.<id>.<account_id>.
type StoredSubject struct {
	Partition int
	// ID and Account are the raw tokens; ParseStoredSubject checks that they
	// are canonical lower-case uuids.
	ID      uuid.UUID
	Account uuid.UUID
}

// ParseStoredSubject reads a stored request subject. The uuid tokens must be
// in canonical lower-case form, the form RequestSubject writes and the
// pending lookup searches for.
func ParseStoredSubject(subject string) (StoredSubject, error) {
	rest, ok := strings.CutPrefix(subject, RequestsPrefix)
	if !ok {
		return StoredSubject{}, fmt.Errorf("%w: %q", ErrInvalidSubject, subject)
	}
	tokens := strings.Split(rest, ".")
	if len(tokens) != 3 {
		return StoredSubject{}, fmt.Errorf("%w: %q", ErrInvalidSubject, subject)
	}
	p, err := strconv.Atoi(tokens[0])
	if err != nil || p < 0 {
		return StoredSubject{}, fmt.Errorf("%w: partition token of %q", ErrInvalidSubject, subject)
	}
	id, ok := canonicalUUID(tokens[1])
	if !ok {
		return StoredSubject{}, fmt.Errorf("%w: request id token of %q", ErrInvalidSubject, subject)
	}
	account, ok := canonicalUUID(tokens[2])
	if !ok {
		return StoredSubject{}, fmt.Errorf("%w: account token of %q", ErrInvalidSubject, subject)
	}
	return StoredSubject{Partition: p, ID: id, Account: account}, nil
}

// canonicalUUID parses s only when it is a uuid in its 36-character
// lower-case form.
func canonicalUUID(s string) (uuid.UUID, bool) {
	u, ok := transfer.ParseID(s)
	if !ok || u.String() != s {
		return uuid.Nil, false
	}
	return u, true
}

// PartitionOf is the partition the stream files account's requests under:
// the server's partition(n,1) transform, FNV-1a of the account token modulo
// n. Producers never need it; tests and operators use it to find an
// account's consumer.
func PartitionOf(account uuid.UUID, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(account.String()))
	return int(h.Sum32() % uint32(n))
}
