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
