// Package postgres is the wallet's store: it applies batches of requests to
// PostgreSQL in one transaction each, serves the reads, runs the migrations,
// and is the only place that knows the driver's error codes.
package postgres
