package rules

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Ban is one banned prefix: while it is active (now before Until), Lookup
// reports every address in Prefix as banned.
type Ban struct {
	// Prefix is what is banned: for jail bans an IPv4 /32 or an IPv6
	// prefix of JailsConfig.IPv6Prefix bits (a /128 when that prefix
	// would cover an allowed address); any prefix for manual bans.
	// BanList stores it masked, IPv4-mapped IPv6 folded to IPv4, and
	// never changes its length: a /24 ban stays a /24.
	Prefix netip.Prefix
	// Jail names the jail that decided the ban; "" for a manual ban.
	Jail string
	// Reason is the offence that triggered the ban, or the operator's note.
	Reason string
	// Until is when the ban ends. BanList keeps it to the nanosecond up
	// to the year 2262 and returns it in UTC.
	Until time.Time
	// Count is which ban of this client by Jail this is (1 for a first
	// ban; 3 for a third within the jail's forget window). Manual bans
	// carry what the caller set, normally 0.
	Count int
	// Created is when the ban was made; zero in a Ban given to
	// BanList.Ban means now. Returned in UTC.
	Created time.Time
}

// IP is how people are shown b's prefix (the admin API, the dashboard,
// notifications): a bare address for a single address, else CIDR
// notation ("203.0.113.7", "2001:db8::/64").
func (b Ban) IP() string {
	if b.Prefix.IsSingleIP() {
		return b.Prefix.Addr().String()
	}
	return b.Prefix.String()
}

// BanListConfig configures a BanList.
type BanListConfig struct {
	// Allow lists prefixes that are never banned: Ban refuses, with
	// ErrAllowed, any ban whose prefix overlaps one of them. It should be
	// the same list as JailsConfig.Allow (the config's allow key).
	// Invalid prefixes are skipped; proxy/config rejects them first.
	Allow []netip.Prefix
	// MaxBans bounds how many bans the list holds at once (expired ones
	// not yet pruned included), since bans are made from client input.
	// Ban prunes expired bans when the list is full, then refuses new
	// prefixes with ErrBanListFull. Each ban costs 112-176 bytes: an
	// 80-byte entry and 2 to 6 16-byte slots.
	// Zero: 1,000,000.
	MaxBans int
	// PruneEvery is how often Run removes expired bans. Zero: 1 minute.
	PruneEvery time.Duration
}

const (
	defaultMaxBans    = 1_000_000
	defaultPruneEvery = time.Minute
)

// ErrAllowed is wrapped by errors refusing a ban that overlaps the allow list.
var ErrAllowed = errors.New("prefix is on the allow list")

// ErrCovered is wrapped by errors refusing a jail's ban because an
// active ban of a shorter prefix covers it and lasts at least as long
// (such as the escalated ban of its network): a separate entry would
// change nothing.
var ErrCovered = errors.New("covered by a ban of a shorter prefix")

// ErrBanListFull is wrapped by errors refusing a ban because the ban list
// holds BanListConfig.MaxBans active bans.
var ErrBanListFull = errors.New("ban list is full")

// Op is the kind of a Change.
type Op uint8

const (
	// Added: the ban is new or replaces the ban of the same prefix.
	Added Op = iota + 1
	// Removed: the ban was lifted by Unban or pruned after it expired.
	Removed
)

