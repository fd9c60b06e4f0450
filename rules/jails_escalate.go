package rules

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
)

// Escalate makes a jail ban a whole network once it has banned enough of
// its clients, or once its clients together have offended enough: a
// botnet that spreads over one /24, or an IPv6 attacker that takes a
// fresh /64 of its /48 for every few requests, is then one ban instead
// of hundreds, even when none of its clients reaches MaxRetry. fail2ban
// bans addresses only.
//
// A network is banned when, within the jail's FindTime, After of its
// clients were banned, or its clients made After×MaxRetry offences with
// the offender changing After-1 times at least (counted in windows of
// FindTime that open at the network's first offence; see
// escalator.offend). With MaxRetry 1 every offence bans, and bans alone
// are counted.
type Escalate struct {
	// IPv4 is the length, in bits, of the IPv4 networks counted and
	// banned, 8 to 31. Zero: 24.
	IPv4 int
	// IPv6 is the length, in bits, of the IPv6 networks counted and
	// banned, 16 to 63 and shorter than JailsConfig.IPv6Prefix (IPv6
	// clients are banned by that prefix already). Zero: 48.
	IPv6 int
	// After is how many clients inside one network (IPv4 addresses,
	// IPv6 prefixes of JailsConfig.IPv6Prefix bits) the jail must ban
	// within its FindTime to ban the network, at least 2; After×MaxRetry
	// offences of its clients ban it too. Zero: 5.
	After int
}

const (
	defaultEscalate4     = 24
	defaultEscalate6     = 48
	defaultEscalateAfter = 5
	maxEscalateAfter     = 1000
)

// EscalatedReason is the reason of an escalated ban of jail, made after
// n of its clients were banned: how the dashboard, `gatehouse bans`, the
// admin API and notifications tell such a ban from a client's.
func EscalatedReason(jail string, n int) string {
	return fmt.Sprintf("escalated from %d bans in jail %s", n, jail)
}

// OffenceEscalatedReason is the reason of an escalated ban of jail made
// after n offences of the network's clients (Escalate.After×MaxRetry,
// from After clients or so; see Escalate): EscalatedReason's twin, for
// an attacker whose clients each stay below MaxRetry.
func OffenceEscalatedReason(jail string, n int) string {
	return fmt.Sprintf("escalated from %d offences of several clients in jail %s", n, jail)
}

// escalator is a jail's escalation: per network, the clients banned
// within FindTime (each as its key's two words and its ban time, three
// lanes, After-1 of them at most), a count of its clients' offences in a
// window of FindTime, and the network's own ban history, in a bounded
// table like the jail's clients. Counting the offences costs a report to
// an escalating jail one more shard lock; other jails pay nothing.
type escalator struct {
	bits4, bits6 int // network lengths; bits4 in the 16-byte form (96+IPv4)
	after        int
	// offences is After×MaxRetry: that many offences of a network's
	// clients within one window ban the network (see offend). 0 when
	// MaxRetry is 1: every offence bans, and the bans are counted.
	offences uint32
	nets     *clientTable[escalation]

	made, refused atomic.Uint64
}

// escalation is one network's state in an escalator. 40 bytes.
type escalation struct {
	lastUntil int64 // end of the network's last escalated ban, Unix ns
	// The offences of the network's clients in its current window, which
	// starts at winStart and lasts FindTime: how many, the last
	// offender (its key's words folded into one) and how many times the
	// offender changed from one offence to the next.
	winStart int64
	last     uint64
	offences uint32 // 0: no window open
	switches uint16 // saturates
	bans     uint16 // n of the network's last ban, 0 once forgotten; saturates
	n        uint16 // clients recorded in the lanes
	warned   bool   // its overlap with the never-banned list was logged
}

