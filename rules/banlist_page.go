package rules

import (
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Paging through a large ban list. The dashboard shows up to a million
// bans a page at a time, searched on the server; List would copy them all
// (well over 100 MB) for every page. Page instead scans the tables once
// without locking, as Lookup reads them, and keeps only the bans of the
// page it builds (keyset pagination: a page is asked for relative to a
// ban of the page before, so any page costs one scan and O(Limit) memory).

// MaxPageLimit caps BanQuery.Limit.
const MaxPageLimit = 1000

// defaultPageLimit is the page size of a BanQuery without a Limit.
const defaultPageLimit = 50

// BanCursor is a position in the order of BanList.Page: newest ban first
// (Created descending); bans created in the same nanosecond by address,
// then by prefix length. The zero BanCursor is no position.
type BanCursor struct {
	Created time.Time
	Prefix  netip.Prefix
}

// CursorOf returns the position of b.
func CursorOf(b Ban) BanCursor {
	return BanCursor{Created: b.Created, Prefix: b.Prefix}
}

// IsZero reports whether c is the zero BanCursor.
func (c BanCursor) IsZero() bool {
	return c.Created.IsZero() && !c.Prefix.IsValid()
}

// BanQuery selects one page of active bans for BanList.Page.
type BanQuery struct {
	// Match selects bans; "" selects all. An address selects the bans
	// covering it, a CIDR prefix the bans overlapping it; any other text
	// selects the bans whose prefix (as "203.0.113.0/24"), jail (a manual
	// ban's jail reads "manual") or reason contains it, ignoring ASCII
	// case.
	Match string
	// After, when set, asks for the page that follows this position
	// (the next page). Before, when set and After is not, asks for the
	// page that ends just before it (the previous page). Last, when
	// neither is set, asks for the last page. With none of them: the
	// first page.
	After, Before BanCursor
	Last          bool
	// Limit is the page size. Zero: 50; at most MaxPageLimit.
	Limit int
}

// BanPage is one page of bans.
type BanPage struct {
	// Bans are the page's bans, in order.
	Bans []Ban
	// Total counts the active bans the query's Match selects, on every
	// page.
	Total int
	// Prev and Next report whether selected bans come before the first
	// and after the last ban of the page.
	Prev, Next bool
}

// banKey is a ban's position in Page's order.
type banKey struct {
	created int64
	hi, lo  uint64
	bits128 int
}

// before reports whether a comes before b: newer first, then by address
// and prefix length. Keys of distinct bans always differ.
func (a banKey) before(b banKey) bool {
	switch {
	case a.created != b.created:
		return a.created > b.created
	case a.hi != b.hi:
		return a.hi < b.hi
	case a.lo != b.lo:
		return a.lo < b.lo
	}
	return a.bits128 < b.bits128
}

func keyOfCursor(c BanCursor) (banKey, bool) {
	p, ok := CanonicalPrefix(c.Prefix)
	if !ok {
		return banKey{}, false
	}
	hi, lo := addrWords(p.Addr())
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	return banKey{created: unixNano(c.Created), hi: hi, lo: lo, bits128: bits}, true
}

// pageItem is a candidate for the page: the entry, its table and its key.
type pageItem struct {
	k banKey
	t *banTable
	e *banEntry
}

// pageHeap keeps the n items that come first in Page's order (first =
// true) or last: a binary heap whose root is the kept item to drop first.
type pageHeap struct {
	items []pageItem
	n     int
	first bool
}

// worse reports whether item i should be dropped before item j.
func (h *pageHeap) worse(i, j int) bool {
	if h.first {
		return h.items[j].k.before(h.items[i].k)
	}
	return h.items[i].k.before(h.items[j].k)
}

func (h *pageHeap) offer(it pageItem) {
	if len(h.items) < h.n {
		h.items = append(h.items, it)
		for i := len(h.items) - 1; i > 0; {
			p := (i - 1) / 2
			if !h.worse(i, p) {
				break
			}
			h.items[i], h.items[p] = h.items[p], h.items[i]
			i = p
		}
		return
	}
	root := h.items[0].k
	if (h.first && !it.k.before(root)) || (!h.first && !root.before(it.k)) {
		return
	}
	h.items[0] = it
	for i := 0; ; {
		l, r, w := 2*i+1, 2*i+2, i
		if l < len(h.items) && h.worse(l, w) {
			w = l
		}
		if r < len(h.items) && h.worse(r, w) {
			w = r
		}
		if w == i {
			return
		}
		h.items[i], h.items[w] = h.items[w], h.items[i]
		i = w
	}
}

// Page returns one page of the active bans that q selects, and how many
// there are in all. It reads the list without taking its lock, as Lookup
// does, so it never delays the request path or a ban: it sees every ban
// at most once, and a ban added or removed while it runs may or may not
// be on the page. Its cost is one pass over the list, reading each
// ban's entry once (a text match also formats each prefix), and memory
// for Limit bans, whatever the list's size and the page's place.
func (l *BanList) Page(q BanQuery) BanPage {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = defaultPageLimit
	case limit > MaxPageLimit:
		limit = MaxPageLimit
	}
	m := compileBanMatch(q.Match)
	const (
		modeFirst = iota
		modeAfter
		modeBefore
		modeLast
	)
	mode := modeFirst
	var cur banKey
	if k, ok := keyOfCursor(q.After); ok {
		mode, cur = modeAfter, k
	} else if k, ok := keyOfCursor(q.Before); ok {
		mode, cur = modeBefore, k
	} else if q.Last {
		mode = modeLast
	}
	h := pageHeap{n: limit + 1, first: mode == modeFirst || mode == modeAfter}
	h.items = make([]pageItem, 0, min(h.n, 64))
	var page BanPage
	var outside bool // a selected ban lies on the other side of the cursor
	now := l.now().UnixNano()
	l.scan(func(t *banTable, e *banEntry) {
		if e.until <= now || !m.match(t, e) {
			return
		}
		page.Total++
		k := banKey{created: e.created, hi: e.hi, lo: e.lo, bits128: t.bits128}
		switch mode {
		case modeAfter:
			if !cur.before(k) {
				outside = true
				return
			}
		case modeBefore:
			if !k.before(cur) {
				outside = true
				return
			}
		}
		h.offer(pageItem{k: k, t: t, e: e})
	})
	items := h.items
	slices.SortFunc(items, func(a, b pageItem) int {
		if a.k.before(b.k) {
			return -1
		}
		return 1
	})
	more := len(items) > limit
	if more {
		if h.first {
			items = items[:limit]
		} else {
			items = items[1:]
		}
	}
	switch mode {
	case modeFirst:
		page.Next = more
	case modeAfter:
		page.Prev, page.Next = outside, more
	case modeBefore:
		page.Prev, page.Next = more, outside
	case modeLast:
		page.Prev = more
	}
	page.Bans = make([]Ban, len(items))
	for i, it := range items {
		page.Bans[i] = it.t.ban(it.e)
	}
	return page
}