// String returns "added" or "removed".
func (o Op) String() string {
	switch o {
	case Added:
		return "added"
	case Removed:
		return "removed"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Change is one change of the ban list, as its subscribers see it.
type Change struct {
	Op  Op
	Ban Ban
	// By is, for a Removed change, the prefix of the escalated ban that
	// replaced Ban (BanList.Escalate): the fleet lifts such a member
	// everywhere, not only here. Zero for every other change.
	By netip.Prefix
}

// BanList holds the active bans: IPv4 and IPv6 prefixes of any length,
// each with an expiry. Lookup is the request path's question "is this
// client banned?": lock-free, allocation-free and independent of the
// number of bans. Ban, Unban and Prune serialise on one mutex and publish
// each change to subscribers (the kernel firewall, the store, the
// notifier) without ever blocking on them.
//
// Bans are kept in one hash table per (family, prefix length) in use:
// jail bans fill the IPv4 /32 and IPv6 /64 tables, manual bans of other
// lengths add a table each, and Lookup probes only the tables present,
// longest prefix first. A table is open addressing with linear probing;
// each slot holds a fingerprint and a pointer to an immutable entry, both
// atomic, so readers never lock or write shared memory, and a writer that
// grows a table builds a new one and swaps it in. The hash is keyed with
// a random seed per table (renewed on every rebuild), so clients cannot
// choose addresses that collide.
//
// A BanList is safe for concurrent use.
type BanList struct {
	now   func() time.Time
	allow []netip.Prefix
	max   int
	every time.Duration

	tabs atomic.Pointer[banTables] // what Lookup reads; replaced when a table appears or goes

	mu     sync.Mutex        // serialises writers; guards everything below and banTable.used/live
	tables [2][129]*banTable // [0] IPv4, [1] IPv6, by prefix length
	n      int               // bans stored, expired ones not yet pruned included
	subs   []*Subscription
}

// banTables lists the tables in use, longest prefix first. Immutable.
type banTables struct {
	v4, v6 []*banTable
}

// NewBanList returns an empty ban list.
func NewBanList(cfg BanListConfig) *BanList {
	l := &BanList{now: time.Now, max: cfg.MaxBans, every: cfg.PruneEvery}
	if l.max <= 0 {
		l.max = defaultMaxBans
	}
	if l.every <= 0 {
		l.every = defaultPruneEvery
	}
	for _, p := range cfg.Allow {
		if p, ok := CanonicalPrefix(p); ok {
			l.allow = append(l.allow, p)
		}
	}
	l.tabs.Store(&banTables{})
	return l
}

// Lookup returns the active ban covering ip, the longest prefix if
// several do. IPv4-mapped IPv6 addresses are looked up as IPv4; an
// invalid ip is never banned. Lookup never blocks, does not allocate and
// costs the same for ten bans as for a million: one hash probe per prefix
// length in use in ip's family (normally one), and a clock read on a hit.
func (l *BanList) Lookup(ip netip.Addr) (Ban, bool) {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return Ban{}, false
	}
	hi, lo := addrWords(ip)
	ts := l.tabs.Load()
	list := ts.v6
	if ip.Is4() {
		list = ts.v4
	}
	var now int64
	for _, t := range list {
		mhi, mlo := mask128(hi, lo, t.bits128)
		e := t.slots.Load().find(mhi, mlo)
		if e == nil {
			continue
		}
		if now == 0 {
			now = l.now().UnixNano()
		}
		if e.until > now {
			return t.ban(e), true
		}
	}
	return Ban{}, false
}

// banned reports whether ip is banned; Lookup without building the Ban.
func (l *BanList) banned(ip netip.Addr) bool {
	_, ok := l.Lookup(ip)
	return ok
}

// Ban adds b, replacing any ban of exactly the same prefix (a ban of a
// longer or shorter prefix is another ban), and publishes it to the
// subscribers as Added. It returns the ban as stored: prefix masked and
// IPv4-mapped folded, Created defaulted to now, times in UTC.
//
// Ban refuses an invalid prefix, an Until not after now, a prefix that
// overlaps the allow list (ErrAllowed), a jail's ban (Jail set) inside an
// active ban of a shorter prefix that lasts at least as long (ErrCovered)
// and, when MaxBans bans are held even after pruning the expired ones, a
// new prefix (ErrBanListFull).
func (l *BanList) Ban(b Ban) (Ban, error) {
	p, e, now, err := l.entry(b)
	if err != nil {
		return Ban{}, err
	}
	is4 := p.Addr().Is4()

	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.coveredLocked(p, e, now.UnixNano(), false); err != nil {
		return Ban{}, err
	}
	if t := l.table(is4, p.Bits(), false); (t == nil || t.get(e.hi, e.lo) == nil) && l.n >= l.max {
		l.pruneLocked(now.UnixNano())
		if l.n >= l.max {
			return Ban{}, fmt.Errorf("ban %s: %d bans held: %w", p, l.n, ErrBanListFull)
		}
	}
	t := l.table(is4, p.Bits(), true)
	if old := t.put(e); old == nil {
		l.n++
	}
	stored := t.ban(e)
	l.publish(Change{Op: Added, Ban: stored})
	return stored, nil
}

// entry checks b as Ban does before taking the lock and returns its
// canonical prefix, its entry and now.
func (l *BanList) entry(b Ban) (netip.Prefix, *banEntry, time.Time, error) {
	p, ok := CanonicalPrefix(b.Prefix)
	if !ok {
		return p, nil, time.Time{}, fmt.Errorf("ban %s: invalid prefix", b.Prefix)
	}
	now := l.now()
	if !b.Until.After(now) {
		return p, nil, now, fmt.Errorf("ban %s: until %s is not in the future", p, b.Until.UTC().Format(time.RFC3339))
	}
	for _, a := range l.allow {
		if p.Overlaps(a) {
			return p, nil, now, fmt.Errorf("ban %s: overlaps allowed %s: %w", p, a, ErrAllowed)
		}
	}
	if b.Created.IsZero() {
		b.Created = now
	}
	hi, lo := addrWords(p.Addr())
	return p, &banEntry{
		hi: hi, lo: lo,
		until:   unixNano(b.Until),
		created: unixNano(b.Created),
		count:   b.Count,
		jail:    b.Jail,
		reason:  b.Reason,
	}, now, nil
}

// coveredLocked refuses e, the entry of a jail's ban of p, when an
// active ban of a shorter prefix (or, with same, of p itself: a network
// escalated twice) covers p until at least e's end; l.mu must be held.
// Manual bans are always stored: an operator's note stays.
func (l *BanList) coveredLocked(p netip.Prefix, e *banEntry, now int64, same bool) error {
	if e.jail == "" {
		return nil
	}
	ts := l.tabs.Load()
	list := ts.v6
	if p.Addr().Is4() {
		list = ts.v4
	}
	for _, t := range list {
		if t.bits > p.Bits() || t.bits == p.Bits() && !same {
			continue
		}
		mhi, mlo := mask128(e.hi, e.lo, t.bits128)
		if c := t.get(mhi, mlo); c != nil && c.until > now && c.until >= e.until {
			return fmt.Errorf("ban %s: inside %s until %s: %w", p, t.prefix(c), time.Unix(0, c.until).UTC().Format(time.RFC3339), ErrCovered)
		}
	}
	return nil
}

// Escalate bans b, a jail's ban of a whole network, as Ban does, and in
// the same step removes the bans of b.Jail of longer prefixes inside it
// that end no later than b (its members, whose bans made the jail
// escalate), publishing b as Added and then each member as Removed with
// Change.By set to b's prefix. A member banned for longer (a repeat
// offender, under the jail's increment) keeps its own ban: one client's
// long ban does not lengthen its neighbours'. It returns b as stored and
// how many bans it replaced; it refuses what Ban refuses, and also a
// network already banned at least as long (ErrCovered), so concurrent
// escalations of one network make one ban.
//
// Finding the members costs, per prefix length in use inside b's, the
// smaller of one probe per possible member (256 for a /24 of /32s) and
// one pass over that length's bans.
func (l *BanList) Escalate(b Ban) (Ban, int, error) {
	p, e, now, err := l.entry(b)
	if err != nil {
		return Ban{}, 0, err
	}
	is4 := p.Addr().Is4()
	nowNs := now.UnixNano()

	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.coveredLocked(p, e, nowNs, true); err != nil {
		return Ban{}, 0, err
	}
	type member struct {
		t *banTable
		e *banEntry
	}
	var members []member
	ts := l.tabs.Load()
	list := ts.v6
	if is4 {
		list = ts.v4
	}
	for _, t := range list {
		if t.bits <= p.Bits() {
			continue
		}
		t.inside(e.hi, e.lo, p.Bits()+t.bits128-t.bits, func(m *banEntry) {
			if m.jail == e.jail && m.until <= e.until {
				members = append(members, member{t, m})
			}
		})
	}
	t := l.table(is4, p.Bits(), false)
	if (t == nil || t.get(e.hi, e.lo) == nil) && l.n-len(members) >= l.max {
		l.pruneLocked(nowNs)
		if l.n-len(members) >= l.max {
			return Ban{}, 0, fmt.Errorf("ban %s: %d bans held: %w", p, l.n, ErrBanListFull)
		}
	}
	t = l.table(is4, p.Bits(), true)
	if old := t.put(e); old == nil {
		l.n++
	}
	stored := t.ban(e)
	l.publish(Change{Op: Added, Ban: stored})
	var touched []*banTable
	for _, m := range members {
		if m.t.del(m.e.hi, m.e.lo) == nil {
			continue // pruned meanwhile
		}
		l.n--
		l.publish(Change{Op: Removed, Ban: m.t.ban(m.e), By: stored.Prefix})
		if !slices.Contains(touched, m.t) {
			touched = append(touched, m.t)
		}
	}
	for _, mt := range touched {
		l.tidy(mt)
	}
	return stored, len(members), nil
}

// Unban removes the ban of exactly prefix p (after masking and folding
// IPv4-mapped addresses; a /32 inside a banned /24 is not that /24) and
// publishes it as Removed. It reports whether an active ban was removed;
// an expired ban not yet pruned is removed too, but reported as false.
func (l *BanList) Unban(p netip.Prefix) bool {
	p, ok := CanonicalPrefix(p)
	if !ok {
		return false
	}
	hi, lo := addrWords(p.Addr())
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.table(p.Addr().Is4(), p.Bits(), false)
	if t == nil {
		return false
	}
	e := t.del(hi, lo)
	if e == nil {
		return false
	}
	l.n--
	l.publish(Change{Op: Removed, Ban: t.ban(e)})
	l.tidy(t)
	return e.until > l.now().UnixNano()
}

// List returns the active bans, in no particular order. It is a copy.
func (l *BanList) List() []Ban {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.listLocked()
}

func (l *BanList) listLocked() []Ban {
	now := l.now().UnixNano()
	out := make([]Ban, 0, l.n)
	l.each(func(t *banTable, _ *banSlot, e *banEntry) {
		if e.until > now {
			out = append(out, t.ban(e))
		}
	})
	return out
}

// Prune removes the bans that expired at or before now and publishes
// each as Removed. It returns how many it removed. Expired bans are
// already absent for Lookup and List; pruning frees their memory and
// tells the subscribers.
func (l *BanList) Prune(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pruneLocked(now.UnixNano())
}

func (l *BanList) pruneLocked(now int64) int {
	n := 0
	var touched []*banTable
	ts := l.tabs.Load()
	for _, list := range [][]*banTable{ts.v4, ts.v6} {
		for _, t := range list {
			before := n
			bs := t.slots.Load()
			for i := range bs.s {
				sl := &bs.s[i]
				e := sl.e.Load()
				if e == nil || e.until > now {
					continue
				}
				sl.tag.Store(tagDeleted)
				sl.e.Store(nil)
				t.live--
				l.n--
				n++
				l.publish(Change{Op: Removed, Ban: t.ban(e)})
			}
			if n > before {
				touched = append(touched, t)
			}
		}
	}
	for _, t := range touched {
		l.tidy(t)
	}
	return n
}

// Run prunes expired bans every BanListConfig.PruneEvery until ctx is
// done, then returns nil. The caller owns the goroutine running it.
func (l *BanList) Run(ctx context.Context) error {
	tick := time.NewTicker(l.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			l.Prune(l.now())
		}
	}
}

