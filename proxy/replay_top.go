package proxy

import (
	"container/heap"
	"net/netip"
	"slices"
)

// clientTop counts refused requests and offences per client in at most
// capacity entries, with the Space-Saving algorithm (Metwally, Agrawal
// and El Abbadi, "Efficient Computation of Frequent and Top-k Elements
// in Data Streams", 2005): a client that is not tracked when the table
// is full takes the place of the one with the fewest refusals and starts
// from its count, recorded as the possible overstatement. Every client
// with more refusals than total/capacity is kept, and the counts are
// exact as long as the table never filled. A log of a million scanners
// thus costs capacity entries, not a million.
type clientTop struct {
	capacity int
	index    map[netip.Prefix]int // → position in entries
	entries  topHeap
	full     bool // an entry was replaced
}

func newClientTop(capacity int) *clientTop {
	if capacity <= 0 {
		capacity = 100_000 // limits.tracked_clients' default
	}
	index := map[netip.Prefix]int{}
	return &clientTop{capacity: capacity, index: index, entries: topHeap{index: index}}
}

// add counts refused requests and offences for client k.
func (t *clientTop) add(k netip.Prefix, refused, offences int) {
	if i, ok := t.index[k]; ok {
		e := &t.entries.items[i]
		e.Refused += refused
		e.Offences += offences
		heap.Fix(&t.entries, i)
		return
	}
	if len(t.entries.items) < t.capacity {
		heap.Push(&t.entries, ReplayClient{Prefix: k, Refused: refused, Offences: offences})
		return
	}
	t.full = true
	least := &t.entries.items[0]
	delete(t.index, least.Prefix)
	*least = ReplayClient{Prefix: k, Refused: least.Refused + refused, Offences: offences, Over: least.Refused}
	t.index[k] = 0
	heap.Fix(&t.entries, 0)
}

// list returns the n clients with the most refusals (ties: most
// offences, then address), and whether the table ever filled.
func (t *clientTop) list(n int) ([]ReplayClient, bool) {
	out := slices.Clone(t.entries.items)
	slices.SortFunc(out, func(a, b ReplayClient) int {
		if a.Refused != b.Refused {
			return b.Refused - a.Refused
		}
		if a.Offences != b.Offences {
			return b.Offences - a.Offences
		}
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return out[:min(n, len(out))], t.full
}

// topHeap is a min-heap of clients by refusals that keeps index, the
// position of each client, up to date.
type topHeap struct {
	items []ReplayClient
	index map[netip.Prefix]int
}

func (h *topHeap) Len() int           { return len(h.items) }
func (h *topHeap) Less(i, j int) bool { return h.items[i].Refused < h.items[j].Refused }
func (h *topHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.index[h.items[i].Prefix] = i
	h.index[h.items[j].Prefix] = j
}
func (h *topHeap) Push(x any) {
	c := x.(ReplayClient)
	h.index[c.Prefix] = len(h.items)
	h.items = append(h.items, c)
}
func (h *topHeap) Pop() any {
	c := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	delete(h.index, c.Prefix)
	return c
}