// ActiveByJail counts the active bans by jail ("" for manual bans). Like
// Page, it reads the list without locking, in one pass.
func (l *BanList) ActiveByJail() map[string]int {
	out := map[string]int{}
	now := l.now().UnixNano()
	l.scan(func(_ *banTable, e *banEntry) {
		if e.until > now {
			out[e.jail]++
		}
	})
	return out
}

// scan calls fn for every stored entry without taking l.mu: it reads the
// current generation of each table in use, as Lookup does. Entries are
// immutable and a generation never moves an entry, so each prefix is
// seen at most once.
func (l *BanList) scan(fn func(*banTable, *banEntry)) {
	ts := l.tabs.Load()
	for _, list := range [2][]*banTable{ts.v4, ts.v6} {
		for _, t := range list {
			bs := t.slots.Load()
			for i := range bs.s {
				if e := bs.s[i].e.Load(); e != nil {
					fn(t, e)
				}
			}
		}
	}
}

// banMatch is a compiled BanQuery.Match.
type banMatch struct {
	all bool
	// net selects the bans overlapping the prefix hi:lo/bits128 (in the
	// 16-byte form) of family is4; an address is a full-length prefix.
	net     bool
	is4     bool
	hi, lo  uint64
	bits128 int
	text    string // lower case: substring of prefix, jail or reason
}

func compileBanMatch(s string) banMatch {
	s = strings.TrimSpace(s)
	if s == "" {
		return banMatch{all: true}
	}
	var p netip.Prefix
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.WithZone("")
		p = netip.PrefixFrom(a, a.BitLen())
	} else if p, err = netip.ParsePrefix(s); err != nil {
		return banMatch{text: strings.ToLower(s)}
	}
	p, _ = CanonicalPrefix(p)
	m := banMatch{net: true, is4: p.Addr().Is4(), bits128: p.Bits()}
	if m.is4 {
		m.bits128 += 96
	}
	m.hi, m.lo = addrWords(p.Addr())
	return m
}

// match reports whether m selects e, a ban of table t. It does not
// allocate.
func (m *banMatch) match(t *banTable, e *banEntry) bool {
	switch {
	case m.all:
		return true
	case m.net:
		if t.is4 != m.is4 {
			return false
		}
		// Two prefixes overlap when they agree on the shorter one's bits.
		n := min(t.bits128, m.bits128)
		ehi, elo := mask128(e.hi, e.lo, n)
		mhi, mlo := mask128(m.hi, m.lo, n)
		return ehi == mhi && elo == mlo
	}
	jail := e.jail
	if jail == "" {
		jail = "manual"
	}
	if containsFold(jail, m.text) || containsFold(e.reason, m.text) {
		return true
	}
	var buf [64]byte
	return containsFold(t.prefix(e).AppendTo(buf[:0]), m.text)
}

// prefix returns the banned prefix of e, an entry of t.
func (t *banTable) prefix(e *banEntry) netip.Prefix {
	var a netip.Addr
	if t.is4 {
		a = netip.AddrFrom4([4]byte{byte(e.lo >> 24), byte(e.lo >> 16), byte(e.lo >> 8), byte(e.lo)})
	} else {
		a = wordsAddr(e.hi, e.lo)
	}
	return netip.PrefixFrom(a, t.bits)
}

// containsFold reports whether s contains sub, a lower-case string,
// ignoring ASCII case. It does not allocate.
func containsFold[S ~string | ~[]byte](s S, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != sub[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}
