// Package worker applies the requests stream to the ledger: for each
// partition it owns it pulls a batch, decodes it, dead-letters poison,
// applies the rest with the store's ApplyBatch in one transaction, publishes
// every outcome and only then acks.
//
// Partitions are spread over the live workers, which find each other
// through heartbeats in a NATS KV bucket; JetStream's pinned priority group
// makes sure only one of them receives a partition's messages at a time.
// Correctness does not rest on that exclusivity: the store applies each id
// once whatever is delivered twice. Exclusivity and the consumer's ack
// window (MaxAckPending equal to the batch size) keep each account's
// requests in acceptance order, and a worker that takes over a partition
// waits for the messages still held by its previous owner before it
// applies anything newer.
package worker
