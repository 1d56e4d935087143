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
//
// # Cumulative acks
//
// The partition consumers ack cumulatively (AckAll): an ack of stream
// sequence s settles every message of the partition up to s, wherever it
// was delivered, and so does a term. Batch.Ack acks the batch's newest
// message once its requests are applied and their outcomes published. That
// settles no message nobody applied or dead-lettered, for these reasons.
//
//   - The batch itself. Each of its requests is applied, or was refused by
//     the store and dead-lettered; each poison message was dead-lettered.
//     None is settled before the ack: dead-lettering stores a copy and does
//     not terminate (a term would settle the older requests of the batch
//     before they are applied), and a partition holds one batch at a time.
//   - Older messages held elsewhere. A batch is handed out only when no
//     message outside it can be pending. After a takeover, a pin change or
//     a gap in the delivery sequence, partition.awaitForeign holds the
//     batch until the consumer's ack-pending count is no more than the
//     batch's distinct messages above the ack floor: every pending message
//     is then in the batch. (Above the floor every delivered message is
//     pending and at or below it none is; a copy its earlier holder has
//     acked since is below the floor and not counted, or it would stand in
//     for an older message still held elsewhere.) After that check the
//     partition's deliveries all come to this pull, numbered without a gap
//     and under one pin: a new message is newer than everything delivered
//     before it, and a redelivery is a copy of a message this pull already
//     received. A delivery to anyone else shows as a gap or a new pin in
//     the next batch, which is then checked again.
//   - A redelivered copy. Applying it again replays the stored decision.
//     If another worker holds a copy of a message this batch applied, the
//     ack settles it there too, which is right: it was applied here.
//   - A hand-back. awaitForeign and the release path nak only messages
//     they never processed; a nak settles nothing, so the message stays
//     pending and the next batch's check waits for it. A nak that comes
//     after a cumulative ack covered the message is ignored by the server,
//     and by the above that message was applied by the batch acked.
//   - Refused requests and poison. Their dead letters are stored before
//     the batch is acked; a crash in between redelivers them, and their
//     dead letters are stored again under the same message id (the stream
//     drops the duplicate).
//
// An ack that is lost, or that the server ignores because a later delivery
// of the partition was acked already (its delivery floor), leaves the batch
// pending: it is redelivered and replays.
//
// The requests stream keeps acked messages (limits retention). The owner of
// partition 0 purges it below the lowest sequence every partition has
// acked, in one operation (Consumer.commonFloor).
package natsbus
