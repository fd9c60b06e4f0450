package rules

import "net/netip"

// maxSplit bounds what SplitAround returns.
const maxSplit = 256

// SplitAround returns the fewest prefixes that together cover p except
// what overlaps keep, largest first, or ok false when that takes more
// than 256 prefixes. An escalated network ban that now holds an allowed
// address is put back as these, rather than dropped with the members'
// bans it replaced.
func SplitAround(p netip.Prefix, keep []netip.Prefix) (out []netip.Prefix, ok bool) {
	p = p.Masked()
	var walk func(q netip.Prefix) bool
	walk = func(q netip.Prefix) bool {
		overlaps := false
		for _, k := range keep {
			if !q.Overlaps(k) {
				continue
			}
			if k.Bits() <= q.Bits() {
				return true // all of q is kept out
			}
			overlaps = true
		}
		if !overlaps {
			if len(out) == maxSplit {
				return false
			}
			out = append(out, q)
			return true
		}
		lo := netip.PrefixFrom(q.Addr(), q.Bits()+1)
		hi := netip.PrefixFrom(nextHalf(q), q.Bits()+1)
		return walk(lo) && walk(hi)
	}
	if !walk(p) {
		return nil, false
	}
	return out, true
}

// nextHalf returns the first address of q's upper half.
func nextHalf(q netip.Prefix) netip.Addr {
	a := q.Addr().As16()
	bit := q.Bits() + 1 // 1-based position of the bit to set, in q's family
	if q.Addr().Is4() {
		bit += 96
	}
	a[(bit-1)/8] |= 0x80 >> ((bit - 1) % 8)
	r := netip.AddrFrom16(a)
	if q.Addr().Is4() {
		r = r.Unmap()
	}
	return r
}
