package worker

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors are transient (a connection, a timeout, a leader election, an
// outage: retried with backoff, as long as it takes) or permanent (the
// message or request itself can never succeed: retrying it would stop its
// partition for good). Only errors known to be permanent are; anything
// else is retried.

// permanentPublish reports a publish that no retry of the same message can
// make succeed: too large for the server or the stream, or otherwise
// refused as a bad request. A refused expectation on the outcome subject
// is not one of these (see alreadyPublished).
func permanentPublish(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) ||
		errors.Is(err, nats.ErrHeadersNotSupported) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 400 is the server's verdict on the message; 503 and the like
		// are about the stream's state (no leader, store failing).
		return apiErr.Code == 400 && !alreadyPublished(err)
	}
	return false
}

// permanentStore reports an ApplyBatch error that the same requests would
// meet again: PostgreSQL refused the data (class 22, data exception) or a
// constraint (class 23). A unique violation is the exception: it is how a
// concurrent batch deciding the same id first shows, and the next attempt
// replays it.
func permanentStore(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) != 5 {
		return false
	}
	if pgErr.Code == "23505" {
		return false
	}
	class := pgErr.Code[:2]
	return class == "22" || class == "23"
}
