// Package natsbus is the wallet's JetStream plumbing: the streams and
// consumers and their idempotent set-up, the subjects and the partition
// transform, the versioned wire envelope for requests and results, the
// dead-letter format, the pending-request lookup the gateway uses, the
// worker's Consumer (membership, partition pulls, decoded batches, outcome
// publishing, acks, dead letters and the purge), and an embedded JetStream
// server for single-process mode.
//
// It imports only transfer from the project; the worker and the gateway build
// on it, and the binaries wire it together.
package natsbus
