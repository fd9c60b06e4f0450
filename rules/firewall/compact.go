package firewall

import (
	"encoding/binary"
	"math"
	"net/netip"
	"time"
)

// The Reconciler keeps a copy of the ban list and of the kernel's entries,
// a million each at the ban list's default limit. A netip.Prefix key (32
// bytes, with a pointer to hash) and a time.Time value (24 bytes) make a
// map slot of 56 bytes; pkey and stamp make one of 25.

// pkey is a prefix as a map key: the address's 16 bytes (IPv4 as
// IPv4-mapped) and a byte that holds the length and the family: the
// length for IPv6, 129 plus the length for IPv4.
type pkey [17]byte

// keyOf returns p's key. Every prefix but a zoned one gets back from
// its key as it was: an IPv4-mapped IPv6 prefix stays IPv6, an unmasked
// one unmasked.
func keyOf(p netip.Prefix) pkey {
	var k pkey
	a := p.Addr()
	b := a.As16()
	copy(k[:16], b[:])
	if a.Is4() {
		k[16] = byte(129 + p.Bits())
	} else {
		k[16] = byte(p.Bits())
	}
	return k
}

// prefix returns the prefix k stands for.
func (k pkey) prefix() netip.Prefix {
	if k[16] > 128 {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte(k[12:16])), int(k[16])-129)
	}
	return netip.PrefixFrom(netip.AddrFrom16([16]byte(k[:16])), int(k[16]))
}

// stamp is a point in time as a map value: Unix nanoseconds, in a byte
// array so that a map slot of a pkey and a stamp needs no padding. Zero
// is the zero time.Time; times outside what Unix nanoseconds hold (before
// 1970, after 2262) are clamped.
type stamp [8]byte

var (
	minStamp = time.Unix(0, 1)
	maxStamp = time.Unix(0, math.MaxInt64)
)

func stampOf(t time.Time) stamp {
	var s stamp
	var n int64
	switch {
	case t.IsZero():
		return s
	case t.Before(minStamp):
		n = 1
	case t.After(maxStamp):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	binary.LittleEndian.PutUint64(s[:], uint64(n))
	return s
}

// time returns the time s stands for, in UTC.
func (s stamp) time() time.Time {
	n := int64(binary.LittleEndian.Uint64(s[:]))
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// keyed is a prefix and a time, as a slice holds them: 25 bytes.
type keyed struct {
	k pkey
	s stamp
}

// kernelMap is what the kernel holds: each entry's prefix and expiry.
type kernelMap = map[pkey]stamp

// n returns s as Unix nanoseconds; 0 for the zero time.
func (s stamp) n() int64 { return int64(binary.LittleEndian.Uint64(s[:])) }
