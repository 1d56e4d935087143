package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// isPermanent reports an ApplyBatch error that the same requests would
// meet again: PostgreSQL refused the data (class 22, data exception) or a
// constraint (class 23). A unique violation is the exception: it is how a
// concurrent batch deciding the same id first shows, and the next attempt
// replays it. Anything else (an outage, a timeout) is worth retrying.
// ApplyBatch marks such errors with transfer.ErrRefused.
func isPermanent(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) != 5 {
		return false
	}
	if pgErr.Code == codeUniqueViolation {
		return false
	}
	class := pgErr.Code[:2]
	return class == "22" || class == "23"
}