// each calls fn for every stored entry; l.mu must be held.
func (l *BanList) each(fn func(*banTable, *banSlot, *banEntry)) {
	ts := l.tabs.Load()
	for _, list := range [][]*banTable{ts.v4, ts.v6} {
		for _, t := range list {
			bs := t.slots.Load()
			for i := range bs.s {
				if e := bs.s[i].e.Load(); e != nil {
					fn(t, &bs.s[i], e)
				}
			}
		}
	}
}

// table returns the table of (family, bits), creating it if create is
// set; l.mu must be held.
func (l *BanList) table(is4 bool, bits int, create bool) *banTable {
	f := 1
	if is4 {
		f = 0
	}
	t := l.tables[f][bits]
	if t == nil && create {
		t = &banTable{is4: is4, bits: bits, bits128: bits}
		if is4 {
			t.bits128 = 96 + bits
		}
		t.rehash(1)
		l.tables[f][bits] = t
		l.republish()
	}
	return t
}

// tidy drops t once it is empty, so Lookup stops probing it, and shrinks
// it when mostly empty; l.mu must be held.
func (l *BanList) tidy(t *banTable) {
	f := 1
	if t.is4 {
		f = 0
	}
	switch n := len(t.slots.Load().s); {
	case t.live == 0:
		l.tables[f][t.bits] = nil
		l.republish()
	case n > 64 && 8*t.live < n:
		t.rehash(t.live)
	}
}

