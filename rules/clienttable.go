package rules

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
)

// ClientTable is the per-client state of a middleware that keeps its own
// (the flood limiter's token buckets), in the table the jails use: at
// most about a configured number of clients, sharded, evicting with
// CLOCK (see clientTable), keyed as jails key clients: an IPv4 address,
// or an IPv6 prefix of the configured length, IPv4-mapped IPv6 folded to
// IPv4. S should be a small value type; it lives inline in the table.
// Safe for concurrent use.
type ClientTable[S any] struct {
	v6bits int
	t      *clientTable[S]
}

// NewClientTable returns an empty table for at most about capacity
// clients (at least 1) that keys an IPv6 client by its ipv6Prefix-bit
// prefix (32 to 128).
func NewClientTable[S any](capacity, ipv6Prefix int) (*ClientTable[S], error) {
	switch {
	case capacity < 1:
		return nil, fmt.Errorf("client table: capacity %d must be at least 1", capacity)
	case ipv6Prefix < 32 || ipv6Prefix > 128:
		return nil, fmt.Errorf("client table: IPv6 prefix /%d must be /32 to /128", ipv6Prefix)
	}
	return &ClientTable[S]{v6bits: ipv6Prefix, t: newClientTable[S](capacity, 0)}, nil
}

// Update calls f with a pointer to client ip's state, under the lock of
// ip's shard, and returns what f returns. fresh reports that the client
// was not tracked (new, or evicted since): its state is the zero S. f
// must be quick and must not use the table. ip must be valid. Update
// allocates nothing for a tracked client, nor once the client's shard is
// full.
func (c *ClientTable[S]) Update(ip netip.Addr, f func(s *S, fresh bool) bool) bool {
	k := clientKeyOf(ip.Unmap().WithZone(""), c.v6bits)
	h := c.t.hash(k)
	sh := c.t.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, fresh := c.t.acquire(sh, k, h)
	return f(&sh.slots[i].state, fresh)
}

// Len returns how many clients c tracks.
func (c *ClientTable[S]) Len() int { return c.t.len() }

// clientKeyOf returns the client key of ip (unmapped, valid): the
// address for IPv4, its v6bits-bit prefix for IPv6.
func clientKeyOf(ip netip.Addr, v6bits int) clientKey {
	hi, lo := addrWords(ip)
	if ip.Is6() {
		hi, lo = mask128(hi, lo, v6bits)
	}
	return clientKey{hi, lo}
}

// clientKey is a client: an IPv4 address or a masked IPv6 prefix, in the
// 16-byte form as two big-endian words.
type clientKey struct{ hi, lo uint64 }

// clientTable is the bounded per-client state of a jail: at most about
// capacity clients, each with a state S and lanes int64 values (a
// counting jail's offence times). It is sharded by a keyed hash of the
// client, each shard a mutex, an open-addressing index into a slot array
// that grows to the shard's share of capacity and is then reused, and a
// CLOCK hand for eviction.
//
// Hand-written rather than golang-lru/v2's Cache: that costs a list
// element and a map entry per client (184 bytes per client measured for
// this state, against 74 here) behind one mutex per cache, and its
// evictions free what its inserts allocate; this costs a 32-byte slot,
// the lanes and 8-16 bytes of index per client, allocates nothing once a
// shard is full, and spreads lock contention over up to 64 shards. The
// flood limiters keep their token buckets here too (ClientTable), for the
// same reasons measured again there: BenchmarkFloodTable in middleware,
// quoted on middleware.RateBuckets.
//
// CLOCK approximates LRU: a client's reference bit is set when it is seen
// again, and eviction skips (and clears) set bits, so a flood of new
// addresses evicts the oldest one-time clients first and a client seen
// twice survives a full sweep.
type clientTable[S any] struct {
	shift  uint // h >> shift picks the shard
	seed   maphash.Seed
	lanes  int
	shards []clientShard[S]
}

type clientShard[S any] struct {
	mu    sync.Mutex
	max   int             // clients this shard holds at most
	index []int32         // power-of-two length; slot+1, 0: empty; at most half full
	slots []clientSlot[S] // grows to max, then slots are reused
	lanes []int64         // lanes per slot, by slot
	refs  []uint64        // CLOCK reference bits, by slot
	hand  int             // next slot the CLOCK looks at
	tally atomic.Uint64   // the owner's counter, kept per shard (a jail's offences)
	_     [64]byte        // keeps shards' mutexes on different cache lines
}

type clientSlot[S any] struct {
	key   clientKey
	state S
}

const (
	maxClientShards = 64
	minShardClients = 1024
)

