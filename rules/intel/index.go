package intel

import (
	"cmp"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
)

// MaxIndexSets is how many sets one Index can hold: each address range
// carries the sets that list it as one bit of a uint64.
const MaxIndexSets = 64

// Index answers "which of these sets lists this address" with one binary
// search, whatever the number of sets: the sets' ranges are cut into
// elementary intervals, each labelled with the bitmask of the sets that
// cover it. It is immutable and safe for concurrent use; lookups do not
// allocate. nil is an empty index.
type Index struct {
	// start4[i] begins an interval that runs to start4[i+1]-1 (or to
	// the end of the address space) and is covered by the sets in
	// mask4[i]; 0 marks a gap.
	start4 []uint32
	mask4  []uint64
	start6 []u128
	mask6  []uint64
	n      int
}

// NewIndex merges sets into one Index; a set's position in sets is its
// number in Lookup's answer. nil entries are empty sets. It panics when
// given more than MaxIndexSets sets: callers bound the number of feeds
// when they validate their config.
func NewIndex(sets []*Set) *Index {
	if len(sets) > MaxIndexSets {
		panic(fmt.Sprintf("intel.NewIndex: %d sets, at most %d", len(sets), MaxIndexSets))
	}
	x := &Index{n: len(sets)}
	n4, n6 := 0, 0
	for _, s := range sets {
		if s != nil {
			n4, n6 = n4+2*len(s.first4), n6+2*len(s.first6)
		}
	}
	ev4 := make([]event[uint32], 0, n4)
	ev6 := make([]event[u128], 0, n6)
	for j, s := range sets {
		if s == nil {
			continue
		}
		bit := uint64(1) << uint(j)
		for i := range s.first4 {
			ev4 = append(ev4, event[uint32]{s.first4[i], bit, true})
			if s.last4[i] != ^uint32(0) {
				ev4 = append(ev4, event[uint32]{s.last4[i] + 1, bit, false})
			}
		}
		for i := range s.first6 {
			ev6 = append(ev6, event[u128]{s.first6[i], bit, true})
			if s.last6[i] != (u128{^uint64(0), ^uint64(0)}) {
				ev6 = append(ev6, event[u128]{s.last6[i].add1(), bit, false})
			}
		}
	}
	x.start4, x.mask4 = sweep(ev4, cmp.Compare[uint32])
	x.start6, x.mask6 = sweep(ev6, compare128)
	return x
}

// An event starts (on) or ends (!on) a set's range at pos.
type event[P any] struct {
	pos P
	bit uint64
	on  bool
}

// sweep turns the events of one family into the index's ranges: the
// positions where the mask of containing sets changes, and each new
// mask. compare orders positions.
func sweep[P any](ev []event[P], compare func(a, b P) int) (start []P, mask []uint64) {
	slices.SortFunc(ev, func(a, b event[P]) int { return compare(a.pos, b.pos) })
	start, mask = make([]P, 0, len(ev)), make([]uint64, 0, len(ev))
	var cur uint64
	for i := 0; i < len(ev); {
		pos := ev[i].pos
		for ; i < len(ev) && compare(ev[i].pos, pos) == 0; i++ {
			if ev[i].on {
				cur |= ev[i].bit
			} else {
				cur &^= ev[i].bit
			}
		}
		if n := len(mask); n > 0 && mask[n-1] == cur {
			continue
		}
		if len(mask) == 0 && cur == 0 {
			continue
		}
		start = append(start, pos)
		mask = append(mask, cur)
	}
	return slices.Clone(start), slices.Clone(mask)
}

// Mask returns the sets that contain a, set j as bit j; 0 when none does.
// It does not allocate.
func (x *Index) Mask(a netip.Addr) uint64 {
	if x == nil {
		return 0
	}
	a = a.Unmap()
	if a.Is4() {
		if i := search4(x.start4, addr4(a)); i > 0 {
			return x.mask4[i-1]
		}
		return 0
	}
	if !a.IsValid() {
		return 0
	}
	if i := search6(x.start6, addr6(a)); i > 0 {
		return x.mask6[i-1]
	}
	return 0
}

// Lookup returns the first set, by position in NewIndex's argument, that
// contains a, and whether any does. It does not allocate.
func (x *Index) Lookup(a netip.Addr) (i int, ok bool) {
	m := x.Mask(a)
	if m == 0 {
		return 0, false
	}
	return bits.TrailingZeros64(m), true
}

// Len is the number of sets the index was built from.
func (x *Index) Len() int {
	if x == nil {
		return 0
	}
	return x.n
}
