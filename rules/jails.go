package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Well-known jail names the middleware reports to.
const (
	// JailAuth receives failed basic-auth logins.
	JailAuth = "auth"
)

// JailConfig configures one jail of the counting kind, with fail2ban's
// semantics: MaxRetry offences by one client within FindTime ban it for
// BanTime; with Increment, repeat offenders' bans grow. Durations must
// not be negative.
//
// The flood kind (a per-client token bucket with Rate and Burst, built on
// golang.org/x/time/rate) is the next kind; see the TODO in NewJails.
type JailConfig struct {
	// MaxRetry is how many offences within FindTime ban a client
	// (fail2ban maxretry): the MaxRetry-th one bans. Each tracked client
	// keeps its last MaxRetry-1 offence times, 8 bytes each, so it is at
	// most 1000. Zero: 5.
	MaxRetry int
	// FindTime is the sliding window (fail2ban findtime): a client is
	// banned when an offence and its MaxRetry-1 predecessors all fall
	// within FindTime, ends included. Zero: 10 minutes.
	FindTime time.Duration
	// BanTime is how long a first ban lasts (fail2ban bantime). Zero: 10
	// minutes.
	BanTime time.Duration
	// Increment makes repeat offenders' bans grow (fail2ban
	// bantime.increment). nil: every ban lasts BanTime.
	Increment *Increment
	// Forget is how long a client's ban history is kept after its last
	// ban ends: an offender who comes back later than that starts again
	// at BanTime, as a first offender. Zero: 7 days.
	Forget time.Duration
	// Escalate makes the jail ban a whole network once it has banned
	// Escalate.After of its clients within FindTime, or its clients made
	// After×MaxRetry offences, replacing their bans (see Escalate and
	// BanList.Escalate). The network's ban lasts
	// BanTime, grown by Increment for a network escalated again within
	// Forget; clients banned for longer keep their own bans. A network
	// that overlaps JailsConfig.Allow or NoEscalate is never banned. nil:
	// the jail bans clients only.
	Escalate *Escalate
}

// Increment makes the n-th ban of a client (counted within the jail's
// Forget window) last BanTime × Factor^(n-1), at most Max.
type Increment struct {
	// Factor is the growth per ban, at least 1. Zero: 2 (fail2ban's
	// doubling).
	Factor float64
	// Max caps a ban's duration and must not be below BanTime. Zero: no
	// cap (durations stop growing at 10 years).
	Max time.Duration
}

// JailsConfig configures all jails.
type JailsConfig struct {
	// Jails maps jail names ("probes", "auth", "hotlink", …) to their
	// config. Offences reported to a name not in it are counted by
	// Offences and ban nobody.
	Jails map[string]JailConfig
	// Allow lists prefixes whose clients are never counted nor banned
	// (the config's allow key). A ban that would cover an allowed address
	// (an IPv6 /64 around an allowed /128) is narrowed to the offending
	// address. Must be valid prefixes.
	Allow []netip.Prefix
	// IPv6Prefix is the length, in bits, by which IPv6 clients are
	// counted and banned: a client controls at least its /64, so all of
	// it is one client. IPv4 clients are single addresses. 32 to 128.
	// Zero: 64.
	IPv6Prefix int
	// Capacity bounds the clients each jail tracks (offences in the
	// window and ban history), since clients are client input. A jail
	// splits it between up to 64 shards of at least 1,024 clients; a new
	// client in a full shard evicts the one there not seen for the
	// longest while (CLOCK, an LRU approximation), forgetting its
	// offences and ban history. Shards fill unevenly, so a full jail
	// tracks a little less (99.7% at 1,000,000). A tracked client costs
	// about 41 + 8×(MaxRetry-1) bytes (measured: 74 bytes with MaxRetry
	// 5, 7 MiB per jail at the default capacity, 70 MiB at 1,000,000).
	// Zero: 100,000.
	Capacity int
	// Shared names the jails whose offences Sharer counts fleet-wide
	// (fleet.share_jails); offences of other jails, and those Sharer
	// turns down, are counted here. Names not in Jails are ignored.
	Shared []string
	// Sharer counts the offences of the Shared jails across the nodes of
	// a fleet (rules/fleet). nil: every jail counts locally.
	Sharer OffenceSharer
	// NoEscalate lists prefixes, besides Allow, that no escalated ban
	// may overlap: those the kernel firewall never drops (loopback), since
	// it would leave such a network out of the kernel while its clients'
	// entries are dropped, and the host's own addresses. Clients inside
	// them are still banned one by one, and an IPv6 client whose
	// IPv6Prefix overlaps one is banned by its address alone.
	NoEscalate []netip.Prefix
}