// republish stores a new banTables from l.tables; l.mu must be held.
func (l *BanList) republish() {
	ts := &banTables{}
	for b := 32; b >= 0; b-- {
		if t := l.tables[0][b]; t != nil {
			ts.v4 = append(ts.v4, t)
		}
	}
	for b := 128; b >= 0; b-- {
		if t := l.tables[1][b]; t != nil {
			ts.v6 = append(ts.v6, t)
		}
	}
	l.tabs.Store(ts)
}

// publish sends c to every subscriber that has room, marking the others
// as overflowed; l.mu must be held (so changes keep their order).
func (l *BanList) publish(c Change) {
	for _, s := range l.subs {
		if s.lost {
			continue
		}
		select {
		case s.c <- c:
		default:
			s.lost = true
			select {
			case s.overflow <- struct{}{}:
			default:
			}
		}
	}
}

// Subscription delivers the changes of a BanList to one consumer, in the
// order they were made. Publishers never wait for it: when C is full, the
// change is not queued, the subscription is marked as overflowed, nothing
// more is sent on C, and Overflow fires; the consumer then calls Resync
// for a fresh snapshot and receives the changes made after it on C.
//
// A consumer starts with Resync too, so that its initial state and the
// feed fit together:
//
//	sub := bans.Subscribe(1024)
//	defer sub.Close()
//	apply(sub.Resync())
//	for {
//		select {
//		case c := <-sub.C:
//			applyChange(c)
//		case <-sub.Overflow():
//			apply(sub.Resync())
//		case <-ctx.Done():
//			return
//		}
//	}
//
// Resync and Close may be called from any goroutine, but Resync drains C
// and so belongs to the goroutine receiving from it.
type Subscription struct {
	// C delivers changes. It is closed by Close.
	C <-chan Change

	l        *BanList
	c        chan Change
	overflow chan struct{}
	lost     bool // a change could not be queued; guarded by l.mu
	closed   bool // guarded by l.mu
}

