// Package postgres is the wallet's store: it applies batches of requests to
// PostgreSQL in one transaction each, serves the reads, keeps the one cached
// currencies table, runs the migrations and creates the database. It is the
// only place that holds SQL or knows the driver's error codes: callers see
// transfer's types and errors (transfer.ErrNotFound, transfer.ErrRefused,
// ...) and, when connecting, ErrNoDatabase and ErrAuth.
package postgres
