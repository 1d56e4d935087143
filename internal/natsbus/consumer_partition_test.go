package natsbus

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// A waiting partition hands its batch back only when the consumer names a
// pinned client that is not the one its messages came under: that client
// is the one the older messages are delivered to.
func TestPinnedElsewhere(t *testing.T) {
	t.Parallel()
	groups := func(gs ...jetstream.PriorityGroupState) *jetstream.ConsumerInfo {
		return &jetstream.ConsumerInfo{PriorityGroups: gs}
	}
	for _, tc := range []struct {
		name string
		info *jetstream.ConsumerInfo
		ours string
		want bool
	}{
		{"pinned to us", groups(jetstream.PriorityGroupState{Group: PriorityGroup, PinnedClientID: "a"}), "a", false},
		{"pinned to another", groups(jetstream.PriorityGroupState{Group: PriorityGroup, PinnedClientID: "b"}), "a", true},
		{"nobody pinned", groups(jetstream.PriorityGroupState{Group: PriorityGroup}), "a", false},
		{"no group state", groups(), "a", false},
		{"another group", groups(jetstream.PriorityGroupState{Group: "other", PinnedClientID: "b"}), "a", false},
		{"we never saw a pin", groups(jetstream.PriorityGroupState{Group: PriorityGroup, PinnedClientID: "b"}), "", false},
	} {
		if got := pinnedElsewhere(tc.info, tc.ours); got != tc.want {
			t.Errorf("%s: pinnedElsewhere = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// seqMsg is a delivery of stream sequence stream; nothing else of it is
// read.
type seqMsg struct {
	jetstream.Msg
	stream uint64
}

func (m seqMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: m.stream}}, nil
}

// TestUniqueSeqsCountsOnlyPending: a batch's messages are compared with
// the consumer's ack-pending count. A second copy of a message is one
// pending message, and a copy at or below the ack floor (its earlier
// holder acked it since) is not pending at all: counted, it would stand in
// for an older message still held elsewhere.
func TestUniqueSeqsCountsOnlyPending(t *testing.T) {
	t.Parallel()
	batch := []jetstream.Msg{seqMsg{stream: 3}, seqMsg{stream: 7}, seqMsg{stream: 7}, seqMsg{stream: 9}}
	for _, c := range []struct {
		floor uint64
		want  int
	}{{0, 3}, {2, 3}, {3, 2}, {5, 2}, {7, 1}, {9, 0}} {
		if got := uniqueSeqs(batch, c.floor); got != c.want {
			t.Errorf("ack floor %d: %d pending in the batch, want %d", c.floor, got, c.want)
		}
	}
}