// Subscribe registers a consumer of changes with room for bufSize
// changes on its channel (bufSize < 1: 1024). It costs the publishers
// one non-blocking send per change until Close.
func (l *BanList) Subscribe(bufSize int) *Subscription {
	if bufSize < 1 {
		bufSize = 1024
	}
	c := make(chan Change, bufSize)
	s := &Subscription{C: c, l: l, c: c, overflow: make(chan struct{}, 1)}
	l.mu.Lock()
	l.subs = append(l.subs, s)
	l.mu.Unlock()
	return s
}

// Overflow returns a channel that receives a value when a change could
// not be queued on C. The consumer must then call Resync.
func (s *Subscription) Overflow() <-chan struct{} { return s.overflow }

// Resync returns a snapshot of the active bans, as List does, and
// restarts the feed from it: atomically with respect to publishers it
// discards the changes still queued on C (they are older than the
// snapshot, and applying them after it could undo a later change), clears
// the overflow state and a pending Overflow signal. Every change made
// after the snapshot is then delivered on C. After Close it returns nil.
func (s *Subscription) Resync() []Ban {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	if s.closed {
		return nil
	}
	for drained := false; !drained; {
		select {
		case <-s.c:
		default:
			drained = true
		}
	}
	select {
	case <-s.overflow:
	default:
	}
	s.lost = false
	return s.l.listLocked()
}

// Close unregisters the subscription and closes C. It is idempotent.
func (s *Subscription) Close() {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for i, o := range s.l.subs {
		if o == s {
			s.l.subs = append(s.l.subs[:i], s.l.subs[i+1:]...)
			break
		}
	}
	close(s.c)
}

