// Package worker applies the requests stream to the ledger: it takes the
// batches of decoded requests its consumer (natsbus.Consumer) hands out for
// the partitions it owns, merges batches of several partitions, applies
// them with the store's ApplyBatch in one transaction, has every outcome
// published and only then acks. It also sweeps due holds. It speaks
// transfer types only, through the Consumer and Store interfaces it
// declares; Run is its whole lifecycle, and cancelling its context is the
// soft stop.
//
// Partitions are spread over the live workers by the consumer, which keeps
// the membership; JetStream's pinned priority group makes sure only one
// worker receives a partition's messages at a time. Correctness does not
// rest on that exclusivity: the store applies each id once whatever is
// delivered twice. Exclusivity and the consumer's ack window (MaxAckPending
// equal to the batch size) keep each account's requests in acceptance
// order, and a worker that takes over a partition waits for the messages
// still held by its previous owner before it applies anything newer.
package worker
