package intel

import (
	"cmp"
	"encoding/binary"
	"iter"
	"math/bits"
	"net/netip"
	"slices"
)

// u128 is an IPv6 address as two big-endian halves, so that ranges can be
// compared and stepped with integer arithmetic.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

func (a u128) add1() u128 {
	lo := a.lo + 1
	hi := a.hi
	if lo == 0 {
		hi++
	}
	return u128{hi, lo}
}

// trailingZeros is the number of low zero bits of a (128 for zero).
func (a u128) trailingZeros() int {
	if a.lo != 0 {
		return bits.TrailingZeros64(a.lo)
	}
	return 64 + bits.TrailingZeros64(a.hi)
}

// hostMask is the value with the low n bits set (n ≤ 128).
func hostMask(n int) u128 {
	switch {
	case n <= 0:
		return u128{}
	case n < 64:
		return u128{0, 1<<uint(n) - 1}
	case n < 128:
		return u128{1<<uint(n-64) - 1, ^uint64(0)}
	default:
		return u128{^uint64(0), ^uint64(0)}
	}
}

func (a u128) or(b u128) u128 { return u128{a.hi | b.hi, a.lo | b.lo} }

func addr6(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (a u128) addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], a.hi)
	binary.BigEndian.PutUint64(b[8:], a.lo)
	return netip.AddrFrom16(b)
}

func addr4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func uint32Addr(x uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], x)
	return netip.AddrFrom4(b)
}

// span is an inclusive address range of one family: uint32 for IPv4,
// u128 for IPv6.
type span[P any] struct{ first, last P }

// Set is an immutable set of IPv4 and IPv6 addresses given as prefixes.
// NewSet folds IPv4-mapped IPv6 prefixes to IPv4, masks host bits and
// merges overlapping and adjacent prefixes into sorted disjoint ranges, so
// Contains is one binary search whatever the list's shape. The zero value
// and nil are empty sets. A Set is safe for concurrent use.
type Set struct {
	// first4[i]..last4[i] are the merged IPv4 ranges, sorted; the
	// starts and ends live in separate slices so that the search
	// touches only the starts.
	first4, last4 []uint32
	first6, last6 []u128
	n             int
}

// NewSet builds a Set from ps. Invalid prefixes (the zero netip.Prefix)
// are ignored and not counted; ps is not modified or kept.
func NewSet(ps []netip.Prefix) *Set {
	var r4 []span[uint32]
	var r6 []span[u128]
	n := 0
	for _, p := range ps {
		p, ok := canonical(p)
		if !ok {
			continue
		}
		n++
		if p.Addr().Is4() {
			first := addr4(p.Addr())
			size := uint32(0)
			if p.Bits() < 32 {
				size = 1<<uint(32-p.Bits()) - 1
			}
			r4 = append(r4, span[uint32]{first, first | size})
		} else {
			first := addr6(p.Addr())
			r6 = append(r6, span[u128]{first, first.or(hostMask(128 - p.Bits()))})
		}
	}
	s := &Set{n: n}
	s.first4, s.last4 = merge(r4, cmp.Compare[uint32], next4)
	s.first6, s.last6 = merge(r6, compare128, next6)
	return s
}

// canonical folds an IPv4-mapped IPv6 prefix (::ffff:0:0/96 and longer)
// to IPv4, drops any zone and masks the host bits.
func canonical(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return netip.Prefix{}, false
	}
	a, b := p.Addr().WithZone(""), p.Bits()
	if a.Is4In6() && b >= 96 {
		a, b = a.Unmap(), b-96
	}
	return netip.PrefixFrom(a, b).Masked(), true
}