// banTable holds the bans of one prefix length of one family.
type banTable struct {
	is4     bool
	bits    int // prefix length in its family
	bits128 int // prefix length in the 16-byte form: bits+96 for IPv4

	slots atomic.Pointer[banSlots] // replaced whole on rehash

	// Guarded by BanList.mu.
	used int // slots not empty: live entries and tombstones
	live int // live entries
}

// banSlots is one generation of a table's open-addressing array. Its
// length is a power of two and at most half its slots are used, so every
// probe sequence ends at an empty slot.
type banSlots struct {
	seed maphash.Seed
	mask uint64
	s    []banSlot
}

// banSlot: tag is tagEmpty, tagDeleted or the entry's hash with bit 1 set,
// so most probes that miss are rejected without following e. A writer
// fills a slot e first, then tag, and empties it tag first.
type banSlot struct {
	tag atomic.Uint64
	e   atomic.Pointer[banEntry]
}

const (
	tagEmpty   = 0
	tagDeleted = 1
	tagBit     = 2
)

// banEntry is one ban, immutable once stored. The prefix's masked
// address is hi:lo in the 16-byte form (IPv4 as ::ffff:a.b.c.d); its
// length and family are the table's. 80 bytes.
type banEntry struct {
	hi, lo         uint64
	until, created int64 // Unix nanoseconds
	count          int
	jail, reason   string
}

// find returns the entry of key hi:lo or nil. Lock-free.
func (bs *banSlots) find(hi, lo uint64) *banEntry {
	h := hash128(bs.seed, hi, lo)
	want := h | tagBit
	for i := h & bs.mask; ; i = (i + 1) & bs.mask {
		sl := &bs.s[i]
		switch sl.tag.Load() {
		case tagEmpty:
			return nil
		case want:
			if e := sl.e.Load(); e != nil && e.hi == hi && e.lo == lo {
				return e
			}
		}
	}
}

// get is find on the current generation; BanList.mu must be held.
func (t *banTable) get(hi, lo uint64) *banEntry {
	return t.slots.Load().find(hi, lo)
}

// inside calls fn for every entry of t inside the prefix of hi:lo of
// bits128 bits (in the 16-byte form), which is shorter than t's;
// BanList.mu must be held. It probes each possible key when there are
// fewer of those than slots, and scans the slots otherwise.
func (t *banTable) inside(hi, lo uint64, bits128 int, fn func(*banEntry)) {
	hi, lo = mask128(hi, lo, bits128)
	bs := t.slots.Load()
	if span := t.bits128 - bits128; span <= 20 && 1<<span < len(bs.s) {
		shift := uint(128 - t.bits128) // bits below t's prefix
		for i := range uint64(1) << span {
			khi, klo := hi, lo|i<<shift // i<<shift is 0 for shift >= 64
			if shift >= 64 {
				khi |= i << (shift - 64)
			} else {
				khi |= i >> (64 - shift) // 0 for shift 0
			}
			if e := bs.find(khi, klo); e != nil {
				fn(e)
			}
		}
		return
	}
	for i := range bs.s {
		if e := bs.s[i].e.Load(); e != nil {
			if mhi, mlo := mask128(e.hi, e.lo, bits128); mhi == hi && mlo == lo {
				fn(e)
			}
		}
	}
}

// put stores e, returning the entry it replaced or nil; BanList.mu must
// be held.
func (t *banTable) put(e *banEntry) *banEntry {
	bs := t.slots.Load()
	if 2*(t.used+1) > len(bs.s) {
		bs = t.rehash(t.live + 1)
	}
	h := hash128(bs.seed, e.hi, e.lo)
	want := h | tagBit
	free := -1
	for i := h & bs.mask; ; i = (i + 1) & bs.mask {
		sl := &bs.s[i]
		tag := sl.tag.Load()
		if tag == tagEmpty {
			if free < 0 {
				free = int(i)
				t.used++
			}
			break
		}
		if tag == tagDeleted {
			if free < 0 {
				free = int(i)
			}
			continue
		}
		if tag == want {
			if old := sl.e.Load(); old.hi == e.hi && old.lo == e.lo {
				sl.e.Store(e)
				return old
			}
		}
	}
	sl := &bs.s[free]
	sl.e.Store(e)
	sl.tag.Store(want)
	t.live++
	return nil
}

