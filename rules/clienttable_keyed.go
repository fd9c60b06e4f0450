package rules

import (
	"hash/maphash"
	"net/netip"
)

// TableKey is a 128-bit key of a ClientTable (UpdateKey): a client's key
// as ClientTable.Key returns it, or a keyed hash of something else a
// caller counts by (a client and host name, an API key), which the
// caller makes with a maphash.Seed of its own so that nobody can choose
// values that collide.
type TableKey struct{ Hi, Lo uint64 }

// Key returns the key Update gives client ip: the address for IPv4
// (IPv4-mapped IPv6 folded to IPv4), the table's IPv6 prefix for IPv6.
// ip must be valid.
func (c *ClientTable[S]) Key(ip netip.Addr) TableKey {
	k := clientKeyOf(ip.Unmap().WithZone(""), c.v6bits)
	return TableKey{Hi: k.hi, Lo: k.lo}
}

// UpdateKey is Update for a key made by the caller: the state of k, with
// the same bound, eviction and locking. Keys from Key and from a keyed
// hash share the table, so a hash is the only way a caller mixes them.
func (c *ClientTable[S]) UpdateKey(k TableKey, f func(s *S, fresh bool) bool) bool {
	ck := clientKey{hi: k.Hi, lo: k.Lo}
	h := c.t.hash(ck)
	sh := c.t.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, fresh := c.t.acquire(sh, ck, h)
	return f(&sh.slots[i].state, fresh)
}

// HashKey returns a TableKey for the pair (k, s), such as a client's
// key and a host name, from two 64-bit maphash sums of s under seeds a
// and b mixed with k: keyed, so a client cannot choose values that
// collide, and 128 bits, so two values collide by chance about never. A
// zero k gives the key of s alone. It allocates nothing.
func HashKey(a, b maphash.Seed, k TableKey, s string) TableKey {
	return TableKey{Hi: maphash.String(a, s) ^ mix64(k.Hi), Lo: maphash.String(b, s) ^ mix64(k.Lo)}
}

// mix64 is splitmix64's finaliser: a bijection that spreads every bit
// of x over the result, so that keys differing in a few bits do not
// cancel a difference of the hashes. mix64(0) is 0.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
