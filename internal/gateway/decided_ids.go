package gateway

import (
	"sync"

	"github.com/google/uuid"
)

// defaultDecidedIDs bounds the decided ids a gateway remembers: 64k ids
// hold about 4 MiB, and a resubmission usually follows its original within
// minutes.
const defaultDecidedIDs = 1 << 16

// decidedIDs remembers, up to a bound, the ids this gateway has seen
// decided in the database, so that a submission reads the database first
// only for an id it knows to be decided. A new id is then published at
// once. An id decided but forgotten (evicted, decided through another
// gateway, or before a restart) is published again: within the stream's
// dedupe window the duplicate is dropped and the gateway answers from the
// database; past it the workers replay the recorded outcome, which a
// waiting client sees. Either way the database applies an id at most once.
type decidedIDs struct {
	mu   sync.Mutex
	ids  map[uuid.UUID]struct{}
	ring []uuid.UUID // insertion order, for eviction
	next int         // the slot the next id takes
}

func newDecidedIDs(n int) *decidedIDs {
	return &decidedIDs{ids: make(map[uuid.UUID]struct{}, n), ring: make([]uuid.UUID, n)}
}

// has reports whether id was seen decided and is still remembered.
func (d *decidedIDs) has(id uuid.UUID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.ids[id]
	return ok
}

// add remembers id, forgetting the oldest one when full.
func (d *decidedIDs) add(id uuid.UUID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.ids[id]; ok {
		return
	}
	if old := d.ring[d.next]; old != uuid.Nil {
		delete(d.ids, old)
	}
	d.ring[d.next] = id
	d.ids[id] = struct{}{}
	d.next = (d.next + 1) % len(d.ring)
}
