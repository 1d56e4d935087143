package postgres

import (
	"errors"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// Postgres error codes the store reacts to.
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

// retryable reports whether a failed batch transaction can simply be run
// again: nothing it did was committed, and another attempt may succeed.
// A unique violation means a concurrent batch decided one of our ids first;
// the next attempt sees its row and replays it.
func retryable(err error) bool {
	if errors.Is(err, errDecisionChanged) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeSerializationFailure, codeDeadlockDetected, codeUniqueViolation:
			return true
		}
		// Class 08 (connection exception) and 57P (operator intervention:
		// admin shutdown, crash recovery) are outages, not bad input.
		return len(pgErr.Code) == 5 && (pgErr.Code[:2] == "08" || pgErr.Code[:3] == "57P")
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err) || isConnClosed(err)
}

func isConnClosed(err error) bool {
	var connErr *pgconn.ConnectError
	return errors.As(err, &connErr) || errors.Is(err, net.ErrClosed)
}

func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}