// del removes the entry of key hi:lo, leaving a tombstone, and returns it
// or nil; BanList.mu must be held.
func (t *banTable) del(hi, lo uint64) *banEntry {
	bs := t.slots.Load()
	h := hash128(bs.seed, hi, lo)
	want := h | tagBit
	for i := h & bs.mask; ; i = (i + 1) & bs.mask {
		sl := &bs.s[i]
		switch sl.tag.Load() {
		case tagEmpty:
			return nil
		case want:
			if e := sl.e.Load(); e.hi == hi && e.lo == lo {
				sl.tag.Store(tagDeleted)
				sl.e.Store(nil)
				t.live--
				return e
			}
		}
	}
}

// rehash builds a new generation sized for n live entries (a sixth to a
// third full, so growth doubles the size), with a new seed and no
// tombstones, copies the live entries into it and publishes it;
// BanList.mu must be held. Readers of the old generation keep a
// consistent, at worst slightly stale, view.
func (t *banTable) rehash(n int) *banSlots {
	size := 16
	for size < 3*n {
		size *= 2
	}
	bs := &banSlots{seed: maphash.MakeSeed(), mask: uint64(size - 1), s: make([]banSlot, size)}
	if old := t.slots.Load(); old != nil {
		for i := range old.s {
			e := old.s[i].e.Load()
			if e == nil {
				continue
			}
			h := hash128(bs.seed, e.hi, e.lo)
			j := h & bs.mask
			for bs.s[j].tag.Load() != tagEmpty {
				j = (j + 1) & bs.mask
			}
			bs.s[j].e.Store(e)
			bs.s[j].tag.Store(h | tagBit)
		}
	}
	t.used = t.live
	t.slots.Store(bs)
	return bs
}

// ban rebuilds the Ban that e stores. It does not allocate.
func (t *banTable) ban(e *banEntry) Ban {
	return Ban{
		Prefix:  t.prefix(e),
		Jail:    e.jail,
		Reason:  e.reason,
		Until:   time.Unix(0, e.until).UTC(),
		Count:   e.count,
		Created: time.Unix(0, e.created).UTC(),
	}
}

// CanonicalPrefix validates p and returns it as BanList stores it:
// masked, without a zone, and an IPv4-mapped prefix of at least 96 bits
// folded to IPv4 (the same addresses). ok is false for an invalid p.
// Subscribers that key their own state by prefix (store, firewall) use it
// so their keys match the ban list's.
func CanonicalPrefix(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return p, false
	}
	a, n := p.Addr(), p.Bits()
	if a.Is4In6() && n >= 96 {
		a, n = a.Unmap(), n-96
	}
	return netip.PrefixFrom(a.WithZone(""), n).Masked(), true
}

// addrWords returns a's 16-byte form as two big-endian words.
func addrWords(a netip.Addr) (hi, lo uint64) {
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// wordsAddr is addrWords' inverse: the 16-byte address of hi:lo (an
// IPv4 address comes back IPv4-mapped).
func wordsAddr(hi, lo uint64) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b)
}

// mask128 keeps the first n bits of hi:lo.
func mask128(hi, lo uint64, n int) (uint64, uint64) {
	switch {
	case n >= 128:
		return hi, lo
	case n > 64:
		return hi, lo &^ (math.MaxUint64 >> (n - 64))
	default:
		return hi &^ (math.MaxUint64 >> n), 0
	}
}

// hash128 hashes the 128-bit key hi:lo with seed through hash/maphash
// (the runtime's map hash, AES-based where the CPU has it), so a client
// cannot choose addresses that collide without knowing the seed. It does
// not allocate (TestBanLookupAllocs).
func hash128(seed maphash.Seed, hi, lo uint64) uint64 {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], hi)
	binary.LittleEndian.PutUint64(b[8:], lo)
	return maphash.Bytes(seed, b[:])
}

// unixNano is t.UnixNano, saturated instead of undefined outside the
// years 1678-2262.
func unixNano(t time.Time) int64 {
	switch s := t.Unix(); {
	case s >= math.MaxInt64/int64(time.Second):
		return math.MaxInt64
	case s <= math.MinInt64/int64(time.Second):
		return math.MinInt64
	}
	return t.UnixNano()
}
