package natsbus

import (
	"slices"

	"github.com/nats-io/nats-server/v2/server"
)

// MembersBucket is the key-value bucket in which workers keep their
// heartbeats; its stream is "KV_" + MembersBucket.
const MembersBucket = "wallet_workers"

// Role is what one kind of NATS client of the wallet may do. The server
// enforces it as per-user subject permissions; docs/operations.md has the
// table and the reasons.
type Role string

// The three roles. Each binary connects with the role it needs and no more.
const (
	// RoleProducer submits requests and reads their outcomes: another
	// service publishing straight to NATS.
	RoleProducer Role = "producer"
	// RoleGateway is the HTTP gateway: a producer that also creates the
	// streams when they are missing and looks requests up.
	RoleGateway Role = "gateway"
	// RoleWorker consumes the partitions, publishes outcomes and dead
	// letters, keeps the membership bucket and manages the streams and
	// consumers.
	RoleWorker Role = "worker"
)

// Roles lists every role, in the order documentation shows them.
var Roles = []Role{RoleProducer, RoleGateway, RoleWorker}

// UserName is the NATS user name of role in the shipped configurations.
func (r Role) UserName() string { return "wallet-" + string(r) }

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// The JetStream API subjects below are the ones nats.go's jetstream package
// sends for the calls each binary makes (see the nats-server documentation
// on JetStream API permissions). Every JetStream API call is a request, so
// each role also subscribes to its reply inbox.
const jsAPI = "$JS.API."

// InboxPrefix is the reply-inbox prefix a client of role r connects with
// (nats.CustomInboxPrefix). Producers keep the default, _INBOX, which any
// NATS client uses; the gateway and the workers have inboxes of their own,
// so that a producer, which may read _INBOX.>, cannot read their replies:
// the requests delivered to the workers' pulls, and the gateway's lookups.
func (r Role) InboxPrefix() string {
	if r == RoleProducer {
		return "_INBOX"
	}
	return "_INBOX_wallet_" + string(r)
}

func api(verb string, streams ...string) []string {
	out := make([]string, len(streams))
	for i, s := range streams {
		out[i] = jsAPI + verb + "." + s
	}
	return out
}

// directGet allows direct gets by sequence or filter (the bare subject) and
// last-by-subject gets (the subject with the filter appended).
func directGet(streams ...string) []string {
	var out []string
	for _, s := range streams {
		out = append(out, jsAPI+"DIRECT.GET."+s, jsAPI+"DIRECT.GET."+s+".>")
	}
	return out
}

// Permissions returns the subjects a client in role r may publish to and
// subscribe to; nil for an unknown role. Anything not listed is refused,
// and in particular: only workers publish outcomes, dead letters and
// membership heartbeats, only the workers and the gateway (for its
// console) read dead letters, and no role may delete a stream or a
// consumer.
func (r Role) Permissions() *server.Permissions {
	membersStream := "KV_" + MembersBucket
	producerPub := slices.Concat(
		[]string{RequestsPrefix + ">", jsAPI + "INFO"},
		api("STREAM.INFO", RequestsStream, ResultsStream),
		directGet(RequestsStream, ResultsStream),
	)
	inbox := r.InboxPrefix() + ".>"
	readResults := []string{ResultsPrefix + ">", inbox}
	var pub, sub []string
	switch r {
	case RoleProducer:
		pub, sub = producerPub, readResults
	case RoleGateway:
		// Creating a missing stream lets the gateway start before any
		// worker; changing an existing one is the workers' job.
		pub = slices.Concat(producerPub,
			api("STREAM.INFO", DeadLetterStream),
			api("STREAM.CREATE", RequestsStream, ResultsStream, DeadLetterStream),
			api("STREAM.MSG.GET", RequestsStream, ResultsStream),
			// The console's reads (inspect.go): the partitions' state,
			// the members' heartbeats and the dead letters, all read-only.
			api("CONSUMER.LIST", RequestsStream),
			api("STREAM.INFO", membersStream),
			directGet(membersStream, DeadLetterStream),
		)
		sub = readResults
	case RoleWorker:
		streams := []string{RequestsStream, ResultsStream, DeadLetterStream, membersStream}
		pub = slices.Concat(
			[]string{ResultsPrefix + ">", DeadLetterPrefix + ">", "$KV." + MembersBucket + ".>", jsAPI + "INFO"},
			api("STREAM.INFO", streams...),
			api("STREAM.CREATE", streams...),
			api("STREAM.UPDATE", streams...),
			// The acked prefix of each partition, and a leaving member's key.
			api("STREAM.PURGE", RequestsStream, membersStream),
			api("CONSUMER.CREATE", RequestsStream+".>"),
			api("CONSUMER.INFO", RequestsStream+".*"),
			api("CONSUMER.MSG.NEXT", RequestsStream+".*"),
			api("CONSUMER.UNPIN", RequestsStream+".*"),
			// Acks, naks, progress and terms of the partition consumers.
			[]string{"$JS.ACK." + RequestsStream + ".>"},
			// Reading an outcome back, to tell its own from a forged one.
			directGet(ResultsStream),
		)
		sub = []string{inbox}
	default:
		return nil
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: sub},
	}
}