// newEscalator checks e (defaults applied to a copy) against the jail's
// IPv6 client length and returns the escalator, or the problems found.
func newEscalator(e Escalate, v6bits, capacity int) (*escalator, []string) {
	var problems []string
	if e.IPv4 == 0 {
		e.IPv4 = defaultEscalate4
	}
	if e.IPv6 == 0 {
		e.IPv6 = defaultEscalate6
	}
	if e.After == 0 {
		e.After = defaultEscalateAfter
	}
	if e.IPv4 < 8 || e.IPv4 > 31 {
		problems = append(problems, fmt.Sprintf("escalate ipv4 /%d is not between 8 and 31", e.IPv4))
	}
	if e.IPv6 < 16 || e.IPv6 > 63 || e.IPv6 >= v6bits {
		problems = append(problems, fmt.Sprintf("escalate ipv6 /%d is not between 16 and 63 and shorter than the /%d IPv6 clients are banned by", e.IPv6, v6bits))
	}
	if e.After < 2 || e.After > maxEscalateAfter {
		problems = append(problems, fmt.Sprintf("escalate after %d is not between 2 and %d", e.After, maxEscalateAfter))
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return &escalator{
		bits4: 96 + e.IPv4, bits6: e.IPv6, after: e.After,
		// Every network with an offence is tracked: as many as the
		// jail's clients at most.
		nets: newClientTable[escalation](capacity, 3*(e.After-1)),
	}, nil
}

// netKey returns the network of the client key k (of an unmapped address
// ip) as a table key.
func (x *escalator) netKey(k clientKey, ip netip.Addr) clientKey {
	bits := x.bits6
	if ip.Is4() {
		bits = x.bits4
	}
	hi, lo := mask128(k.hi, k.lo, bits)
	return clientKey{hi, lo}
}

// netPrefix returns the network of ip.
func (x *escalator) netPrefix(ip netip.Addr) netip.Prefix {
	if ip.Is4() {
		p, _ := ip.Prefix(x.bits4 - 96)
		return p
	}
	p, _ := ip.Prefix(x.bits6)
	return p
}

// record notes that client m was banned at t (Unix ns) in network st's
// lanes, forgetting clients banned more than findTime before t, and
// reports whether that makes After distinct clients: then the lanes are
// cleared for the network's next round.
func (x *escalator) record(st *escalation, lanes []int64, m clientKey, t, findTime int64) bool {
	w := x.prune(st, lanes, m, t, findTime)
	if w+1 >= x.after {
		st.n = 0
		return true
	}
	x.add(st, lanes, w, m, t)
	return false
}

// prune drops from st's lanes the clients banned more than findTime
// before t, and m (so that a client banned again counts once), and
// returns how many clients are left.
func (x *escalator) prune(st *escalation, lanes []int64, m clientKey, t, findTime int64) int {
	w := 0
	for i := range int(st.n) {
		mhi, mlo, mt := uint64(lanes[3*i]), uint64(lanes[3*i+1]), lanes[3*i+2]
		if t-mt > findTime || mhi == m.hi && mlo == m.lo {
			continue // out of the window, or banned again: counted once
		}
		copy(lanes[3*w:3*w+3], lanes[3*i:3*i+3])
		w++
	}
	st.n = uint16(w)
	return w
}

// dropUnbanned forgets the clients in st's lanes whose ban was lifted
// before it could have ended: banned after since (Unix ns: now less the
// jail's bantime) and no longer on bans. A ban that ran its course
// still counts within findtime; one an admin lifted does not, so a few
// neighbours cannot bring back a client the admin let in.
func (x *escalator) dropUnbanned(st *escalation, lanes []int64, bans *BanList, since int64) {
	w := 0
	for i := range int(st.n) {
		if lanes[3*i+2] > since && !bans.banned(wordsAddr(uint64(lanes[3*i]), uint64(lanes[3*i+1])).Unmap()) {
			continue
		}
		copy(lanes[3*w:3*w+3], lanes[3*i:3*i+3])
		w++
	}
	st.n = uint16(w)
}

// add appends client m banned at t to st's lanes, which hold w < After-1
// clients.
func (x *escalator) add(st *escalation, lanes []int64, w int, m clientKey, t int64) {
	lanes[3*w], lanes[3*w+1], lanes[3*w+2] = int64(m.hi), int64(m.lo), t
	st.n = uint16(w + 1)
}

// escalation counts b, a ban by jl (which escalates), towards its
// network and returns the network's ban and true when that
// makes After clients of it within FindTime; it counts a network that
// may never be banned as refused, and logs that once per network.
func (j *Jails) escalation(jl *jail, b Ban) (Ban, bool) {
	x := jl.esc
	ip := b.Prefix.Addr().Unmap()
	if !b.Prefix.IsValid() || ip.Is4() && b.Prefix.Bits() != 32 || ip.Is6() && b.Prefix.Bits() != j.v6bits {
		return Ban{}, false // a /128 narrowed around an allowed address: its network is never banned
	}
	at := unixNano(b.Created)
	m := j.key(ip)
	k := x.netKey(m, ip)
	t := x.nets
	h := t.hash(k)
	sh := t.shard(h)
	sh.mu.Lock()
	i, _ := t.acquire(sh, k, h)
	st := &sh.slots[i].state
	lanes := sh.lanes[i*t.lanes : (i+1)*t.lanes]
	if j.bans != nil { // nil for a DryRun, whose bans are never lifted
		x.dropUnbanned(st, lanes, j.bans, at-int64(jl.banTime))
	}
	if !x.record(st, lanes, m, at, jl.findTime) {
		sh.mu.Unlock()
		return Ban{}, false
	}
	return j.networkBan(jl, sh, st, ip, b.Created, EscalatedReason(jl.name, x.after))
}

// networkBan decides the ban of ip's network, whose state st is in shard
// sh, locked, of jl's escalator, once enough of its clients offended or
// were banned: it unlocks sh and returns the ban, made at created for
// reason, or false when the network may never be banned (counted as
// refused, and logged once per network).
func (j *Jails) networkBan(jl *jail, sh *clientShard[escalation], st *escalation, ip netip.Addr, created time.Time, reason string) (Ban, bool) {
	x := jl.esc
	net := x.netPrefix(ip)
	if j.neverEscalated(net) {
		warn := !st.warned
		st.warned = true
		sh.mu.Unlock()
		x.refused.Add(1)
		if warn {
			j.log.Warn("escalation refused: the network holds allowed addresses or trusted proxies; its clients stay banned one by one",
				"jail", jl.name, "prefix", net, "reason", reason)
		}
		return Ban{}, false
	}
	at := unixNano(created)
	if st.lastUntil != 0 && at-st.lastUntil > jl.forget {
		st.bans = 0
	}
	if st.bans < math.MaxUint16 {
		st.bans++
	}
	d := jl.duration(int(st.bans))
	st.lastUntil = at + min(int64(d), math.MaxInt64-at)
	// Both counts start afresh: the network's ban replaces its clients'.
	st.n, st.offences, st.switches = 0, 0, 0
	count := int(st.bans)
	sh.mu.Unlock()
	return Ban{Prefix: net, Jail: jl.name, Reason: reason, Until: created.Add(d), Count: count, Created: created}, true
}

// escalate counts b, a ban jl just made (or the fleet made for it), and
// bans b's network when that makes After clients of it within FindTime.
// A jail without escalation returns at once.
func (j *Jails) escalate(jl *jail, b Ban) {
	if jl.esc == nil || j.bans == nil {
		return
	}
	if eb, ok := j.escalation(jl, b); ok {
		j.banNetwork(jl, eb)
	}
}

// escalateOffence counts an offence by ip that jl counted at at towards
// ip's network, and bans the network when that makes After×MaxRetry
// offences of its clients within its window (see offend).
func (j *Jails) escalateOffence(jl *jail, ip netip.Addr, at time.Time) {
	if eb, ok := j.offenceEscalation(jl, ip, at); ok && j.bans != nil {
		j.banNetwork(jl, eb)
	}
}

// offend counts an offence by client m at t (Unix ns) in network st's
// window and reports whether that makes x.offences (After×MaxRetry)
// offences in it, with the offender changing After-1 times at least:
// then the window is closed for the next round.
//
// A window opens at the first offence after the previous one closed
// and lasts findTime, ends included. The clients are told apart by the
// last offender alone and a count of changes, in 10 bytes whatever the
// number of clients: a change means two distinct clients. Clients that
// each stay below MaxRetry make After×MaxRetry offences from more than
// After clients, so more than After-1 changes; one client alone never
// makes a change, and two busy ones are banned at MaxRetry each, after
// which their offences are not counted. (The key's two words are folded
// into one; two clients that fold alike count as one, which can only
// delay an escalation, never cause one.) Counting by windows rather
// than sliding over each offence time keeps a network's state fixed in
// size: the offences that ban always fall within findTime, but an
// attack at just the threshold's rate that straddles two windows may
// take up to twice as long.
func (x *escalator) offend(st *escalation, m clientKey, t, findTime int64) bool {
	c := m.hi ^ m.lo
	if st.offences == 0 || t-st.winStart > findTime {
		st.winStart, st.offences, st.switches, st.last = t, 0, 0, c
	}
	if c != st.last {
		st.last = c
		if st.switches < math.MaxUint16 {
			st.switches++
		}
	}
	if st.offences < math.MaxUint32 {
		st.offences++
	}
	if st.offences < x.offences || int(st.switches) < x.after-1 {
		return false
	}
	st.offences, st.switches = 0, 0
	return true
}

// offenceEscalation counts an offence by ip (valid, not allowed) that jl
// counted at at towards ip's network, and returns the network's ban and
// true when that makes After×MaxRetry offences of its clients in
// the network's window (see offend); it counts a network that may never
// be banned as refused. The offences of a network serving its ban are
// not counted, as a banned client's are not.
func (j *Jails) offenceEscalation(jl *jail, ip netip.Addr, at time.Time) (Ban, bool) {
	x := jl.esc
	ip = ip.Unmap().WithZone("")
	now := unixNano(at)
	m := j.key(ip)
	k := x.netKey(m, ip)
	t := x.nets
	h := t.hash(k)
	sh := t.shard(h)
	sh.mu.Lock()
	i, _ := t.acquire(sh, k, h)
	st := &sh.slots[i].state
	if st.lastUntil > now && (j.bans == nil || j.bans.banned(ip)) || !x.offend(st, m, now, jl.findTime) {
		sh.mu.Unlock()
		return Ban{}, false
	}
	return j.networkBan(jl, sh, st, ip, at, OffenceEscalatedReason(jl.name, int(x.offences)))
}

// banNetwork puts eb, the ban of a network that jl decided, on the ban
// list in place of its clients' bans; a ban not made gives the network
// its place in the increment sequence back.
func (j *Jails) banNetwork(jl *jail, eb Ban) {
	x, count := jl.esc, eb.Count
	ip := eb.Prefix.Addr()
	k := x.netKey(j.key(ip), ip)
	var err error
	if !eb.Until.After(j.now()) {
		err = errEnded
	} else {
		var stored Ban
		var replaced int
		stored, replaced, err = j.bans.Escalate(eb)
		if err == nil {
			x.made.Add(1)
			j.log.Info("ban escalated", append(banAttrs(stored), "replaced", replaced)...)
			return
		}
	}
	// Not made: the network's place in the increment sequence stays.
	first := false
	x.update(k, func(st *escalation) {
		if int(st.bans) == count {
			st.bans--
		}
		if errors.Is(err, ErrAllowed) {
			first, st.warned = !st.warned, true
		}
	})
	switch {
	case errors.Is(err, errEnded):
		j.log.Info("escalation not made: it would already have ended", banAttrs(eb)...)
	case errors.Is(err, ErrCovered):
		// Another escalation of the network, or a longer ban, came first.
		j.log.Debug("escalation not needed: a ban at least as long covers the network", append(banAttrs(eb), "err", err)...)
	case errors.Is(err, ErrAllowed):
		// The ban list's allow list is the one of the start; a reload
		// may have narrowed the jails'.
		x.refused.Add(1)
		if first {
			j.log.Warn("escalation refused: the network holds an address never banned; its clients stay banned one by one",
				append(banAttrs(eb), "err", err)...)
		}
	default:
		j.log.Warn("escalation refused", append(banAttrs(eb), "err", err)...)
	}
}

// errEnded is a ban not made because, decided from a past offence, it
// would already have ended.
var errEnded = errors.New("the ban would already have ended")

// update calls f with network k's state, under its shard's lock.
func (x *escalator) update(k clientKey, f func(*escalation)) {
	t := x.nets
	h := t.hash(k)
	sh := t.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, _ := t.acquire(sh, k, h)
	f(&sh.slots[i].state)
}

// neverEscalated reports whether net overlaps the allow list or the
// other prefixes no escalated ban may cover (JailsConfig.NoEscalate).
func (j *Jails) neverEscalated(net netip.Prefix) bool {
	return j.overlapsAllow(net) || j.overlapsNoEscalate(net)
}

// restoreEscalation gives jl's escalator b, a ban kept across a restart:
// an escalated ban restores its network's ban history, a client's ban
// made within FindTime of now counts towards its network again (without
// escalating: restoring never bans). It reports whether b was taken.
func (j *Jails) restoreEscalation(jl *jail, b Ban, now time.Time) bool {
	x := jl.esc
	p, ok := CanonicalPrefix(b.Prefix)
	if x == nil || !ok {
		return false
	}
	ip := p.Addr()
	bits := x.bits6
	if ip.Is4() {
		bits = x.bits4 - 96
	}
	if j.neverEscalated(x.netPrefix(ip)) {
		return false
	}
	m := j.key(ip)
	k := x.netKey(m, ip)
	t := x.nets
	h := t.hash(k)
	sh := t.shard(h)
	switch {
	case p.Bits() == bits:
		sh.mu.Lock()
		i, _ := t.acquire(sh, k, h)
		st := &sh.slots[i].state
		if until := unixNano(b.Until); until > st.lastUntil {
			st.lastUntil = until
			st.bans = uint16(min(b.Count, math.MaxUint16))
		}
		sh.mu.Unlock()
		return true
	case ip.Is4() && p.Bits() == 32 || ip.Is6() && p.Bits() == j.v6bits:
		created := unixNano(b.Created)
		if unixNano(now)-created > jl.findTime || b.Until.Before(now) {
			return false
		}
		sh.mu.Lock()
		i, _ := t.acquire(sh, k, h)
		st := &sh.slots[i].state
		lanes := sh.lanes[i*t.lanes : (i+1)*t.lanes]
		// Full, it stays as it is: the next ban the jail makes there
		// escalates. (A fleet node hears of each ban a peer made here
		// before the jail that decided it counts it.)
		if w := x.prune(st, lanes, m, created, jl.findTime); w+1 < x.after {
			x.add(st, lanes, w, m, created)
		}
		sh.mu.Unlock()
		return true
	}
	return false
}

// netOffence is an offence by client m at at (Unix ns) counted by jl.
type netOffence struct {
	jl *jail
	m  clientKey
	at int64
}

// restoreNetworkOffences counts offences, the offence times of clients
// kept across a restart, towards their networks, in time order and
// without banning: a network whose count they fill is left one offence
// short, so that the next offence there escalates. Offences older than
// FindTime are dropped. The networks' counts miss the offences that
// banned a client before the restart (a client's ban clears its
// offence times): restoring errs on the side of not escalating.
func (j *Jails) restoreNetworkOffences(offences []netOffence) {
	slices.SortFunc(offences, func(a, b netOffence) int { return cmp.Compare(a.at, b.at) })
	now := unixNano(j.now())
	for _, o := range offences {
		x := o.jl.esc
		if now-o.at > o.jl.findTime {
			continue
		}
		ip := wordsAddr(o.m.hi, o.m.lo).Unmap()
		k := x.netKey(o.m, ip)
		t := x.nets
		h := t.hash(k)
		sh := t.shard(h)
		sh.mu.Lock()
		i, _ := t.acquire(sh, k, h)
		st := &sh.slots[i].state
		prev := *st
		if x.offend(st, o.m, o.at, o.jl.findTime) {
			// Full: it stays one offence short, with the changes.
			*st = prev
			if c := o.m.hi ^ o.m.lo; c != st.last {
				st.last = c
				if st.switches < math.MaxUint16 {
					st.switches++
				}
			}
		}
		sh.mu.Unlock()
	}
}

// Escalations returns how many times jail banned a network
// (JailConfig.Escalate) and how many escalations it refused because the
// network overlaps the allow list or another never-banned prefix; zeros
// for a jail that is not configured or does not escalate.
func (j *Jails) Escalations(jail string) (made, refused uint64) {
	if jl := j.jails[jail]; jl != nil && jl.esc != nil {
		return jl.esc.made.Load(), jl.esc.refused.Load()
	}
	return 0, 0
}

// handOverEscalation carries old's escalation totals over to jl, and
// copies the networks' state of old's escalator into jl's when both
// escalate by the same lengths and count the same clients; otherwise the
// new settings start counting afresh.
func (jl *jail) handOverEscalation(old *jail, sameClients bool) {
	x, ox := jl.esc, old.esc
	if x == nil || ox == nil {
		return
	}
	x.made.Add(ox.made.Load())
	x.refused.Add(ox.refused.Load())
	if !sameClients || x.bits4 != ox.bits4 || x.bits6 != ox.bits6 {
		return
	}
	for si := range ox.nets.shards {
		osh := &ox.nets.shards[si]
		osh.mu.Lock()
		for i, slot := range osh.slots {
			olanes := osh.lanes[i*ox.nets.lanes : (i+1)*ox.nets.lanes]
			t := x.nets
			h := t.hash(slot.key)
			sh := t.shard(h)
			sh.mu.Lock()
			n, _ := t.acquire(sh, slot.key, h)
			st := &sh.slots[n].state
			*st = slot.state
			keep := min(int(st.n), x.after-1)
			lanes := sh.lanes[n*t.lanes : (n+1)*t.lanes]
			copy(lanes, olanes[3*(int(st.n)-keep):3*int(st.n)])
			st.n = uint16(keep)
			sh.mu.Unlock()
		}
		osh.mu.Unlock()
	}
}
