package postgres

import (
	"errors"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// Errors of connecting that waiting cannot cure. Open and CreateDatabase
// return errors that match them with errors.Is, keeping the server's own
// message.
var (
	// ErrNoDatabase: the database named in the URL does not exist.
	ErrNoDatabase = errors.New("database does not exist")
	// ErrAuth: the server refused the credentials.
	ErrAuth = errors.New("authentication failed")
)

// Postgres error codes the store reacts to.
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeDuplicateDatabase    = "42P04"
	codeInvalidCatalog       = "3D000"
	codeInvalidPassword      = "28P01"
	codeInvalidAuth          = "28000"
)

// kindError is a driver error marked with the sentinel error that names
// its kind (ErrNoDatabase, ErrAuth, transfer.ErrRefused). Its message is
// the driver's.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// classifyConnect marks the connection errors that waiting cannot cure.
func classifyConnect(err error) error {
	switch {
	case isCode(err, codeInvalidCatalog):
		return &kindError{kind: ErrNoDatabase, err: err}
	case isCode(err, codeInvalidPassword), isCode(err, codeInvalidAuth):
		return &kindError{kind: ErrAuth, err: err}
	}
	return err
}

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