const (
	defaultMaxRetry   = 5
	defaultFindTime   = 10 * time.Minute
	defaultBanTime    = 10 * time.Minute
	defaultForget     = 7 * 24 * time.Hour
	defaultFactor     = 2
	defaultIPv6Prefix = 64
	defaultCapacity   = 100_000
	maxMaxRetry       = 1000
	maxBanTime        = 10 * 365 * 24 * time.Hour
)

// Jails receives offences reported by the middleware, by jail name, and
// decides bans with fail2ban's semantics (see JailConfig); the bans go
// to a BanList. Report never blocks the request path, and does not
// allocate for a client already tracked that is not banned by it. Jails
// is safe for concurrent use.
//
// Each jail keeps per-client state in a bounded table (see
// JailsConfig.Capacity): a client is an IPv4 address or an IPv6 prefix of
// JailsConfig.IPv6Prefix bits, IPv4-mapped IPv6 folded to IPv4.
type Jails struct {
	log   *slog.Logger
	now   func() time.Time
	bans  *BanList // nil: decide bans, enforce none
	allow []netip.Prefix
	// noEscalate: see JailsConfig.NoEscalate.
	noEscalate []netip.Prefix
	v6bits     int
	jails      map[string]*jail // immutable after NewJails

	mu      sync.RWMutex
	unknown map[string]*atomic.Uint64 // offences for unconfigured jail names; names come from code and config

	sharer OffenceSharer // nil: no jail is shared; see sharedoffence.go

	// next, once set by HandOver, receives every offence reported here.
	next atomic.Pointer[Jails]
	// handing is held by HandOver while it copies the state it takes
	// over: offences passed on to j wait for it, so that none is counted
	// before the count it adds to is here.
	handing sync.RWMutex
}

// successor returns the Jails j was handed over to, once the hand-over is
// complete, or nil.
func (j *Jails) successor() *Jails {
	n := j.next.Load()
	if n != nil {
		n.handing.RLock()
		//lint:ignore SA2001 an empty critical section: waiting for HandOver is the point
		n.handing.RUnlock()
	}
	return n
}

// jail is one configured jail of the counting kind.
type jail struct {
	name     string
	ring     int   // MaxRetry-1: offence times kept per client
	findTime int64 // ns
	banTime  time.Duration
	factor   float64 // 0: no increment
	max      time.Duration
	forget   int64 // ns
	shared   bool  // counted fleet-wide by Jails.sharer; see sharedoffence.go
	clients  *clientTable[offenceState]
	esc      *escalator // nil: the jail does not escalate

	// untracked counts the offences of clients that are not tracked
	// (allowed, invalid); those of tracked clients are counted in their
	// shard's tally, so reporters on different cores do not fight over
	// one counter's cache line.
	untracked atomic.Uint64
}

// offences returns how many offences jl has received.
func (jl *jail) offences() uint64 {
	n := jl.untracked.Load()
	for i := range jl.clients.shards {
		n += jl.clients.shards[i].tally.Load()
	}
	return n
}

// offenceState is a client's state in a counting jail; its last ring
// offence times are the table's lanes. 16 bytes.
type offenceState struct {
	lastUntil int64  // end of the client's last ban by this jail, Unix ns; 0: none
	bans      uint16 // n of that ban, 0 once forgotten; saturates
	n, head   uint16 // offence times in the ring, index of the oldest
}