// merge sorts r and joins overlapping and adjacent ranges, returning the
// first and last addresses of the disjoint ranges left. compare orders
// addresses; next returns the address after p, and false after the
// family's last one.
func merge[P any](r []span[P], compare func(a, b P) int, next func(p P) (P, bool)) (first, last []P) {
	if len(r) == 0 {
		return nil, nil
	}
	slices.SortFunc(r, func(a, b span[P]) int { return compare(a.first, b.first) })
	out := r[:1]
	for _, x := range r[1:] {
		cur := &out[len(out)-1]
		if after, ok := next(cur.last); !ok || compare(x.first, after) <= 0 {
			if compare(cur.last, x.last) < 0 {
				cur.last = x.last
			}
			continue
		}
		out = append(out, x)
	}
	first, last = make([]P, len(out)), make([]P, len(out))
	for i, x := range out {
		first[i], last[i] = x.first, x.last
	}
	return first, last
}

func next4(a uint32) (uint32, bool) { return a + 1, a != ^uint32(0) }

func next6(a u128) (u128, bool) { return a.add1(), a != u128{^uint64(0), ^uint64(0)} }

// compare128 orders u128 values.
func compare128(a, b u128) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}

// search4 returns the number of elements of first that are ≤ x: the index
// of the range that may hold x, plus one.
func search4(first []uint32, x uint32) int {
	lo, hi := 0, len(first)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if first[m] <= x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func search6(first []u128, x u128) int {
	lo, hi := 0, len(first)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if f := first[m]; f.hi < x.hi || (f.hi == x.hi && f.lo <= x.lo) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// Contains reports whether a is in the set. An IPv4-mapped IPv6 address
// is looked up as IPv4; the zone is ignored; the invalid Addr is in no
// set. It does not allocate.
func (s *Set) Contains(a netip.Addr) bool {
	if s == nil {
		return false
	}
	a = a.Unmap()
	if a.Is4() {
		x := addr4(a)
		i := search4(s.first4, x)
		return i > 0 && x <= s.last4[i-1]
	}
	if !a.IsValid() {
		return false
	}
	x := addr6(a)
	i := search6(s.first6, x)
	return i > 0 && !s.last6[i-1].less(x)
}

// Len is the number of valid prefixes the set was built from, as listed
// (before merging): what a feed's "entries" figure reports.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// Ranges is the number of disjoint address ranges after merging.
func (s *Set) Ranges() int {
	if s == nil {
		return 0
	}
	return len(s.first4) + len(s.first6)
}

// Prefixes yields the fewest prefixes that cover exactly the set's
// addresses, IPv4 first, each family in address order: what a kernel set
// is loaded with. Merged neighbours come out as their common supernet
// where they fill one (10.0.0.0/25 and 10.0.0.128/25 yield 10.0.0.0/24).
func (s *Set) Prefixes() iter.Seq[netip.Prefix] {
	return func(yield func(netip.Prefix) bool) {
		if s == nil {
			return
		}
		for i := range s.first4 {
			if !split4(s.first4[i], s.last4[i], yield) {
				return
			}
		}
		for i := range s.first6 {
			if !split6(s.first6[i], s.last6[i], yield) {
				return
			}
		}
	}
}

// split4 yields the CIDR blocks covering first..last, largest first at
// each step (the classic range-to-CIDR walk).
func split4(first, last uint32, yield func(netip.Prefix) bool) bool {
	for {
		// The largest block aligned at first …
		n := bits.TrailingZeros32(first)
		if first == 0 {
			n = 32
		}
		// … that does not run past last.
		for n > 0 && uint64(first)+(uint64(1)<<uint(n))-1 > uint64(last) {
			n--
		}
		if !yield(netip.PrefixFrom(uint32Addr(first), 32-n)) {
			return false
		}
		end := uint64(first) + uint64(1)<<uint(n) - 1
		if end >= uint64(last) {
			return true
		}
		first = uint32(end + 1)
	}
}

func split6(first, last u128, yield func(netip.Prefix) bool) bool {
	for {
		n := first.trailingZeros()
		for n > 0 && last.less(first.or(hostMask(n))) {
			n--
		}
		end := first.or(hostMask(n))
		if !yield(netip.PrefixFrom(first.addr(), 128-n)) {
			return false
		}
		if !end.less(last) {
			return true
		}
		first = end.add1()
	}
}