func newClientTable[S any](capacity, lanes int) *clientTable[S] {
	n := 1 // shards of at least minShardClients clients
	for n < maxClientShards && capacity/(2*n) >= minShardClients {
		n *= 2
	}
	t := &clientTable[S]{shift: 64, seed: maphash.MakeSeed(), lanes: lanes, shards: make([]clientShard[S], n)}
	for m := n; m > 1; m /= 2 {
		t.shift--
	}
	per := (capacity + n - 1) / n
	for i := range t.shards {
		t.shards[i].max = per
	}
	return t
}

func (t *clientTable[S]) hash(k clientKey) uint64 { return hash128(t.seed, k.hi, k.lo) }

// shard returns the shard of hash h. Shifting a uint64 by 64 gives 0.
func (t *clientTable[S]) shard(h uint64) *clientShard[S] { return &t.shards[h>>t.shift] }

// acquire returns the slot of client k (hash h) in s, whose mutex the
// caller holds, and whether it is new: a new client gets a zero state and
// zero lanes, in a fresh slot while the shard has room, else in the slot
// of the client the CLOCK evicts.
func (t *clientTable[S]) acquire(s *clientShard[S], k clientKey, h uint64) (int, bool) {
	if len(s.index) > 0 {
		m := uint64(len(s.index) - 1)
		for p := h & m; ; p = (p + 1) & m {
			v := s.index[p]
			if v == 0 {
				break
			}
			if i := int(v - 1); s.slots[i].key == k {
				s.refs[i/64] |= 1 << (i % 64)
				return i, false
			}
		}
	}
	var i int
	if len(s.slots) < s.max {
		i = len(s.slots)
		if len(s.slots) == cap(s.slots) {
			// Grow by doubling, but never past max: no slack once full.
			n := min(max(2*len(s.slots), 16), s.max)
			s.slots = append(make([]clientSlot[S], 0, n), s.slots...)
			s.lanes = append(make([]int64, 0, n*t.lanes), s.lanes...)
		}
		s.slots = append(s.slots, clientSlot[S]{key: k})
		s.lanes = append(s.lanes, make([]int64, t.lanes)...)
		if i%64 == 0 {
			s.refs = append(s.refs, 0)
		}
		if 2*len(s.slots) > len(s.index) {
			t.reindex(s)
			return i, true // reindex placed the new slot
		}
	} else {
		i = t.evict(s)
		s.slots[i] = clientSlot[S]{key: k}
		clear(s.lanes[i*t.lanes : (i+1)*t.lanes])
	}
	m := uint64(len(s.index) - 1)
	p := h & m
	for s.index[p] != 0 {
		p = (p + 1) & m
	}
	s.index[p] = int32(i + 1)
	return i, true
}

// reindex rebuilds s.index at twice the size needed for its slots.
func (t *clientTable[S]) reindex(s *clientShard[S]) {
	size := 16
	for size < 2*len(s.slots) {
		size *= 2
	}
	if size < 2*s.max {
		size *= 2 // room for the next growth steps at once
	}
	s.index = make([]int32, size)
	m := uint64(size - 1)
	for i := range s.slots {
		p := t.hash(s.slots[i].key) & m
		for s.index[p] != 0 {
			p = (p + 1) & m
		}
		s.index[p] = int32(i + 1)
	}
}

// evict picks the slot to reuse with the CLOCK and removes its client
// from the index.
func (t *clientTable[S]) evict(s *clientShard[S]) int {
	for {
		i := s.hand
		if s.hand++; s.hand == len(s.slots) {
			s.hand = 0
		}
		if bit := uint64(1) << (i % 64); s.refs[i/64]&bit != 0 {
			s.refs[i/64] &^= bit
			continue
		}
		t.unindex(s, i)
		return i
	}
}

// unindex removes slot i from s.index by backward-shift deletion (Knuth's
// algorithm R), which keeps every probe sequence intact without
// tombstones.
func (t *clientTable[S]) unindex(s *clientShard[S], i int) {
	m := uint64(len(s.index) - 1)
	p := t.hash(s.slots[i].key) & m
	for s.index[p] != int32(i+1) {
		p = (p + 1) & m
	}
	for q := (p + 1) & m; s.index[q] != 0; q = (q + 1) & m {
		home := t.hash(s.slots[s.index[q]-1].key) & m
		// The entry at q may fill the hole at p unless its home lies
		// cyclically in (p, q].
		if p <= q && (home <= p || home > q) || p > q && home <= p && home > q {
			s.index[p] = s.index[q]
			p = q
		}
	}
	s.index[p] = 0
}

// len returns how many clients t tracks.
func (t *clientTable[S]) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.slots)
		s.mu.Unlock()
	}
	return n
}