// NewJails validates cfg, applies its defaults and returns the jails.
// bans receives the bans; nil: bans are decided and logged but not
// enforced (what the middleware tests want). log nil: discard. Every
// problem of cfg is reported: one error per jail (wrapping its problems,
// "; "-separated) or global setting, joined.
func NewJails(cfg JailsConfig, bans *BanList, log *slog.Logger) (*Jails, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	j := &Jails{
		log:     log,
		now:     time.Now,
		bans:    bans,
		v6bits:  cfg.IPv6Prefix,
		jails:   make(map[string]*jail, len(cfg.Jails)),
		unknown: map[string]*atomic.Uint64{},
	}
	var errs []error
	if j.v6bits == 0 {
		j.v6bits = defaultIPv6Prefix
	}
	if j.v6bits < 32 || j.v6bits > 128 {
		errs = append(errs, fmt.Errorf("ipv6_prefix: %d is not between 32 and 128", cfg.IPv6Prefix))
	}
	capacity := cfg.Capacity
	if capacity == 0 {
		capacity = defaultCapacity
	}
	if capacity < 0 {
		errs = append(errs, fmt.Errorf("jails capacity: %d is negative", cfg.Capacity))
	}
	for i, p := range cfg.Allow {
		c, ok := CanonicalPrefix(p)
		if !ok {
			errs = append(errs, fmt.Errorf("allow[%d]: %s is not a valid prefix", i, p))
			continue
		}
		j.allow = append(j.allow, c)
	}
	for i, p := range cfg.NoEscalate {
		c, ok := CanonicalPrefix(p)
		if !ok {
			errs = append(errs, fmt.Errorf("no-escalate[%d]: %s is not a valid prefix", i, p))
			continue
		}
		j.noEscalate = append(j.noEscalate, c)
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Jails)) {
		// TODO(#7): the flood kind. JailConfig gains Rate (requests/s) and
		// Burst; a config with Rate set builds a flood jail instead: a
		// clientTable of per-client token buckets (golang.org/x/time/rate
		// state, no lanes) whose Report bans a client that runs dry, and
		// jail grows a kind switch in report.
		jl, err := newJail(name, cfg.Jails[name], max(capacity, 1), j.v6bits)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		j.jails[name] = jl
	}
	j.share(cfg)
	switch len(errs) {
	case 0:
		return j, nil
	case 1:
		return nil, errs[0]
	}
	return nil, errors.Join(errs...)
}

func newJail(name string, c JailConfig, capacity, v6bits int) (*jail, error) {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	if name == "" {
		bad("empty name")
	}
	if c.MaxRetry == 0 {
		c.MaxRetry = defaultMaxRetry
	}
	if c.MaxRetry < 1 || c.MaxRetry > maxMaxRetry {
		bad("maxretry %d is not between 1 and %d", c.MaxRetry, maxMaxRetry)
	}
	for _, d := range []struct {
		key string
		v   *time.Duration
		def time.Duration
	}{
		{"findtime", &c.FindTime, defaultFindTime},
		{"bantime", &c.BanTime, defaultBanTime},
		{"forget", &c.Forget, defaultForget},
	} {
		if *d.v < 0 {
			bad("%s %s is negative", d.key, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.BanTime > maxBanTime {
		bad("bantime %s is over %s", c.BanTime, maxBanTime)
	}
	jl := &jail{
		name:     name,
		ring:     c.MaxRetry - 1,
		findTime: int64(c.FindTime),
		banTime:  c.BanTime,
		max:      maxBanTime,
		forget:   int64(c.Forget),
	}
	if inc := c.Increment; inc != nil {
		jl.factor = inc.Factor
		if jl.factor == 0 {
			jl.factor = defaultFactor
		}
		if jl.factor < 1 || math.IsInf(jl.factor, 0) || math.IsNaN(jl.factor) {
			bad("increment factor %v is not a number of at least 1", inc.Factor)
		}
		switch {
		case inc.Max < 0:
			bad("increment max %s is negative", inc.Max)
		case inc.Max > 0 && inc.Max < c.BanTime:
			bad("increment max %s is less than bantime %s", inc.Max, c.BanTime)
		case inc.Max > 0:
			jl.max = min(inc.Max, maxBanTime)
		}
	}
	if c.Escalate != nil {
		var bad []string
		jl.esc, bad = newEscalator(*c.Escalate, v6bits, capacity)
		problems = append(problems, bad...)
		if jl.esc != nil && c.MaxRetry > 1 {
			// With MaxRetry 1 each offence bans: the bans say it all.
			jl.esc.offences = uint32(jl.esc.after * c.MaxRetry)
		}
	}
	if len(problems) > 0 {
		// Wrapped, so that proxy/config, which names the jail's field
		// itself, can unwrap the bare problem.
		return nil, fmt.Errorf("jail %q: %w", name, errors.New(strings.Join(problems, "; ")))
	}
	jl.clients = newClientTable[offenceState](capacity, jl.ring)
	return jl, nil
}

// Report records one offence by ip against jail, for reason (a short
// constant such as "bad password"; never a credential), and bans the
// client when that makes MaxRetry within FindTime. Allowed and invalid
// addresses, and clients serving a ban by this jail, are counted by
// Offences only. Report never blocks and is cheap: for a tracked client
// it takes one shard lock of the jail (and one of its escalation's, for
// the client's network, in a jail with Escalate and MaxRetry above 1)
// and does not allocate.
func (j *Jails) Report(jail string, ip netip.Addr, reason string) {
	j.reportAt(jail, ip, reason, time.Time{})
}

// ReportAt is Report for an offence that happened at at, such as a log
// line's own timestamp: it counts within FindTime by at, and a ban it
// triggers ends BanTime after at (a ban that would already have ended is
// not made). at after now counts as now. An offence of a jail shared
// fleet-wide is counted at the time it reaches the fleet.
func (j *Jails) ReportAt(jail string, ip netip.Addr, reason string, at time.Time) {
	if now := j.now(); at.After(now) {
		at = now
	}
	j.reportAt(jail, ip, reason, at)
}

// reportAt is Report at time at; zero: now.
func (j *Jails) reportAt(jail string, ip netip.Addr, reason string, at time.Time) {
	if n := j.successor(); n != nil {
		// Handed over by a reload: the successor counts it.
		n.reportAt(jail, ip, reason, at)
		return
	}
	if j.log.Enabled(context.Background(), slog.LevelDebug) {
		j.log.Debug("offence", "jail", jail, "client_ip", ip, "reason", reason)
	}
	if j.sharer != nil && j.offerShared(jail, ip, reason) {
		return
	}
	if at.IsZero() {
		at = j.now()
	}
	jl := j.jails[jail]
	b, ok, counted, moved := j.count(jl, jail, ip, reason, at)
	if moved {
		// Handed over while this offence was on its way: the client's
		// shard was already copied.
		j.successor().reportAt(jail, ip, reason, at)
		return
	}
	if counted && jl.esc != nil && jl.esc.offences != 0 {
		// The network first: a client inside a network banned for as
		// long gets no ban of its own.
		j.escalateOffence(jl, ip, at)
	}
	if ok {
		j.ban(jl, b)
	}
}

// ban puts b, the ban of a client jl decided, on the ban list, and
// counts it towards the client's network when jl escalates.
func (j *Jails) ban(jl *jail, b Ban) {
	if !b.Until.After(j.now()) {
		j.log.Info("ban not made: it would already have ended", banAttrs(b)...)
		return
	}
	if j.bans == nil {
		j.log.Info("ban not enforced: no ban list", banAttrs(b)...)
		return
	}
	stored, err := j.bans.Ban(b)
	if errors.Is(err, ErrCovered) {
		j.log.Debug("ban not stored: a longer-lasting ban of its network covers it", append(banAttrs(b), "err", err)...)
		return
	}
	if err != nil {
		j.log.Warn("ban refused", append(banAttrs(b), "err", err)...)
		return
	}
	j.log.Info("ban", banAttrs(stored)...)
	j.escalate(jl, stored)
}

func banAttrs(b Ban) []any {
	return []any{
		"jail", b.Jail, "prefix", b.Prefix, "reason", b.Reason, "count", b.Count,
		"until", b.Until, "ban_seconds", b.Until.Sub(b.Created).Seconds(),
	}
}

// Offences returns how many offences jail has received, whether or not
// they counted towards a ban (allowed and already banned clients too).
func (j *Jails) Offences(jail string) uint64 {
	if jl := j.jails[jail]; jl != nil {
		return jl.offences()
	}
	j.mu.RLock()
	defer j.mu.RUnlock()
	if c := j.unknown[jail]; c != nil {
		return c.Load()
	}
	return 0
}

// RestoreHistory tells the jail that decided b about it, so that a
// client banned before a restart keeps its place in the increment
// sequence and is not counted while its ban lasts: the store calls it at
// start for the bans and ban history it kept. It reports whether b was
// taken: its jail is configured and its prefix is one this jail bans (an
// IPv4 /32, an IPv6 prefix of IPv6Prefix or 128 bits, or a network of
// the jail's Escalate lengths) outside the allow list. A network's ban
// keeps its place in the network's increment sequence; a client's ban
// made within FindTime counts towards its network's escalation again. It
// never bans.
func (j *Jails) RestoreHistory(b Ban) bool {
	jl := j.jails[b.Jail]
	p, ok := CanonicalPrefix(b.Prefix)
	if jl == nil || !ok || b.Count < 1 {
		return false
	}
	escalated := j.restoreEscalation(jl, b, j.now())
	ip := p.Addr()
	if escalated && (ip.Is4() && p.Bits() < 32 || ip.Is6() && p.Bits() < j.v6bits) {
		return true // a network's ban, not a client's
	}
	if ip.Is4() && p.Bits() != 32 || ip.Is6() && p.Bits() != j.v6bits && p.Bits() != 128 || j.allowed(ip) {
		return false
	}
	k := j.key(ip)
	t := jl.clients
	h := t.hash(k)
	sh := t.shard(h)
	sh.mu.Lock()
	i, _ := t.acquire(sh, k, h)
	st := &sh.slots[i].state
	if until := unixNano(b.Until); until > st.lastUntil {
		st.lastUntil = until
		st.bans = uint16(min(b.Count, math.MaxUint16))
	}
	sh.mu.Unlock()
	return true
}

// HandOver makes j the successor of prev, for a reload that changed the
// jails' settings. From then on prev passes every offence reported to it
// (by requests still in flight on the old chain) on to j, and j takes over
// the state of every jail of prev it has by the same name: each client's
// latest offence times (as many as j's MaxRetry keeps, newest first,
// judged from then on under j's MaxRetry and FindTime), its ban history,
// and the jail's offence total. Without it a reload resets every count,
// and a scanner that spreads its probes over reloads is never banned.
// Allowed clients are dropped; IPv6 clients are carried only
// when IPv6Prefix is unchanged, since a /64's count says nothing about one
// /56. Call it once j is sure to serve, right before the swap; prev must
// not be handed over twice.
func (j *Jails) HandOver(prev *Jails) {
	if prev == nil || prev == j {
		return
	}
	j.handing.Lock()
	defer j.handing.Unlock()
	prev.next.Store(j)
	var scratch []int64
	for name, jl := range j.jails {
		old := prev.jails[name]
		if old == nil || old.shared != jl.shared {
			continue
		}
		jl.untracked.Add(old.offences())
		jl.handOverEscalation(old, prev.v6bits == j.v6bits)
		for si := range old.clients.shards {
			sh := &old.clients.shards[si]
			sh.mu.Lock()
			for i, slot := range sh.slots {
				ip := wordsAddr(slot.key.hi, slot.key.lo).Unmap() // an IPv4 address, or an IPv6 prefix's first
				if ip.Is6() && prev.v6bits != j.v6bits || j.allowed(ip) {
					continue
				}
				ring := sh.lanes[i*old.ring : (i+1)*old.ring]
				scratch = jl.adopt(slot.key, slot.state, ring, scratch)
			}
			sh.mu.Unlock()
		}
	}
}

// adopt merges into client k's state in jl another jail's: st and its
// ring of offence times (oldest at st.head). The ban history is the later
// of the two; of the offence times, those jl already holds and the
// other's, the newest that fit jl's ring are kept (offences passed on
// during a hand-over wait for it, so jl holds none of those). scratch is
// reused between calls; adopt returns it.
func (jl *jail) adopt(k clientKey, st offenceState, ring []int64, scratch []int64) []int64 {
	t := jl.clients
	h := t.hash(k)
	sh := t.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, _ := t.acquire(sh, k, h)
	dst := &sh.slots[i].state
	if st.lastUntil > dst.lastUntil {
		dst.lastUntil, dst.bans = st.lastUntil, max(dst.bans, st.bans)
	}
	lanes := sh.lanes[i*jl.ring : (i+1)*jl.ring]
	scratch = scratch[:0]
	for n := range int(dst.n) {
		scratch = append(scratch, lanes[(int(dst.head)+n)%len(lanes)])
	}
	for n := range int(st.n) {
		scratch = append(scratch, ring[(int(st.head)+n)%len(ring)])
	}
	slices.Sort(scratch)
	keep := min(len(scratch), jl.ring)
	copy(lanes, scratch[len(scratch)-keep:])
	dst.n, dst.head = uint16(keep), 0
	return scratch
}

// report is Report's decision at time at, without side effects beyond
// the jails' state: it returns the client's ban that follows, if one
// does, and its network's, if an escalating jail bans it by offences
// (see Escalate).
func (j *Jails) report(name string, ip netip.Addr, reason string, at time.Time) (b Ban, ok bool, nb Ban, escalated bool) {
	jl := j.jails[name]
	b, ok, counted, _ := j.count(jl, name, ip, reason, at)
	if counted && jl.esc != nil && jl.esc.offences != 0 {
		nb, escalated = j.offenceEscalation(jl, ip, at)
	}
	return b, ok, nb, escalated
}

// count is report's count of the offence by jl (nil: name is not
// configured) for the client alone. It also reports counted when the
// offence counted towards the client's ban (it is valid, not allowed,
// not serving a ban), and moved when it was not counted because j was
// handed over (HandOver) meanwhile.
func (j *Jails) count(jl *jail, name string, ip netip.Addr, reason string, at time.Time) (b Ban, ok, counted, moved bool) {
	if jl == nil {
		j.unknownCounter(name).Add(1)
		return Ban{}, false, false, false
	}
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() || j.allowed(ip) {
		jl.untracked.Add(1)
		return Ban{}, false, false, false
	}
	now := unixNano(at)
	k := j.key(ip)
	t := jl.clients
	h := t.hash(k)
	sh := t.shard(h)
	sh.mu.Lock()
	if j.next.Load() != nil {
		// HandOver has copied (or is about to copy) this shard under its
		// lock: counting here would be lost. Report passes it on.
		sh.mu.Unlock()
		return Ban{}, false, false, true
	}
	sh.tally.Add(1)
	i, _ := t.acquire(sh, k, h)
	st := &sh.slots[i].state
	// A client serving a ban by this jail is not counted (fail2ban never
	// sees one: the firewall drops it); but if an operator lifted the
	// ban early, it is counted again.
	if st.lastUntil > now && (j.bans == nil || j.bans.banned(ip)) {
		sh.mu.Unlock()
		return Ban{}, false, false, false
	}
	if !jl.offend(st, sh.lanes[i*jl.ring:(i+1)*jl.ring], now) {
		sh.mu.Unlock()
		return Ban{}, false, true, false
	}
	if st.lastUntil != 0 && now-st.lastUntil > jl.forget {
		st.bans = 0
	}
	if st.bans < math.MaxUint16 {
		st.bans++
	}
	d := jl.duration(int(st.bans))
	st.lastUntil = now + min(int64(d), math.MaxInt64-now) // saturates, for replays of times near 2262
	count := int(st.bans)
	sh.mu.Unlock()

	p := netip.PrefixFrom(ip, 32)
	if ip.Is6() {
		p, _ = ip.Prefix(j.v6bits)
		// A client's prefix never reaches what must stay served: an
		// IPv4-compatible address (::1.2.3.4) has ::/64, which holds ::1.
		if j.overlapsAllow(p) || j.overlapsNoEscalate(p) {
			p = netip.PrefixFrom(ip, 128)
		}
	}
	return Ban{Prefix: p, Jail: jl.name, Reason: reason, Until: at.Add(d), Count: count, Created: at}, true, true, false
}

// offend records an offence at now in st and ring (the client's last
// offence times, oldest at st.head) and reports whether it makes
// MaxRetry within FindTime; if so, the offences are cleared.
func (jl *jail) offend(st *offenceState, ring []int64, now int64) bool {
	r := uint16(len(ring))
	if r == 0 {
		return true
	}
	if st.n == r {
		if now-ring[st.head] <= jl.findTime {
			st.n, st.head = 0, 0
			return true
		}
		ring[st.head] = now
		st.head = (st.head + 1) % r
		return false
	}
	ring[(st.head+st.n)%r] = now
	st.n++
	return false
}

// duration is how long the n-th ban lasts.
func (jl *jail) duration(n int) time.Duration {
	if jl.factor == 0 || n <= 1 {
		return jl.banTime
	}
	d := float64(jl.banTime) * math.Pow(jl.factor, float64(n-1))
	if d >= float64(jl.max) {
		return jl.max
	}
	return time.Duration(d)
}

// key returns the client key of ip (unmapped, valid): the address for
// IPv4, its IPv6Prefix-bit prefix for IPv6.
func (j *Jails) key(ip netip.Addr) clientKey { return clientKeyOf(ip, j.v6bits) }

func (j *Jails) allowed(ip netip.Addr) bool {
	for _, p := range j.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (j *Jails) overlapsAllow(p netip.Prefix) bool {
	for _, a := range j.allow {
		if p.Overlaps(a) {
			return true
		}
	}
	return false
}

// overlapsNoEscalate reports whether p overlaps JailsConfig.NoEscalate.
func (j *Jails) overlapsNoEscalate(p netip.Prefix) bool {
	for _, a := range j.noEscalate {
		if p.Overlaps(a) {
			return true
		}
	}
	return false
}

// unknownCounter returns the offence counter of a jail name that is not
// configured, creating it and warning once.
func (j *Jails) unknownCounter(name string) *atomic.Uint64 {
	j.mu.RLock()
	c := j.unknown[name]
	j.mu.RUnlock()
	if c != nil {
		return c
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if c = j.unknown[name]; c == nil {
		c = new(atomic.Uint64)
		j.unknown[name] = c
		j.log.Warn("offences reported to a jail that is not configured: counted, nobody banned", "jail", name)
	}
	return c
}

// DryRun decides bans exactly as Jails do, for gatehouse rules test
// (replaying an access log, like fail2ban-regex): time is the caller's,
// given with each offence, and the bans are only returned, never
// enforced, so a replay cannot touch the live ban list. Reports should
// come in time order, as log lines do. A DryRun is safe for concurrent
// use, but a replay is sequential by nature.
type DryRun struct {
	j *Jails
}

// NewDryRun validates cfg as NewJails does and returns jails that enforce
// nothing.
func NewDryRun(cfg JailsConfig) (*DryRun, error) {
	j, err := NewJails(cfg, nil, nil)
	if err != nil {
		return nil, err
	}
	return &DryRun{j: j}, nil
}

// ReportAt records one offence by ip against jail at time at and returns
// the client's ban it triggers, if it does (Ban.Created is at; Ban.Until
// is when it would end), and, in a jail with JailConfig.Escalate, the
// ban of the client's network when the offence makes Escalate.After ×
// MaxRetry offences of its clients (see Escalate): the live jails make
// the network's first, so a client inside it gets no ban of its own.
// While a ban lasts, in at's time, the offences of its client (network)
// against this jail are not counted.
func (d *DryRun) ReportAt(jail string, ip netip.Addr, reason string, at time.Time) (b Ban, ok bool, network Ban, escalated bool) {
	return d.j.report(jail, ip, reason, at)
}

// Offences returns how many offences jail has received.
func (d *DryRun) Offences(jail string) uint64 { return d.j.Offences(jail) }

// Escalate counts b, a ban ReportAt returned, towards its network, as a
// jail with JailConfig.Escalate does, and returns the network's ban when
// that makes Escalate.After clients of it within FindTime: the ban the
// live jails would make in its clients' place (lasting bantime, grown by
// increment; the live one never ends before its clients' bans). Networks
// that overlap the allow list or NoEscalate are never returned. The
// caller counts a client inside a network it banned as banned, as the
// ban guard would.
func (d *DryRun) Escalate(b Ban) (Ban, bool) {
	jl := d.j.jails[b.Jail]
	if jl == nil || jl.esc == nil {
		return Ban{}, false
	}
	return d.j.escalation(jl, b)
}

// Sleep waits d or until ctx is done, and reports whether ctx is still
// live: the waits of the fleet's loops and of a rate-limited request.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
